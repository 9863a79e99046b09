"""Teams-only behaviour: the feedback loop invoke, reactions and edited messages."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select

from bot.analytics import events
from tests.conftest import payload


async def _feedback_rows(kollega) -> list[dict[str, Any]]:
    await kollega.analytics.flush()
    async with kollega.analytics.engine.connect() as conn:
        query = select(events).where(events.c.outcome == "feedback").order_by(events.c.id)
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


def _teams_envelope(chat, name: str) -> dict[str, Any]:
    """A documented payload completed with the envelope Teams always sends (the doc is partial)."""
    base = chat.activity()
    activity = copy.deepcopy(payload(name))
    for key in ("serviceUrl", "channelId", "from", "recipient", "conversation", "locale"):
        activity.setdefault(key, base[key])
        if activity.get(key) is None:
            activity[key] = base[key]
    activity["conversation"] = base["conversation"]
    activity["serviceUrl"] = base["serviceUrl"]  # replies go to the fake connector, always
    activity.setdefault("type", "invoke")
    activity["type"] = activity["type"] or "invoke"
    return activity


async def test_the_feedback_loop_records_a_vote_and_the_comment(chat_factory, kollega) -> None:
    chat = chat_factory("teams/personal-message-text.json", locale="nb-NO")
    (answer,) = await chat.messages("vpn virker ikke hjemmefra")
    answer_id = chat.connector.requests[-1]
    assert answer_id  # the fake connector gave the reply an id the invoke will point at

    dislike = _teams_envelope(chat, "teams/invoke-feedback-dislike.json")
    dislike["replyToId"] = "activity-1"
    dislike["value"]["actionValue"]["feedback"] = '{"feedbackText":"Mitt nr er 91234567, VPN"}'
    response = await chat.post(dislike)
    assert response.status == 200
    assert await response.read() in (b"", b"null")

    like = _teams_envelope(chat, "teams/invoke-feedback-like.json")
    like["replyToId"] = "activity-1"
    assert (await chat.post(like)).status == 200

    rows = await _feedback_rows(kollega)
    assert [(r["intent"], r["feedback"]) for r in rows] == [("it.vpn", -1), ("it.vpn", 1)]
    assert rows[0]["question"] == "Mitt nr er [phone], VPN"  # scrubbed comment
    assert rows[1]["question"] == "test feedback"
    assert chat.connector.messages()[-1] == answer  # an invoke gets no chat reply


async def test_reactions_on_an_answer_count_as_votes(chat_factory, kollega) -> None:
    chat = chat_factory("teams/personal-message-text.json", locale="nb-NO")
    await chat.messages("glemt passord")
    reaction = _teams_envelope(chat, "teams/message-reaction-added.json")
    reaction["replyToId"] = "activity-1"
    assert (await chat.post(reaction)).status in (200, 201)
    reaction["reactionsAdded"] = [{"type": "laugh"}]
    assert (await chat.post(reaction)).status in (200, 201)
    removed = _teams_envelope(chat, "teams/message-reaction-removed.json")
    removed["replyToId"] = "activity-1"
    assert (await chat.post(removed)).status in (200, 201)
    rows = await _feedback_rows(kollega)
    assert [(r["intent"], r["feedback"]) for r in rows] == [("it.password_reset", 1)]


async def test_an_edited_question_is_answered_again(chat_factory) -> None:
    chat = chat_factory("teams/personal-message-text.json", locale="nb-NO")
    edit = _teams_envelope(chat, "teams/message-update-edit.json")
    assert (await chat.post(edit)).status in (200, 201)  # documented edit: no text
    assert chat.connector.messages() == []
    edit["text"] = "hvordan setter jeg opp authenticator"
    assert (await chat.post(edit)).status in (200, 201)
    (reply,) = chat.connector.messages()
    assert "authenticator" in str(reply["attachments"][0]["content"]).lower()
    deleted = _teams_envelope(chat, "teams/message-delete-soft.json")
    assert (await chat.post(deleted)).status in (200, 201)
    assert len(chat.connector.messages()) == 1
