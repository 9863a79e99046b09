"""Retention of analytics events on SQLite and PostgreSQL: the cut-off, a day's deletion
in local time, and the scheduled loop that survives a database outage."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.schema  # noqa: F401 - declares every table on bot.db.metadata
from bot.analytics import events
from bot.db import create_engine, metadata
from bot.retention import day_bounds, delete_day, delete_older_than, retention_loop
from tests.fakes.databases import database_engine, database_url  # noqa: F401

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OSLO = ZoneInfo("Europe/Oslo")


def row(moment: datetime) -> dict[str, object]:
    return {"occurred_at": moment, "channel": "msteams", "language": "nb", "outcome": "answered"}


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())


@pytest.fixture
async def engine(database_engine: AsyncEngine) -> AsyncEngine:  # noqa: F811
    async with database_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(events),
            [
                row(NOW - timedelta(days=400)),
                row(NOW - timedelta(days=181)),
                row(NOW - timedelta(days=180, minutes=1)),
                row(NOW - timedelta(days=179, hours=23)),
                row(NOW - timedelta(days=1)),
                row(NOW),
            ],
        )
    return database_engine


async def test_delete_older_than(engine: AsyncEngine) -> None:
    assert await delete_older_than(engine, 180, now=NOW) == 3
    assert await count(engine) == 3
    assert await delete_older_than(engine, 180, now=NOW) == 0  # idempotent
    assert await delete_older_than(engine, 1, now=NOW) == 1
    with pytest.raises(ValueError):
        await delete_older_than(engine, 0, now=NOW)


async def test_delete_day_uses_local_midnight(engine: AsyncEngine) -> None:
    local_day = date(2026, 11, 22)
    start, end = day_bounds(local_day, OSLO)
    assert (start, end) == (
        datetime(2026, 11, 21, 23, tzinfo=UTC),
        datetime(2026, 11, 22, 23, tzinfo=UTC),
    )
    async with engine.begin() as conn:
        await conn.execute(
            insert(events),
            [row(start - timedelta(minutes=1)), row(start), row(end - timedelta(minutes=1))],
        )
    before = await count(engine)
    # NOW - 1 day (2026-11-22 12:00 UTC), start and end - 1 minute are that local day
    assert await delete_day(engine, local_day, OSLO) == 3
    assert await count(engine) == before - 3


async def test_loop_deletes_and_keeps_running(engine: AsyncEngine) -> None:
    # The loop cuts at the real clock: keep what is under two days older than NOW, whatever
    # today's date is, so the rows of NOW - 1 day and NOW stay.
    days = (datetime.now(UTC) - NOW).days + 2
    task = asyncio.create_task(retention_loop(engine, days=days, interval=0.05))
    try:
        for _ in range(100):
            if await count(engine) == 2:
                break
            await asyncio.sleep(0.02)
        assert await count(engine) == 2
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_loop_survives_an_unreachable_database(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    task = asyncio.create_task(retention_loop(engine, days=180, interval=0.05))
    try:
        for _ in range(200):
            if "will retry" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert "database unavailable" in caplog.text
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()
