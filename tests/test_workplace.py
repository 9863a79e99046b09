"""The Workplace adapter end to end: signed webhooks in, Graph API calls out, on loopback.

Webhook bodies are the captured ones in ``tests/payloads/workplace/`` where they exist; quick
replies, postbacks, group chats (``thread``/``thread_key``) and group @mentions are built from
the shapes in Meta's Messenger Platform and Workplace documentation. Replies land in
``FakeWorkplaceGraph``, a real HTTP server, and every test waits with ``adapter.drain()``.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.schema import (
    ActionTypes,
    Activity,
    ActivityTypes,
    CardAction,
    HeroCard,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.workplace import RetryPolicy, WorkplaceAdapter, sign
from adapters.workplace.dedupe import SeenEvents
from adapters.workplace.markdown import split_text, to_plain_text, utf16_len
from tests.fakes.workplace_graph import FakeWorkplaceGraph

PAYLOADS = Path(__file__).parent / "payloads" / "workplace"
SECRET = "test-app-secret"
VERIFY_TOKEN = "token_123"  # the token in the captured verification request
ACCESS_TOKEN = "test-access-token"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, total_timeout=10.0)
PAGE_ID = "1500000000001"
PRIVATE = "Mitt personnummer er 01019912345"


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def chat(
    sender: str = "100001",
    *,
    text: str | None = "hei",
    mid: str = "m_in_1",
    extra: dict[str, Any] | None = None,
    **message: Any,
) -> dict[str, Any]:
    """A page webhook with one chat message, shaped like the captured page-message-text.json."""
    body: dict[str, Any] = {"mid": mid, **message}
    if text is not None:
        body["text"] = text
    event: dict[str, Any] = {
        "sender": {"id": sender},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1700000000000,
        "message": body,
        **(extra or {}),
    }
    return {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": 1700000000001, "messaging": [event]}],
    }


def mention(
    *,
    obj: str = "page",
    item: str = "comment",
    message: str = "Kollega hvordan bytter jeg passord?",
    verb: str = "add",
    tags: bool = True,
) -> dict[str, Any]:
    """A Workplace @mention webhook as Meta's samples read it (field 'mention', value.item)."""
    value: dict[str, Any] = {
        "item": item,
        "verb": verb,
        "post_id": "320351789823264_341450157713427",
        "created_time": "2021-08-30T22:13:50+0000",
        "from": {"id": "100052969254292", "name": "David Callies"},
        "message": message,
        "community": {"id": "793780977425128"},
    }
    if item == "comment":
        value["comment_id"] = "341469824378127"
    if tags:
        value["message_tags"] = [
            {"id": PAGE_ID, "name": "Kollega", "type": "page", "offset": 0, "length": 7}
        ]
    entry_id = PAGE_ID if obj == "page" else "320351789823264"
    return {
        "object": obj,
        "entry": [
            {"id": entry_id, "time": 1630361633, "changes": [{"field": "mention", "value": value}]}
        ],
    }


LONG_MARKDOWN = "\n\n".join(
    [
        "## Passord og innlogging",
        "Gå til **Min side** og velg *Glemt passord*. Se [Passordhjelp](https://intranett.example.org/passord).",
        "\n".join(f"- Steg {i}: " + "les veiledningen nøye " * 12 for i in range(1, 12)),
        "\n".join(
            f"{i}. Punkt med __understreket__ tekst " + "og mer forklaring " * 15
            for i in range(1, 8)
        ),
        "Lenke: <https://intranett.example.org/a__b__c>",
    ]
)


