"""Database work as plain functions of a connection, run in one round trip per call.

Why: through SQLAlchemy's async layer every step of a statement (cursor, execute, fetch,
close, commit) is its own hop between the event loop and aiosqlite's thread, and each
hop waits for the loop's next turn. With 200 conversations at once the loop's turns are
long, so a state write held SQLite's single write lock across half a dozen of them: the
whole bot stalled at about 100 writes a second while the CPU was half idle
(``bench/load.py``). Here a call hands a plain function to a thread that runs it start
to finish on a synchronous connection to the same file and comes back once.

Writes go to one thread, in order, so they never wait in SQLite's busy handler (which
sleeps 1 to 100 ms at a time); reads have two threads and, in WAL mode, never block on
a write. On PostgreSQL the same functions run through ``AsyncConnection.run_sync``: its
driver pipelines well and its locks are per row, so the async engine is the right tool.

Every writer of a SQLite file in this process (conversation state, analytics) must come
through here, or the two would meet in SQLite's busy handler after all.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_sync_sqlite_engine, sqlite_file

T = TypeVar("T")
Work = Callable[[Connection], T]

_threads: weakref.WeakKeyDictionary[Any, SqliteThreads] = weakref.WeakKeyDictionary()


class SqliteThreads:
    """A synchronous engine on the async engine's SQLite file, and the threads that use it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sync: Engine = create_sync_sqlite_engine(engine)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="kollega-sqlite-write")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="kollega-sqlite-read")

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one transaction on the writer thread; committed when it returns."""
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._in_transaction, work
        )

    async def read(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._on_connection, work
        )

    def _in_transaction(self, work: Work[T]) -> T:
        with self._sync.begin() as conn:
            return work(conn)

    def _on_connection(self, work: Work[T]) -> T:
        with self._sync.connect() as conn:
            return work(conn)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._sync.dispose()


def _threads_for(engine: AsyncEngine) -> SqliteThreads | None:
    # an in-memory database lives in one connection only: it stays on the async engine
    if sqlite_file(engine.url) is None:
        return None
    threads = _threads.get(engine.sync_engine)
    if threads is None:
        threads = _threads[engine.sync_engine] = SqliteThreads(engine)
    return threads


async def write(engine: AsyncEngine, work: Work[T]) -> T:
    """Run ``work(connection)`` in one transaction: committed if it returns, else rolled back."""
    threads = _threads_for(engine)
    if threads is not None:
        return await threads.write(work)
    async with engine.begin() as conn:
        return await conn.run_sync(work)


async def read(engine: AsyncEngine, work: Work[T]) -> T:
    """Run ``work(connection)`` outside any write transaction."""
    threads = _threads_for(engine)
    if threads is not None:
        return await threads.read(work)
    async with engine.connect() as conn:
        return await conn.run_sync(work)


async def close(engine: AsyncEngine) -> None:
    """Stop the threads (after their last call) and dispose of the engine: the app's last step."""
    threads = _threads.pop(engine.sync_engine, None)
    if threads is not None:
        await asyncio.get_running_loop().run_in_executor(None, threads.close)
    await engine.dispose()
