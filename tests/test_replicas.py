"""Two ``python app.py`` replicas on one PostgreSQL: any replica can take any turn.

This is what "run it for a whole city" rests on: behind a load balancer, consecutive turns
of one conversation land on different processes, and a user's quick double send reaches
two processes at once. Each replica has its own event loop, pool and per-process locks, so
only real processes show whether the state in PostgreSQL (``bot.storage.SqlStorage`` with
eTags, ``bot.memory.ConversationMemory`` with merge-on-conflict) carries a dialog across
them and keeps every turn's write when two turns race.

The replies go to the fake Bot Connector of ``tests/conftest.py``; tickets go to a fake
webhook receiver served in the test's own loop. The database is migrated first with
``alembic upgrade head``, as ops do before starting replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.db import create_engine
from bot.storage import SqlStorage
from dialogs.texts import text
from tests.fakes.connector import FakeConnector
from tests.fakes.databases import postgres_database
from tests.fakes.processes import BotProcess, alembic, bot_process, post_activity, teams_activity
from tests.fakes.servicedesk import FakeTicketWebhook

ANALYTICS_SECRET = "replicas-share-this-analytics-secret"
HOOK_SECRET = "replicas-hook-secret"
USER_ID = "29:kari-nordmann-replicas"
KARI = "kari.nordmann@kommune.example.org"
LANGUAGES = ("nb", "nn", "sv", "da", "fi", "en")
ERROR_TEXTS = tuple(text("core.error", language) for language in LANGUAGES)
# Ten questions that the sample knowledge answers confidently, each with its own intent.
QUESTIONS = {
    "jeg har glemt passordet mitt til pc-en": "it.password_reset",
    "hvordan setter jeg opp microsoft authenticator?": "it.mfa_setup",
    "kontoen min er låst": "it.account_locked",
    "hvordan deler jeg skjermen i teams?": "it.teams_meeting",
    "min laptop får ikke koblet til vpn": "it.vpn",
    "printeren virker ikke": "it.printer",
    "hvor finner jeg lønnsslippen min?": "payroll.payslip",
    "hvordan endrer jeg skattekortet?": "payroll.tax_card",
    "hvordan leverer jeg reiseregning?": "travel.expense_claim",
    "hva er satsene for kjøregodtgjørelse?": "travel.per_diem_mileage",
}


@pytest.fixture
async def migrated_postgres() -> AsyncIterator[str]:
    """A fresh PostgreSQL database at the Alembic head, migrated by the CLI as ops do."""
    async with postgres_database() as url:
        await alembic(url, "upgrade", "head")
        yield url


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[FakeTicketWebhook, str]]:
    """The ticket webhook receiver, in this loop: both replicas post their tickets here."""
    fake = FakeTicketWebhook(secret=HOOK_SECRET)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/tickets"))
    finally:
        await server.close()


@pytest.fixture
async def replicas(
    migrated_postgres: str, webhook: tuple[FakeTicketWebhook, str], tmp_path: Path
) -> AsyncIterator[tuple[BotProcess, BotProcess]]:
    """Two ready replicas with identical settings but their own ports, started in parallel."""
    _, hook_url = webhook
    settings = {
        "KOLLEGA_DATABASE_URL": migrated_postgres,
        "KOLLEGA_ANALYTICS_SECRET": ANALYTICS_SECRET,
        "KOLLEGA_ANALYTICS_FLUSH_SECONDS": "0.2",
        "KOLLEGA_TICKETS": "webhook",
        "KOLLEGA_TICKET_WEBHOOK_URL": hook_url,
        "KOLLEGA_TICKET_WEBHOOK_SECRET": HOOK_SECRET,
        "KOLLEGA_TICKET_SALT": "replicas-ticket-salt",
        "KOLLEGA_SHUTDOWN_SECONDS": "10",
    }
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            bot_process("replica-a", settings, tmp_path, ready=False)
        )
        second = await stack.enter_async_context(
            bot_process("replica-b", settings, tmp_path, ready=False)
        )
        await asyncio.gather(first.wait_ready(), second.wait_ready())
        yield first, second


def said(activity: dict[str, Any]) -> str:
    """Everything a reply shows, text and card alike, as one searchable string."""
    return json.dumps(
        {k: activity.get(k) for k in ("text", "attachments", "suggestedActions")},
        ensure_ascii=False,
    )


async def turn(
    session: aiohttp.ClientSession,
    replica: BotProcess,
    connector: FakeConnector,
    service_url: str,
    conversation_id: str,
    words: str,
) -> str:
    """One user message to ``replica``; what the bot answered (all its messages), checked."""
    before = len(connector.requests)
    activity = teams_activity(
        words, service_url=service_url, conversation_id=conversation_id, user_id=USER_ID
    )
    status = await post_activity(session, replica, activity)
    assert status < 300, f"{replica.name} answered {status} to {words!r}"
    replies = [
        r.body
        for r in connector.requests[before:]
        if r.method == "POST" and r.body.get("type") == "message"
    ]
    assert replies, f"{replica.name} sent no reply to {words!r}"
    shown = "\n".join(said(reply) for reply in replies)
    assert not any(error in shown for error in ERROR_TEXTS), f"the turn failed: {shown}"
    return shown


async def stored_memory(database_url: str, conversation_id: str) -> dict[str, Any]:
    """The conversation's memory as the replicas left it in PostgreSQL."""
    engine = create_engine(database_url)
    try:
        key = f"msteams/conversations/{conversation_id}"
        items = await SqlStorage(engine).read([key])
    finally:
        await engine.dispose()
    assert key in items, "no memory was stored for the conversation"
    return items[key]