class ScriptBot(ActivityHandler):
    """A small bot for the tests: echoes, and answers a few keywords with the shapes it sends."""

    def __init__(self) -> None:
        self.seen: list[Activity] = []

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        self.seen.append(activity)
        text = activity.text or ""
        if text == "suggest":
            actions = [
                CardAction(
                    type=ActionTypes.im_back,
                    title=f"Emne nummer {i} med lang tittel",
                    value=f"topic.{i}",
                )
                for i in range(15)
            ]
            actions.append(
                CardAction(
                    type=ActionTypes.open_url,
                    title="Intranett",
                    value="https://intranett.example.org",
                )
            )
            await turn_context.send_activity(
                MessageFactory.suggested_actions(actions, "Velg et **tema**")
            )
        elif text == "card":
            card = HeroCard(
                title="Passordhjelp",
                text="Slik bytter du **passord**.",
                buttons=[
                    CardAction(
                        type=ActionTypes.open_url,
                        title=f"Lenke {i}",
                        value=f"https://example.org/{i}",
                    )
                    for i in range(1, 5)
                ]
                + [CardAction(type=ActionTypes.im_back, title="Mer hjelp", value="help")],
            )
            await turn_context.send_activity(MessageFactory.attachment(CardFactory.hero_card(card)))
        elif text == "long":
            await turn_context.send_activity(MessageFactory.text(LONG_MARKDOWN))
        elif text == "typing":
            await turn_context.send_activity(Activity(type=ActivityTypes.typing))
            await turn_context.send_activity("ferdig")
        elif text == "private":
            await turn_context.send_activity(PRIVATE)
        elif text == "boom":
            raise RuntimeError("the bot failed")
        elif text.startswith("slow"):
            await asyncio.sleep(0.05)  # work that takes a while, not synchronisation
            await turn_context.send_activity(f"echo: {text}")
        else:
            await turn_context.send_activity(f"echo: {text}")


@dataclass
class Env:
    client: TestClient
    adapter: WorkplaceAdapter
    bot: ScriptBot
    graph: FakeWorkplaceGraph

    async def post(
        self, payload: dict[str, Any] | bytes, *, signature: str | None = "good", drain: bool = True
    ) -> int:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers["X-Hub-Signature-256"] = sign(SECRET, body)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        # aiohttp warns about large raw bytes bodies; a file object is streamed instead.
        data = io.BytesIO(body) if len(body) > 64 * 1024 else body
        response = await self.client.post("/api/workplace", data=data, headers=headers)
        await response.release()
        if drain:
            await self.adapter.drain()
        return response.status


EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
async def graph_server(aiohttp_server: Any) -> tuple[FakeWorkplaceGraph, str]:
    fake = FakeWorkplaceGraph()
    server = await aiohttp_server(fake.app)
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def make_env(
    aiohttp_client: Any, graph_server: tuple[FakeWorkplaceGraph, str]
) -> AsyncIterator[EnvFactory]:
    fake, url = graph_server

    async def build(**options: Any) -> Env:
        bot = ScriptBot()
        adapter = WorkplaceAdapter(
            app_secret=SECRET,
            verify_token=VERIFY_TOKEN,
            access_token=ACCESS_TOKEN,
            bot=bot,
            graph_url=options.pop("graph_url", url),
            retry=options.pop("retry", FAST),
            **options,
        )
        app = web.Application()
        adapter.add_routes(app)
        return Env(await aiohttp_client(app), adapter, bot, fake)

    yield build


@pytest.fixture
async def env(make_env: EnvFactory) -> Env:
    return await make_env()


# -- verification handshake -------------------------------------------------------------


async def test_verification_echoes_the_challenge_as_plain_text(env: Env) -> None:
    query = {**load("verification-query-params.json"), "hub.mode": "subscribe"}
    response = await env.client.get("/api/workplace", params=query)
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert await response.text() == "challenge_123"


@pytest.mark.parametrize(
    "query",
    [
        load("verification-query-params.json"),  # as captured: no hub.mode
        {
            **load("verification-query-params.json"),
            "hub.mode": "subscribe",
            "hub.verify_token": "nope",
        },
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "x"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
    ],
)
async def test_verification_refuses_anything_else(env: Env, query: dict[str, str]) -> None:
    response = await env.client.get("/api/workplace", params=query)
    assert response.status == 403
    assert "challenge" not in await response.text()


# -- chat messages in, Send API out -----------------------------------------------------


async def test_captured_text_message_is_answered_through_the_send_api(env: Env) -> None:
    assert await env.post(load("page-message-text.json")) == 200

    [activity] = env.bot.seen
    assert activity.type == "message"
    assert activity.channel_id == "workplace"
    assert activity.text == "asd"
    assert activity.from_property.id == "123123123"
    assert activity.conversation.id == "123123123"
    assert activity.locale is None
    [call] = env.graph.calls
    assert (call.method, call.path) == ("POST", "/me/messages")
    assert call.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert ACCESS_TOKEN not in str(call.body)
    assert call.body == {
        "recipient": {"id": "123123123"},
        "messaging_type": "RESPONSE",
        "message": {"text": "echo: asd"},
    }


