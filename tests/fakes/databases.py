"""Database fixtures every test that touches SQL reuses: one real database per test.

``database_url`` runs a test twice, once on SQLite (a file in ``tmp_path``) and once on
PostgreSQL (a freshly created database with a unique name, dropped afterwards), so code
that must work on both backends is tested on both without anyone remembering to.

PostgreSQL is not optional: CI guarantees a server, so an unreachable one makes the
postgresql case fail with a message naming ``KOLLEGA_TEST_POSTGRES_URL``, never skip,
since a silent skip would let SQLite-only code through. Use in a test module::

    from tests.fakes.databases import database_url  # noqa: F401
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine

logger = logging.getLogger(__name__)

__all__ = ["database_engine", "database_url", "postgres_database", "sqlite_url"]

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT = 10.0


def postgres_base_url() -> URL:
    """The server the postgresql case creates its databases on (any database on it)."""
    return make_url(os.environ.get("KOLLEGA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def _asyncpg_dsn(url: URL) -> str:
    """asyncpg speaks plain ``postgresql://`` DSNs, without SQLAlchemy's driver suffix."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_connection(base: URL) -> asyncpg.Connection:
    """A connection to the server's maintenance database; an unreachable server fails."""
    try:
        return await asyncpg.connect(_asyncpg_dsn(base), timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as caught:
        error = caught
    # Outside the except block, so the report is this one message, not a chained traceback.
    pytest.fail(
        f"PostgreSQL at {base.render_as_string(hide_password=True)} is unreachable "
        f"({type(error).__name__}: {error}). The postgresql tests need a server: start "
        "one or point KOLLEGA_TEST_POSTGRES_URL at one.",
        pytrace=False,
    )


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards.

    A database per test (not a schema, not truncation) so tests can run in parallel and
    a test that leaves connections or tables behind cannot affect the next one.
    """
    base = postgres_base_url()
    name = f"kollega_test_{uuid.uuid4().hex[:16]}"
    admin = await _admin_connection(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    logger.debug("created test database %s", name)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await _admin_connection(base)
        try:
            # FORCE (PostgreSQL 13+) ends sessions a test forgot, so cleanup cannot hang.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def sqlite_url(directory: Path) -> str:
    """A SQLite database file in ``directory`` (a file, not ``:memory:``, so several
    engines, like two replicas, share it)."""
    return f"sqlite+aiosqlite:///{directory / 'kollega-test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's SQLAlchemy URL, once per backend. Tables are the test's job."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def database_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """``bot.db.create_engine`` on ``database_url``, disposed afterwards (no ResourceWarning)."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
