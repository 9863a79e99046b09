"""Bad requests get a 4xx or a polite reply, never a 500, and the bot keeps serving."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.texts import text


async def _still_serving(chat) -> None:
    (reply,) = await chat.messages("hjelp")
    assert "IT" in reply["text"]


async def test_malformed_and_wrong_requests_are_4xx(kollega_client, chat_factory) -> None:
    chat = chat_factory()
    client = kollega_client
    cases: list[tuple[Any, dict[str, str], int]] = [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b"[]", {"Content-Type": "application/json"}, 400),
        (b'"just a string"', {"Content-Type": "application/json"}, 400),
        (b"\xff\xfe\x00garbage", {"Content-Type": "application/json"}, 400),
        (json.dumps(chat.activity("hei")).encode(), {"Content-Type": "text/plain"}, 415),
        (b"{}", {"Content-Type": "application/json"}, 400),
    ]
    for body, headers, status in cases:
        response = await client.post("/api/messages", data=body, headers=headers)
        assert response.status == status, (body[:30], await response.text())
    for broken in (
        {k: v for k, v in chat.activity("hei").items() if k != "conversation"},
        {k: v for k, v in chat.activity("hei").items() if k != "serviceUrl"},
        {**chat.activity("hei"), "serviceUrl": "ftp://example.org"},
        {**chat.activity("hei"), "conversation": {"id": ""}},
        {**chat.activity("hei"), "type": None},
    ):
        response = await client.post("/api/messages", json=broken)
        assert response.status == 400, (broken, await response.text())
    assert (await client.get("/api/messages")).status == 405
    huge = json.dumps(chat.activity("x" * 600_000))
    response = await client.post(
        "/api/messages", data=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert chat.connector.requests == []
    await _still_serving(chat)


async def test_empty_and_huge_messages_get_a_polite_reply(chat_factory) -> None:
    chat = chat_factory()
    (empty,) = await chat.messages("")
    assert empty["text"] == text("core.empty", "en")  # nothing to detect: the client's locale
    (spaces,) = await chat.messages("   \n\t ")
    assert spaces["text"] == empty["text"]
    (too_long,) = await chat.messages("Jeg har glemt passordet mitt. " * 3_500)  # ~100 kB
    assert too_long["text"] in {text("core.too_long", lang) for lang in ("nb", "da", "nn")}
    no_text_activity = chat.activity()
    no_text_activity.pop("text", None)
    response = await chat.post(no_text_activity)
    assert response.status == 201
    no_text = chat.connector.messages()[-1]
    assert no_text["text"] in {text("core.empty", lang) for lang in ("nb", "da", "en")}
    await _still_serving(chat)


async def test_the_connector_failing_is_not_a_crash(chat_factory, caplog) -> None:
    chat = chat_factory()
    chat.connector.fail_with = 500
    response = await chat.post(chat.activity("glemt passord"))
    assert response.status in (201, 502)  # handled and logged; the channel is not blamed
    assert "turn failed: ErrorResponseException" in caplog.text
    assert "glemt passord" not in caplog.text
    chat.connector.fail_with = None
    await _still_serving(chat)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "type",
                        "text",
                        "conversation",
                        "serviceUrl",
                        "id",
                        "from",
                        "entities",
                        "value",
                        "channelId",
                    ]
                ),
                children,
                max_size=6,
            )
        ),
        max_leaves=20,
    )
)
async def test_random_json_never_gives_a_500(kollega_client, body) -> None:
    response = await kollega_client.post("/api/messages", json=body)
    assert response.status < 500, (body, await response.text())