@pytest.mark.parametrize("name", ["page-message-text-minimal.json", "page-standby.json"])
async def test_captured_minimal_and_standby_payloads_give_one_turn(env: Env, name: str) -> None:
    assert await env.post(load(name)) == 200
    assert [a.text for a in env.bot.seen] == ["text"]
    assert env.graph.messages == [
        {"recipient": {"id": "0"}, "messaging_type": "RESPONSE", "message": {"text": "echo: text"}}
    ]


@pytest.mark.parametrize(
    "payload",
    [
        load("page-referral.json"),
        load("page-pass-thread-control.json"),
        load("group-comment-added.json"),  # a plain comment in a group, no mention of the bot
        {
            "object": "page",
            "entry": [
                {
                    "id": PAGE_ID,
                    "messaging": [
                        {
                            "sender": {"id": "1"},
                            "recipient": {"id": PAGE_ID},
                            "read": {"watermark": 1},
                        },
                        {
                            "sender": {"id": "1"},
                            "recipient": {"id": PAGE_ID},
                            "delivery": {"mids": ["m"]},
                        },
                    ],
                }
            ],
        },
        {"object": "user", "entry": [{"id": "1", "changes": [{"field": "status"}]}]},
        mention(verb="edit"),
    ],
)
async def test_events_without_a_message_are_ignored(env: Env, payload: dict[str, Any]) -> None:
    assert await env.post(payload) == 200
    assert env.bot.seen == []
    assert env.graph.calls == []


async def test_the_bots_own_messages_are_ignored(make_env: EnvFactory) -> None:
    env = await make_env(page_id=PAGE_ID)
    assert await env.post(chat(text="eget ekko", is_echo=True, mid="m_echo")) == 200
    assert await env.post(chat(sender=PAGE_ID, text="fra siden selv", mid="m_self")) == 200
    assert env.bot.seen == []
    assert env.graph.calls == []


async def test_quick_reply_payload_becomes_the_text_and_the_value(env: Env) -> None:
    await env.post(chat(text="Passord", mid="m_q1", quick_reply={"payload": "it.password_reset"}))
    await env.post(
        chat(text="Ja takk", mid="m_q2", quick_reply={"payload": '{"intent": "it.mfa"}'})
    )

    plain, structured = env.bot.seen
    assert plain.text == "it.password_reset"
    assert plain.value == {"payload": "it.password_reset"}
    assert structured.text == "Ja takk"  # JSON payload: the button title is the text
    assert structured.value == {"payload": '{"intent": "it.mfa"}'}


async def test_postbacks_are_turns_too(env: Env) -> None:
    def postback(payload: str, mid: str) -> dict[str, Any]:
        event = {
            "sender": {"id": "100001"},
            "recipient": {"id": PAGE_ID},
            "timestamp": 1700000000000,
            "postback": {"title": "Mer hjelp", "payload": payload, "mid": mid},
        }
        return {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [event]}]}

    await env.post(postback("help", "m_p1"))
    await env.post(postback('{"action": "ticket"}', "m_p2"))

    assert [(a.text, a.value) for a in env.bot.seen] == [
        ("help", {"payload": "help"}),
        ("Mer hjelp", {"payload": '{"action": "ticket"}'}),
    ]
    assert [m["message"]["text"] for m in env.graph.messages] == ["echo: help", "echo: Mer hjelp"]


@pytest.mark.parametrize(
    "extra", [{"thread": {"id": "t_1234567890"}}, {"thread_key": "t_1234567890"}]
)
async def test_group_chat_is_answered_by_thread_key(env: Env, extra: dict[str, Any]) -> None:
    await env.post(chat(text="hei gruppe", extra=extra))

    [activity] = env.bot.seen
    assert activity.conversation.id == "t_1234567890"
    assert activity.conversation.is_group is True
    assert activity.from_property.id == "100001"
    assert env.graph.messages == [
        {
            "recipient": {"thread_key": "t_1234567890"},
            "messaging_type": "RESPONSE",
            "message": {"text": "echo: hei gruppe"},
        }
    ]


