"""The database goes away mid-conversation and comes back: kollega keeps answering.

PostgreSQL is restarted for upgrades and fails over in production; a replica must not
turn that into "something went wrong" for every question, nor need a restart afterwards.
The promises checked here (design.md, bot/observability.py, bot/analytics.py):

- knowledge questions are answered without the database (the knowledge is in memory;
  only the conversation's memory and analytics need the database);
- ``/healthz`` stays 200 (an orchestrator must not kill a healthy process for it) while
  ``/readyz`` says 503 (a load balancer may prefer another replica);
- once the database is back, ``/readyz`` is 200 again by itself and the analytics events
  accepted during the outage reach the database: none is lost.

The outage is a ``TcpProxy`` in front of the machine's PostgreSQL that the test cuts and
reopens, so the shared server itself is never touched. SQLite cannot go away like a
server, so this is PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import KOLLEGA, create_app
from bot.analytics import events
from bot.db import create_engine
from bot.settings import Settings
from dialogs.texts import text
from tests.conftest import Chat
from tests.fakes.connector import FakeConnector
from tests.fakes.databases import postgres_database
from tests.fakes.processes import alembic
from tests.fakes.tcpproxy import TcpProxy

ERROR_TEXTS = tuple(text("core.error", lang) for lang in ("nb", "nn", "sv", "da", "fi", "en"))
BEFORE = ("jeg har glemt passordet mitt til pc-en", "it.password_reset")
DURING = (
    ("min laptop får ikke koblet til vpn", "it.vpn"),
    ("hvor finner jeg lønnsslippen min?", "payroll.payslip"),
)
AFTER = ("hvordan leverer jeg reiseregning?", "travel.expense_claim")
RECOVERY_SECONDS = 60.0


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A PostgreSQL database at the Alembic head (direct URL, not through the proxy)."""
    async with postgres_database() as url:
        await alembic(url, "upgrade", "head")
        yield url


@pytest.fixture
async def proxy(database: str) -> AsyncIterator[TcpProxy]:
    url = make_url(database)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await tcp.start()
    try:
        yield tcp
    finally:
        await tcp.cut()


@pytest.fixture
async def client(
    database: str, proxy: TcpProxy, settings_factory: Callable[..., Settings]
) -> AsyncIterator[TestClient]:
    """kollega in this loop, its database reached only through the proxy."""
    proxied = make_url(database).set(host="127.0.0.1", port=proxy.port)
    settings = settings_factory(
        database_url=proxied.render_as_string(hide_password=False),
        analytics_flush_seconds=0.2,
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def status_of(client: TestClient, path: str) -> int:
    response = await client.get(path)
    await response.read()
    return response.status


async def wait_for_status(client: TestClient, path: str, wanted: int, timeout: float) -> None:
    """Poll ``path`` until it answers ``wanted``: recovery takes a pool ping or two."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = await status_of(client, path)
        if seen == wanted:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{path} still answers {seen}, not {wanted}, after {timeout:.0f} s")


async def ask(chat: Chat, words: str) -> list[dict[str, Any]]:
    """One question; the bot's messages, which must be an answer, not the failure text."""
    replies = await chat.messages(words)
    assert replies, f"no reply to {words!r}"
    shown = " ".join(str(r.get("text") or "") + str(r.get("attachments") or "") for r in replies)
    assert not any(error in shown for error in ERROR_TEXTS), f"{words!r} failed: {shown}"
    return replies


async def test_questions_are_answered_through_a_database_outage_and_it_recovers(
    client: TestClient,
    proxy: TcpProxy,
    database: str,
    connector: tuple[FakeConnector, str],
) -> None:
    fake, service_url = connector
    chat = Chat(client, fake, service_url, "emulator/message-user-with-capabilities.json")
    kollega = client.server.app[KOLLEGA]

    await ask(chat, BEFORE[0])
    assert await status_of(client, "/readyz") == 200
    assert proxy.connections > 0, "the app did not use the proxy"
    assert await kollega.analytics.flush() >= 0 and kollega.analytics.pending == 0

    await proxy.cut()  # the database server "crashes"
    await wait_for_status(client, "/readyz", 503, timeout=30)
    for words, _ in DURING:
        await ask(chat, words)
        assert await status_of(client, "/healthz") == 200
    assert await status_of(client, "/readyz") == 503
    assert await kollega.analytics.flush() == 0, "the database was supposed to be down"
    assert kollega.analytics.pending >= len(DURING), "events of the outage were not kept"

    await proxy.start()  # and comes back, on the same address
    await wait_for_status(client, "/readyz", 200, timeout=RECOVERY_SECONDS)
    await ask(chat, AFTER[0])
    await kollega.analytics.flush()
    assert kollega.analytics.pending == 0

    engine = create_engine(database)  # straight to PostgreSQL, not through the proxy
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(events.c.question, events.c.intent))).all()
    finally:
        await engine.dispose()
    stored = {(row.question, row.intent) for row in rows}
    for question in (BEFORE, *DURING, AFTER):
        assert question in stored, f"analytics event lost: {question} not in {stored}"
