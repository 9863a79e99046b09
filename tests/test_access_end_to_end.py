"""Audiences end to end through /api/messages: who sees what, foreign tenants, reloads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import KOLLEGA, create_app
from knowledge.loader import ACCESS_FILE
from tests.conftest import Chat
from tests.test_access import (
    GUEST,
    IN_PILOT,
    OTHER_TENANT,
    OUTSIDER,
    PILOT_ONLY,
    sender,
    start_access_setup,
)

PAYROLL_QUESTION = "hvor finner jeg lønnsslippen min"
IT_QUESTION = "jeg har glemt passordet mitt"


@pytest.fixture
async def access_app(
    aiohttp_server, tmp_path: Path, settings_factory, connector
) -> AsyncIterator[tuple[TestClient, Any, Any, Path]]:
    _running, overrides = await start_access_setup(aiohttp_server, tmp_path)
    client = TestClient(TestServer(create_app(settings_factory(**overrides)), host="127.0.0.1"))
    await client.start_server()
    fake, url = connector
    try:
        yield client, fake, url, Path(overrides["knowledge_dir"])
    finally:
        await client.close()


def _chat(access_app: Any) -> Chat:
    client, fake, url, _ = access_app
    return Chat(client, fake, url, "teams/personal-message-text.json", locale="nb-NO")


def _card_text(reply: dict[str, Any]) -> str:
    return json.dumps(reply["attachments"][0]["content"], ensure_ascii=False)


async def _ask(chat: Chat, question: str, who: dict[str, Any]) -> str:
    (reply,) = await chat.messages(question, **who)
    return _card_text(reply)


async def test_each_audience_sees_only_its_domains(access_app) -> None:
    knowledge = access_app[0].server.app[KOLLEGA].knowledge.current
    payslip = knowledge.intents["payroll.payslip"].answer["nb"][:25]
    pilot, outsider, guest = _chat(access_app), _chat(access_app), _chat(access_app)

    assert payslip in await _ask(pilot, PAYROLL_QUESTION, sender(IN_PILOT))
    # An employee outside the pilot: payroll is not theirs, so it is neither matched ...
    assert payslip not in await _ask(outsider, PAYROLL_QUESTION, sender(OUTSIDER))
    # ... nor listed in help; IT still is.
    help_text = await _ask(outsider, "hjelp", sender(OUTSIDER))
    assert "lønn" not in help_text and "IT" in help_text
    assert "passord" in (await _ask(outsider, IT_QUESTION, sender(OUTSIDER))).lower()
    # A guest sees IT only.
    guest_help = await _ask(guest, "hjelp", sender(GUEST, role="guest"))
    assert "IT" in guest_help and "HR" not in guest_help and "reise" not in guest_help


async def test_a_foreign_tenant_is_refused_before_the_bot(access_app) -> None:
    chat = _chat(access_app)
    activity = chat.activity(IT_QUESTION, **sender(IN_PILOT))
    activity["conversation"]["tenantId"] = OTHER_TENANT
    activity["channelData"]["tenant"]["id"] = OTHER_TENANT
    response = await chat.post(activity)
    assert response.status == 403
    assert chat.connector.requests == []


async def test_rules_change_on_reload_and_a_broken_file_keeps_the_last_good(access_app) -> None:
    client, *_, folder = access_app
    kollega = client.server.app[KOLLEGA]
    outsider = _chat(access_app)
    assert "passord" in (await _ask(outsider, IT_QUESTION, sender(OUTSIDER))).lower()

    (folder / ACCESS_FILE).write_text(PILOT_ONLY, encoding="utf-8")
    assert (await kollega.knowledge.reload()).ok
    refused = await _ask(_chat(access_app), IT_QUESTION, sender(OUTSIDER))
    assert "servicedesk@example.org" in refused  # "not yet for you", and who to ask
    assert "passord" in (await _ask(_chat(access_app), IT_QUESTION, sender(IN_PILOT))).lower()

    broken = PILOT_ONLY.replace("who_may_use:", "who_may_use: [")
    (folder / ACCESS_FILE).write_text(broken, encoding="utf-8")
    result = await kollega.knowledge.reload()
    assert not result.ok and any(ACCESS_FILE in str(p) for p in result.errors)
    still_refused = await _ask(_chat(access_app), IT_QUESTION, sender(OUTSIDER))
    assert "servicedesk@example.org" in still_refused