# -- Workplace group mentions -----------------------------------------------------------


async def test_mention_in_a_comment_is_answered_under_that_comment(env: Env) -> None:
    assert await env.post(mention()) == 200

    [activity] = env.bot.seen
    assert activity.text == "hvordan bytter jeg passord?"
    assert activity.from_property.id == "100052969254292"
    assert activity.conversation.id == "341469824378127"
    [call] = env.graph.calls
    assert (call.method, call.path) == ("POST", "/341469824378127/comments")
    assert call.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert call.body == {"message": "echo: hvordan bytter jeg passord?"}


async def test_mention_in_a_group_post_is_answered_on_the_post(make_env: EnvFactory) -> None:
    env = await make_env(page_id=PAGE_ID)
    await env.post(mention(obj="group", item="post", message="@Kollega  suggest"))

    assert [a.text for a in env.bot.seen] == ["suggest"]
    [comment] = env.graph.comments("320351789823264_341450157713427")
    assert comment.startswith(
        "Velg et tema\n\nIntranett: https://intranett.example.org\n\n• Emne nummer 0"
    )
    assert "**" not in comment


async def test_mention_without_tags_strips_the_configured_bot_name(make_env: EnvFactory) -> None:
    env = await make_env(bot_name="Kollega")
    await env.post(mention(tags=False, message="@Kollega reise"))
    assert [a.text for a in env.bot.seen] == ["reise"]


# -- what the bot sends -----------------------------------------------------------------


async def test_suggested_actions_become_quick_replies(env: Env) -> None:
    await env.post(chat(text="suggest"))

    [sent] = env.graph.messages
    message = sent["message"]
    assert message["text"] == "Velg et tema\n\nIntranett: https://intranett.example.org"
    quick = message["quick_replies"]
    assert len(quick) == 13
    assert quick[0] == {
        "content_type": "text",
        "title": "Emne nummer 0 med l…",
        "payload": "topic.0",
    }
    assert all(utf16_len(q["title"]) <= 20 for q in quick)
    assert [q["payload"] for q in quick] == [f"topic.{i}" for i in range(13)]


async def test_hero_card_links_become_a_button_template(env: Env) -> None:
    await env.post(chat(text="card"))

    assert [m["message"] for m in env.graph.messages] == [
        {"text": "Lenke 4: https://example.org/4"},
        {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "Passordhjelp\nSlik bytter du passord.",
                    "buttons": [
                        {
                            "type": "web_url",
                            "url": f"https://example.org/{i}",
                            "title": f"Lenke {i}",
                        }
                        for i in range(1, 4)
                    ],
                },
            },
            "quick_replies": [{"content_type": "text", "title": "Mer hjelp", "payload": "help"}],
        },
    ]


async def test_long_markdown_is_reduced_and_split_on_word_boundaries(env: Env) -> None:
    await env.post(chat(text="long"))

    chunks = [m["message"]["text"] for m in env.graph.messages]
    assert len(chunks) >= 2
    assert all(utf16_len(c) <= 2000 for c in chunks)
    whole = "\n".join(chunks)
    assert "**" not in whole and "__understreket__" not in whole and "##" not in whole
    assert whole.startswith("Passord og innlogging\n\nGå til Min side og velg *Glemt passord*.")
    assert "Passordhjelp: https://intranett.example.org/passord" in whole
    assert "https://intranett.example.org/a__b__c" in whole
    assert "• Steg 1:" in whole and "1. Punkt med understreket tekst" in whole
    assert " ".join(chunks).split() == to_plain_text(LONG_MARKDOWN).split()


async def test_typing_becomes_a_sender_action(env: Env) -> None:
    await env.post(chat(text="typing"))
    assert env.graph.sent == [
        {"recipient": {"id": "100001"}, "sender_action": "typing_on"},
        {
            "recipient": {"id": "100001"},
            "messaging_type": "RESPONSE",
            "message": {"text": "ferdig"},
        },
    ]


