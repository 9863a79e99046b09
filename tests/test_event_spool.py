"""The analytics spool: events a process accepted reach the database even if it is killed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

import bot.schema  # noqa: F401 - declares every table on bot.db.metadata
from bot import db_work
from bot.analytics import AnalyticsRecorder, Event, events, make_event
from bot.db import create_engine, metadata
from bot.event_spool import EventSpool, spool_path


def event(question: str) -> Event:
    return make_event(channel="msteams", language="nb", outcome="answered", question=question)


async def stored(engine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(select(events.c.question))).scalars())


async def database(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'spool.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


async def test_events_a_dead_process_accepted_are_written_by_the_next(tmp_path: Path) -> None:
    engine = await database(tmp_path)
    spool = tmp_path / "spool.db.analytics-spool"
    first = AnalyticsRecorder(engine, flush_seconds=3600, spool=str(spool))
    for question in ("vpn virker ikke", "glemt passord, ring 912 34 567"):
        first.record(event(question))
    # first is never flushed nor stopped: as if killed. Its lines are on disk already.
    assert len(spool.read_text(encoding="utf-8").splitlines()) == 2
    first._spool.close()  # what the kernel does for a killed process; nothing is flushed
    assert await stored(engine) == []

    second = AnalyticsRecorder(engine, flush_seconds=3600, spool=str(spool))
    await second.start()
    second.record(event("printeren"))
    assert await second.flush() == 3
    assert await stored(engine) == ["glemt passord, ring [phone]", "printeren", "vpn virker ikke"]
    assert spool.read_text(encoding="utf-8") == ""  # written: nothing pending
    await second.stop()
    await db_work.close(engine)


async def test_a_torn_last_line_is_skipped_and_the_rest_recovered(tmp_path: Path) -> None:
    path = tmp_path / "torn.spool"
    spool = EventSpool(path, Event)
    spool.append(event("hele linjen"))
    spool.close()
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"occurred_at": "2026-12-0')  # killed mid-write
    recovered = EventSpool(path, Event).load()
    assert [e.question for e in recovered] == ["hele linjen"]


async def test_while_the_database_is_down_the_spool_keeps_everything(tmp_path: Path) -> None:
    down = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    spool = tmp_path / "down.spool"
    recorder = AnalyticsRecorder(down, flush_seconds=3600, spool=str(spool))
    recorder.record(event("første"))
    assert await recorder.flush() == 0
    recorder.record(event("andre"))
    assert len(spool.read_text(encoding="utf-8").splitlines()) == 2
    await recorder.stop(grace_seconds=1)
    assert len(spool.read_text(encoding="utf-8").splitlines()) == 2  # still pending
    await down.dispose()


def test_where_the_spool_lives() -> None:
    assert spool_path("auto", "sqlite+aiosqlite:////var/lib/kollega/kollega.db") == (
        "/var/lib/kollega/kollega.db.analytics-spool"
    )
    assert spool_path("auto", "sqlite+aiosqlite:///:memory:") is None
    assert spool_path("auto", "postgresql+asyncpg://k@db/kollega") is None
    assert spool_path("/data/spool", "postgresql+asyncpg://k@db/kollega") == "/data/spool"
    assert spool_path("off", "sqlite+aiosqlite:///kollega.db") is None
