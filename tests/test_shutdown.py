"""Graceful shutdown: SIGTERM lets the turns in flight finish, then the process exits 0.

Kubernetes sends SIGTERM on every rollout and scale-down; a replica that drops the turns
it is working on leaves users without an answer (the channel already got its 200 or is
still waiting for it). ``python app.py`` passes ``KOLLEGA_SHUTDOWN_SECONDS`` to aiohttp as
the time in-flight requests get, so a turn whose reply is slow to deliver still completes,
its analytics event is written on the way out, and the exit is clean and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
import uuid
from pathlib import Path

import aiohttp

from tests.fakes.connector import FakeConnector
from tests.fakes.processes import bot_process, post_activity, teams_activity

SHUTDOWN_SECONDS = 20.0
REPLY_DELAY = 3.0  # the Bot Connector takes this long to accept the reply
QUESTION = "min laptop får ikke koblet til vpn"


async def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition()`` rather than sleep a guessed time: the machine may be loaded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def test_sigterm_finishes_the_turn_in_flight_and_exits_cleanly(
    connector: tuple[FakeConnector, str], tmp_path: Path
) -> None:
    fake, service_url = connector
    fake.delay = REPLY_DELAY
    database = tmp_path / "shutdown.db"
    settings = {
        "KOLLEGA_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "KOLLEGA_SHUTDOWN_SECONDS": str(SHUTDOWN_SECONDS),
        "KOLLEGA_ANALYTICS_FLUSH_SECONDS": "60",  # so only the shutdown flush can write it
    }
    activity = teams_activity(
        QUESTION, service_url=service_url, conversation_id=f"a:shutdown-{uuid.uuid4().hex[:8]}"
    )
    async with (
        bot_process("kollega", settings, tmp_path) as bot,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
    ):
        turn = asyncio.create_task(post_activity(session, bot, activity))
        # In flight: the bot is delivering its reply and the connector is holding it.
        await wait_for(lambda: fake.messages(), 60, "the bot to start replying")
        assert not turn.done()
        bot.signal(signal.SIGTERM)
        terminated = time.monotonic()

        status = await asyncio.wait_for(turn, SHUTDOWN_SECONDS + 10)
        code = await bot.wait_exit(SHUTDOWN_SECONDS + 10)
        took = time.monotonic() - terminated

        assert status < 300, f"the turn in flight was answered {status}"
        assert code == 0, f"exit code {code} after SIGTERM"
        assert took < SHUTDOWN_SECONDS, f"took {took:.1f} s to stop"
        assert "Traceback" not in bot.output

    [reply] = fake.messages()
    assert reply["replyToId"] == activity["id"]
    # The analytics event was flushed on the way out.
    with contextlib.closing(sqlite3.connect(database)) as db:
        questions = [row[0] for row in db.execute("SELECT question FROM analytics_events")]
    assert questions == [QUESTION]
