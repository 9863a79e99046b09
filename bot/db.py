"""The one SQLAlchemy ``MetaData`` every table of kollega belongs to, and engine creation.

One metadata object lets Alembic see the whole schema and lets tests create it in one
call. Modules that own a table (analytics, state storage, audit) declare it against
``metadata`` here; nothing else about the database is global.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import URL, Engine, MetaData, event, make_url
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets a busy timeout so short write bursts wait instead of failing."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args=_SQLITE_CONNECT_ARGS)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def create_sync_sqlite_engine(engine: AsyncEngine) -> Engine:
    """A synchronous engine on an async SQLite engine's file, set up the same way."""
    sync = create_sync_engine(
        engine.url.set(drivername="sqlite"), connect_args=_SQLITE_CONNECT_ARGS
    )
    event.listen(sync, "connect", _sqlite_pragmas)
    return sync


def sqlite_file(url: str | URL) -> str | None:
    """The file of a SQLite database URL; None for an in-memory one or another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


_SQLITE_CONNECT_ARGS = {"timeout": 15}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while a turn writes, and NORMAL syncs at checkpoints instead
    # of every commit: the embedded default then keeps up with a busy pilot, and a crash
    # loses at most the last commits, never the file.
    if ":memory:" in str(getattr(dbapi_connection, "_database", "")):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
