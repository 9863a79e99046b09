"""Jobs that run inside every replica on a schedule (retention of analytics and audit log).

Why not plain tasks that are cancelled at shutdown: a cancel that lands while a job's SQL
statement is in flight abandons the statement mid-way, and with SQLite the database
driver's worker thread then reports its result to an event loop that is already gone. So
jobs are asked to stop between rounds and given a moment to finish the round they are in;
only a job that overruns that moment is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


async def run_periodically(
    job: Job, interval: float, name: str, stop: asyncio.Event | None = None
) -> None:
    """Run ``job`` now and then every ``interval`` seconds, until ``stop`` is set or cancelled.

    A database outage or any other failure must not end the job (nor the app): it is logged
    and the next round tries again.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await job()
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("%s: database unavailable (%s); will retry", name, type(exc).__name__)
        except Exception:  # the job must outlive any surprise
            logger.exception("%s: round failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


class PeriodicJobs:
    """The app's scheduled jobs: started with the app, stopped between rounds with it."""

    def __init__(self, grace_seconds: float = 5.0) -> None:
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._grace = grace_seconds

    def start(self, job: Job, interval: float, name: str) -> None:
        self._tasks.append(
            asyncio.create_task(run_periodically(job, interval, name, self._stop), name=name)
        )

    async def stop(self) -> None:
        self._stop.set()
        if not self._tasks:
            return
        _, overrunning = await asyncio.wait(self._tasks, timeout=self._grace)
        for task in overrunning:
            logger.warning("%s did not finish its round in time; cancelled", task.get_name())
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