async def test_turns_of_one_conversation_run_in_delivery_order(env: Env) -> None:
    payload = chat(text="slow first", mid="m_o1")
    second = copy.deepcopy(payload["entry"][0]["messaging"][0])
    second["message"] = {"mid": "m_o2", "text": "fast second"}
    other = copy.deepcopy(second)
    other["sender"] = {"id": "200002"}
    other["message"] = {"mid": "m_o3", "text": "other person"}
    payload["entry"][0]["messaging"] += [second, other]

    await env.post(payload)

    texts = [(m["recipient"]["id"], m["message"]["text"]) for m in env.graph.messages]
    assert [t for t in texts if t[0] == "100001"] == [
        ("100001", "echo: slow first"),
        ("100001", "echo: fast second"),
    ]
    assert texts[0] == ("200002", "echo: other person")  # not held up by someone else's turn


async def test_proactive_message_reuses_the_saved_reference(env: Env) -> None:
    await env.post(mention())
    reference = TurnContext.get_conversation_reference(env.bot.seen[0])

    async def notify(context: TurnContext) -> None:
        await context.send_activity("Saken din er løst.")

    await env.adapter.continue_conversation(reference, notify)
    assert env.graph.comments("341469824378127")[-1] == "Saken din er løst."

    await env.post(chat(text="hei"))
    chat_reference = TurnContext.get_conversation_reference(env.bot.seen[1])
    await env.adapter.continue_conversation(chat_reference, notify)
    assert env.graph.messages[-1]["messaging_type"] == "UPDATE"


async def test_update_and_delete_edit_comments_and_are_no_ops_in_chat(env: Env) -> None:
    await env.post(mention())
    comment_ref = TurnContext.get_conversation_reference(env.bot.seen[0])
    await env.post(chat(text="hei"))
    chat_ref = TurnContext.get_conversation_reference(env.bot.seen[1])
    before = len(env.graph.calls)

    async def edit_chat(context: TurnContext) -> None:
        assert await context.update_activity(Activity(type="message", id="m_1", text="ny")) is None
        await context.delete_activity("m_1")  # cannot be done in chat, and does not raise

    async def edit_comment(context: TurnContext) -> None:
        edited = Activity(type="message", id="341469824378127_9", text="**rettet**")
        assert (await context.update_activity(edited)).id == "341469824378127_9"
        await context.delete_activity("341469824378127_9")

    await env.adapter.continue_conversation(chat_ref, edit_chat)
    await env.adapter.continue_conversation(comment_ref, edit_comment)
    assert [(c.method, c.path, c.body) for c in env.graph.calls[before:]] == [
        ("POST", "/341469824378127_9", {"message": "rettet"}),
        ("DELETE", "/341469824378127_9", None),
    ]


# -- security and robustness of the webhook ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "signature", "status"),
    [
        (json.dumps(load("page-message-text.json")).encode(), None, 403),
        (json.dumps(load("page-message-text.json")).encode(), "sha256=" + "0" * 64, 403),
        (json.dumps(load("page-message-text.json")).encode(), sign("another-secret", b"x"), 403),
        (json.dumps(load("page-message-text.json")).encode(), "sha1=abcdef", 403),
        (json.dumps(load("page-message-text.json")).encode(), "sha256=", 403),
        (b'{"object": "page", "entry": [', "good", 400),
        (b"\xff\xfe not json", "good", 400),
        (b"[" * 100_000, "good", 400),
        (b'["page"]', "good", 400),
        (b"x" * (1024 * 1024 + 1), "good", 413),
    ],
)
async def test_bad_deliveries_are_refused_and_never_reach_the_bot(
    env: Env, body: bytes, signature: str | None, status: int
) -> None:
    assert await env.post(body, signature=signature) == status
    assert env.bot.seen == []
    assert env.graph.calls == []


async def test_oversized_chunked_body_is_cut_off_at_the_limit(env: Env) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64}  # no Content-Length: streamed
    response = await env.client.post("/api/workplace", data=chunks(), headers=headers)
    assert response.status == 413
    assert env.bot.seen == []


async def test_legacy_sha1_signature_alone_is_not_enough(env: Env) -> None:
    body = json.dumps(load("page-message-text.json")).encode()
    response = await env.client.post(
        "/api/workplace", data=body, headers={"X-Hub-Signature": "sha1=" + "0" * 40}
    )
    assert response.status == 403


