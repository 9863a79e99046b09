"""Analytics retention: events older than ``KOLLEGA_RETENTION_DAYS`` are deleted on a schedule.

Anonymous events still describe what people asked, so they are kept only as long as the
owners need them for trends (180 days by default), and an owner can export or delete any
single day on request (``bot.admin``). The job runs inside every replica: a ``DELETE …
WHERE occurred_at < cutoff`` is idempotent, so replicas racing each other do no harm.

Day boundaries are local days in the report's time zone (``KOLLEGA_REPORT_TIMEZONE``):
an owner who deletes "Tuesday" means the Tuesday they saw in the report. Bounds are always
converted to UTC before they reach SQL, because SQLite stores timestamps without their
offset and would otherwise compare wall-clock strings of different zones.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db_work
from bot.analytics import events
from bot.periodic import run_periodically

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 180
DEFAULT_INTERVAL_SECONDS = 3600.0
DEFAULT_TIMEZONE = "Europe/Oslo"


def report_timezone(name: str | None = None) -> tzinfo:
    """The zone report days are cut in; an unknown name falls back to UTC with a warning."""
    name = name or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        logger.warning("unknown time zone %r for reports; using UTC", name)
        return UTC


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC (23 or 25 hours long on DST change days)."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as aware UTC: SQLite hands them back naive (but written as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


async def _delete_events(engine: AsyncEngine, *where: Any) -> int:
    """Delete the events matching ``where``; returns how many.

    Through db_work: on SQLite a large purge must queue with the turns' writes, not race
    them for the file's write lock.
    """
    statement = delete(events).where(*where)
    return await db_work.write(engine, lambda conn: int(conn.execute(statement).rowcount or 0))


async def delete_older_than(engine: AsyncEngine, days: int, now: datetime | None = None) -> int:
    """Delete events that occurred more than ``days`` days before ``now``; returns how many."""
    if days < 1:
        raise ValueError("retention must keep at least one day")
    cutoff = as_utc(now or datetime.now(UTC)) - timedelta(days=days)
    deleted = await _delete_events(engine, events.c.occurred_at < cutoff)
    if deleted:
        logger.info("retention: deleted %d analytics events older than %d days", deleted, days)
    return deleted


async def delete_day(engine: AsyncEngine, day: date, zone: tzinfo) -> int:
    """Delete one local day's events (an owner's request); returns how many."""
    start, end = day_bounds(day, zone)
    deleted = await _delete_events(
        engine, events.c.occurred_at >= start, events.c.occurred_at < end
    )
    logger.info("deleted %d analytics events of %s on request", deleted, day.isoformat())
    return deleted


async def retention_loop(
    engine: AsyncEngine,
    days: int = DEFAULT_RETENTION_DAYS,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    stop: asyncio.Event | None = None,
) -> None:
    """Run ``delete_older_than`` now and then every ``interval`` seconds, until stopped.

    A database outage must not end the job (nor the app): the failure is logged and the
    next round tries again.
    """
    await run_periodically(
        lambda: delete_older_than(engine, days), interval, "retention", stop=stop
    )