async def test_a_handoff_whose_turns_alternate_between_replicas_creates_one_ticket(
    replicas: tuple[BotProcess, BotProcess],
    connector: tuple[FakeConnector, str],
    webhook: tuple[FakeTicketWebhook, str],
) -> None:
    """Request on A, description on B, "ja" on A: the dialog state travels through the
    database, so the ticket is made once, with the description typed on the other replica."""
    first, second = replicas
    fake, service_url = connector
    hook, _ = webhook
    fake.members[USER_ID] = {
        "id": USER_ID,
        "name": "Kari Nordmann",
        "userPrincipalName": KARI,
        "email": KARI,
        "aadObjectId": "aaaaaaaa-0000-4000-8000-00000000000a",
    }
    conversation = f"a:replicas-handoff-{uuid.uuid4().hex[:12]}"
    description = "VPN-klienten kobler ned hvert tiende minutt etter oppdateringen i går"

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def say(replica: BotProcess, words: str) -> str:
            return await turn(session, replica, fake, service_url, conversation, words)

        asked = await say(first, "lag en sak")
        assert text("handoff.ask_description", "nb") in asked
        summary = await say(second, description)
        assert description in summary  # B continued A's dialog: it shows the summary
        assert not hook.tickets, "no ticket before the user confirms"
        created = await say(first, "ja")

    assert len(hook.requests) == 1, [r.path for r in hook.requests]
    [ticket] = hook.tickets.values()
    assert ticket["description"] == description
    assert ticket["reporter"] == KARI
    assert ticket["channel"] == "msteams"
    assert ticket["reference"] in created  # A told the user the ticket B's turn described


async def test_concurrent_turns_of_one_conversation_lose_no_state_write(
    replicas: tuple[BotProcess, BotProcess],
    connector: tuple[FakeConnector, str],
    migrated_postgres: str,
) -> None:
    """Ten messages of one conversation at once, five to each replica.

    Every turn must succeed (no 5xx, no "something went wrong"), and every turn's write
    must survive the race. The meaningful witness is the memory's ``answered`` map (sent
    reply id -> intent, up to 20 kept): each of the ten turns adds its own entry, so after
    the burst all ten answers are there, and a 👍 on any of them counts for the right
    intent. A merge that lays one turn's stale copy of the map over the other replica's
    write loses entries, and that shows here. The transcript (capped at ten lines) can
    only be checked for consistency: user lines are the questions asked, none twice.
    """
    first, second = replicas
    fake, service_url = connector
    # Replies that take a moment keep each turn's read stale for longer: the two
    # replicas then surely overlap and the eTag conflict path is the one exercised.
    fake.delay = 0.3
    conversation = f"a:replicas-burst-{uuid.uuid4().hex[:12]}"
    activities = [
        teams_activity(words, service_url=service_url, conversation_id=conversation)
        for words in QUESTIONS
    ]

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        statuses = await asyncio.gather(
            *(
                post_activity(session, (first, second)[index % 2], activity)
                for index, activity in enumerate(activities)
            )
        )

    assert all(status < 300 for status in statuses), statuses
    messages = fake.messages()
    failed = [said(m) for m in messages if any(e in said(m) for e in ERROR_TEXTS)]
    assert not failed, f"turns failed under concurrency: {failed}"
    answered_turns = {m.get("replyToId") for m in messages}
    assert {a["id"] for a in activities} <= answered_turns, "a message got no answer"

    memory = await stored_memory(migrated_postgres, conversation)
    assert sorted(memory.get("answered", {}).values()) == sorted(QUESTIONS.values()), (
        "answers whose 👍/👎 would no longer count for their intent: "
        f"{sorted(set(QUESTIONS.values()) - set(memory.get('answered', {}).values()))}"
    )
    transcript = memory.get("transcript", [])
    assert 0 < len(transcript) <= 10
    asked = [line["text"] for line in transcript if line["from"] == "user"]
    assert set(asked) <= set(QUESTIONS), asked
    assert len(asked) == len(set(asked)), f"a turn was recorded twice: {asked}"
    assert memory.get("language") == "nb"