async def test_a_replayed_delivery_is_answered_once(env: Env) -> None:
    payload = load("page-message-text.json")
    assert await env.post(payload) == 200
    assert await env.post(payload) == 200
    assert await env.post(mention()) == 200
    assert await env.post(mention()) == 200
    assert len(env.bot.seen) == 2
    assert len(env.graph.calls) == 2


@pytest.mark.parametrize("retry_after", ["0", "1"])
async def test_throttled_send_is_retried_and_delivered_once(env: Env, retry_after: str) -> None:
    env.graph.fail_next(
        "/me/messages",
        429,
        body={
            "error": {
                "message": "(#613) Calls to this api have exceeded the rate limit.",
                "code": 613,
            }
        },
        headers={"Retry-After": retry_after},
    )
    started = time.monotonic()
    await env.post(chat(text="hei"))

    assert [c.status for c in env.graph.calls] == [429, 200]
    assert time.monotonic() - started >= float(retry_after)
    assert env.graph.messages == [
        {
            "recipient": {"id": "100001"},
            "messaging_type": "RESPONSE",
            "message": {"text": "echo: hei"},
        }
    ]


async def test_server_errors_are_retried_a_bounded_number_of_times(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.graph.fail_next("/me/messages", 503, times=5)
    await env.post(chat(text="private"))

    assert [c.status for c in env.graph.calls] == [503, 503, 503]  # FAST allows three attempts
    assert "status=503" in caplog.text
    assert PRIVATE not in caplog.text


async def test_permanent_error_is_logged_without_the_message(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.graph.fail_next(
        "/me/messages",
        400,
        body={
            "error": {
                "message": f"Invalid parameter: {PRIVATE}",
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 2018001,
                "fbtrace_id": "AbCdEf",
            }
        },
    )
    with caplog.at_level(logging.DEBUG):
        await env.post(chat(text="private"))

    assert len(env.graph.calls) == 1  # not retried
    assert "status=400 code=100 subcode=2018001 fbtrace_id=AbCdEf" in caplog.text
    assert PRIVATE not in caplog.text
    assert "01019912345" not in caplog.text


async def test_graph_down_is_logged_and_the_server_keeps_serving(
    make_env: EnvFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = await make_env(graph_url=f"http://127.0.0.1:{port}")

    assert await env.post(chat(text="hei", mid="m_d1")) == 200
    assert "failed after 3 attempts: ClientConnectorError" in caplog.text

    query = {**load("verification-query-params.json"), "hub.mode": "subscribe"}
    assert (await env.client.get("/api/workplace", params=query)).status == 200
    assert await env.post(chat(text="igjen", mid="m_d2")) == 200
    assert [a.text for a in env.bot.seen] == ["hei", "igjen"]


async def test_a_failing_bot_does_not_stop_the_next_turn(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    assert await env.post(chat(text="boom", mid="m_b1")) == 200
    assert "workplace turn failed in a personal conversation" in caplog.text
    assert await env.post(chat(text="hei", mid="m_b2")) == 200
    assert [m["message"]["text"] for m in env.graph.messages] == ["echo: hei"]


async def test_after_close_deliveries_get_503_so_meta_retries(env: Env) -> None:
    await env.adapter.close()
    assert await env.post(chat(text="hei")) == 503
    assert env.bot.seen == []


def test_adapter_refuses_to_run_without_a_secret() -> None:
    with pytest.raises(ValueError, match="app_secret"):
        WorkplaceAdapter(app_secret="", verify_token="v", access_token="a", bot=ScriptBot())


# -- property tests ---------------------------------------------------------------------

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_event_keys = st.sampled_from(
    ["sender", "recipient", "timestamp", "message", "postback", "thread", "thread_key", "read"]
)
_inner_keys = st.sampled_from(
    ["id", "mid", "text", "is_echo", "quick_reply", "payload", "title", "thread_key", "attachments"]
)
_event = st.dictionaries(
    _event_keys, _json | st.dictionaries(_inner_keys, _json, max_size=4), max_size=5
)
_value_keys = st.sampled_from(
    ["item", "verb", "post_id", "comment_id", "from", "message", "message_tags", "created_time"]
)
_change = st.fixed_dictionaries(
    {"field": st.sampled_from(["mention", "comments", "posts"])},
    optional={"value": st.dictionaries(_value_keys, _json, max_size=6) | _json},
)
_entry = st.dictionaries(
    st.sampled_from(["id", "time", "messaging", "standby", "changes"]),
    _json | st.lists(_event, max_size=3) | st.lists(_change, max_size=3),
    max_size=4,
)
_webhook = st.fixed_dictionaries(
    {"object": st.sampled_from(["page", "group", "user"]) | _json},
    optional={"entry": st.lists(_entry, max_size=3) | _json},
)
_bodies = (
    st.binary(max_size=300)
    | _json.map(lambda v: json.dumps(v).encode())
    | _webhook.map(lambda v: json.dumps(v).encode())
)


def test_post_endpoint_never_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    """Random bodies, signed or not: a 2xx/4xx answer every time and no error logged."""

    async def start() -> tuple[TestClient, TestServer, WorkplaceAdapter]:
        fake = FakeWorkplaceGraph()
        graph = TestServer(fake.app)
        await graph.start_server()
        adapter = WorkplaceAdapter(
            app_secret=SECRET,
            verify_token=VERIFY_TOKEN,
            access_token=ACCESS_TOKEN,
            bot=ScriptBot(),
            graph_url=str(graph.make_url("")).rstrip("/"),
            retry=FAST,
        )
        app = web.Application()
        adapter.add_routes(app)
        client = TestClient(TestServer(app))
        await client.start_server()
        return client, graph, adapter

    with asyncio.Runner() as runner:
        client, graph, adapter = runner.run(start())
        try:

            @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(body=_bodies, signed=st.booleans() | st.just(True))
            def check(body: bytes, signed: bool) -> None:
                async def post() -> int:
                    headers = {"X-Hub-Signature-256": sign(SECRET, body)} if signed else {}
                    response = await client.post("/api/workplace", data=body, headers=headers)
                    await response.release()
                    await adapter.drain()
                    return response.status

                assert runner.run(post()) in {200, 400, 403}

            check()
        finally:
            runner.run(client.close())
            runner.run(graph.close())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[0].getMessage()


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=["Zs", "Cc", "Cs"]), min_size=1, max_size=30
        ),
        max_size=80,
    ),
    seps=st.lists(st.sampled_from([" ", "\n", "\n\n"]), min_size=80, max_size=80),
    limit=st.integers(min_value=60, max_value=200),  # a 30-char word fits,
)
def test_split_keeps_every_word_whole_and_within_the_limit(
    words: list[str], seps: list[str], limit: int
) -> None:
    text = "".join(w + s for w, s in zip(words, seps, strict=False))
    chunks = split_text(text, limit)
    assert all(0 < utf16_len(c) <= limit for c in chunks)
    assert " ".join(chunks).split() == text.split()


