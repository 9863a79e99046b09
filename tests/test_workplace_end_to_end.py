"""Workplace through the real app: the same bot, knowledge and dialogs as Teams."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.workplace import sign
from app import KOLLEGA, create_app
from tests.conftest import payload
from tests.fakes.workplace_graph import FakeWorkplaceGraph

SECRET = "workplace-app-secret"


@pytest.fixture
async def workplace(settings_factory) -> AsyncIterator[tuple[TestClient, FakeWorkplaceGraph]]:
    fake = FakeWorkplaceGraph()
    graph = TestServer(fake.app, host="127.0.0.1")
    await graph.start_server()
    settings = settings_factory(
        workplace_app_secret=SECRET,
        workplace_verify_token="verify-me",
        workplace_access_token="page-access-token",
        workplace_graph_url=str(graph.make_url("")).rstrip("/"),
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, fake
    finally:
        await client.close()
        await graph.close()


async def _deliver(client: TestClient, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    response = await client.post(
        "/api/workplace",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, raw)},
    )
    assert response.status == 200, await response.text()
    adapter = client.server.app[KOLLEGA].workplace
    await asyncio.wait_for(adapter.drain(), timeout=30)


def _message(text: str, mid: str, sender: str = "100012345") -> dict[str, Any]:
    body = copy.deepcopy(payload("workplace/page-message-text.json"))
    event = body["entry"][0]["messaging"][0]
    event["sender"]["id"] = sender
    event["message"] = {"mid": mid, "text": text}
    return body


async def test_a_chat_question_is_answered_through_the_send_api(workplace) -> None:
    client, fake = workplace
    await _deliver(client, _message("hur gör jag en reseräkning", "m-1"))
    sends = [c for c in fake.calls if c.path == "/me/messages" and "message" in c.body]
    assert sends, fake.calls
    body = sends[0].body
    assert sends[0].headers["Authorization"] == "Bearer page-access-token"
    assert body["recipient"] == {"id": "100012345"}
    text = " ".join(c.body["message"].get("text", "") for c in sends)
    assert "rese" in text.lower()  # Swedish answer about travel expenses
    replies = [q["title"] for c in sends for q in c.body["message"].get("quick_replies", [])]
    assert any("👍" in t for t in replies)


async def test_a_quick_reply_payload_is_the_next_question(workplace) -> None:
    client, fake = workplace
    await _deliver(client, _message("glemt passord", "m-2"))
    first = [c for c in fake.calls if c.path == "/me/messages" and "message" in c.body]
    quick = [q for c in first for q in c.body["message"].get("quick_replies", [])]
    follow = next(q for q in quick if q["payload"].startswith("ask:"))
    fake.calls.clear()
    body = _message(follow["title"], "m-3")
    body["entry"][0]["messaging"][0]["message"]["quick_reply"] = {"payload": follow["payload"]}
    await _deliver(client, body)
    sends = [c for c in fake.calls if c.path == "/me/messages" and "message" in c.body]
    intent = follow["payload"].removeprefix("ask:")
    knowledge = client.server.app[KOLLEGA].knowledge.current
    expected = knowledge.intents[intent].answer["nb"].replace("*", "").split()[:3]
    sent_text = " ".join(c.body["message"].get("text", "") for c in sends)
    assert " ".join(expected) in sent_text.replace("*", "")


async def test_the_verification_handshake_and_a_forged_signature(workplace) -> None:
    client, fake = workplace
    ok = await client.get(
        "/api/workplace",
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"},
    )
    assert ok.status == 200 and await ok.text() == "42"
    raw = json.dumps(_message("glemt passord", "m-9")).encode()
    forged = await client.post(
        "/api/workplace",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign("wrong", raw)},
    )
    assert forged.status == 403
    assert fake.calls == []