def test_only_a_word_longer_than_the_limit_is_cut() -> None:
    url = "https://example.org/" + "a" * 60
    assert split_text(f"se {url} her", 30) == ["se", url[:30], url[30:60], f"{url[60:]} her"]


def test_markdown_reduction() -> None:
    assert (
        to_plain_text("# Tittel\n\n**Fet** og __også fet__ og *kursiv*")
        == "Tittel\n\nFet og også fet og *kursiv*"
    )
    assert to_plain_text("* en\n  - to\n+ tre") == "• en\n  • to\n• tre"
    assert to_plain_text("[Hjelp](https://x.org/a_b_) og [https://y.org](https://y.org)") == (
        "Hjelp: https://x.org/a_b_ og https://y.org"
    )
    assert to_plain_text("> sitat\n\n---\n\n```\nkode **her**\n```") == "sitat\n\nkode **her**"


def test_seen_events_forget_by_age_and_by_count() -> None:
    now = [0.0]
    seen = SeenEvents(ttl_seconds=10, max_entries=2, clock=lambda: now[0])
    assert seen.first_time("a") and not seen.first_time("a")
    assert seen.first_time("b") and seen.first_time("c")  # "a" pushed out by size
    assert len(seen) == 2 and seen.first_time("a")
    now[0] = 11.0
    assert seen.first_time("b")  # expired
