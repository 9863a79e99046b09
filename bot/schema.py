"""The database schema's version: migrate the embedded SQLite, refuse an outdated server.

A developer's first ``python app.py`` must just work, so the default SQLite file is
migrated at start. A shared PostgreSQL is migrated deliberately by ops
(``alembic upgrade head``, once per release, before the new replicas start), so the bot
only checks it and refuses to start on a schema it does not know, naming the command.
"""

from __future__ import annotations

import asyncio
import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.analytics  # declares analytics_events
import bot.audit  # declares audit_log
import bot.report_targets  # declares report_targets
import bot.storage  # declares bot_state
import bot.ticket_registry  # noqa: F401 - declares tickets
from bot.settings import REPO_ROOT

logger = logging.getLogger(__name__)


class SchemaOutdated(RuntimeError):
    """The database's schema is not the one this version of kollega was built for."""


def alembic_config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    return config


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def upgrade(url: str) -> None:
    """``alembic upgrade head`` for ``url`` (runs its own event loop: call from a thread)."""
    command.upgrade(alembic_config(url), "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def ensure_schema(engine: AsyncEngine, url: str) -> None:
    if url.startswith("sqlite"):
        await asyncio.to_thread(upgrade, url)
        return
    current, head = await current_revision(engine), head_revision(url)
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at {current or 'nothing'}, this kollega needs {head}: "
            "run `alembic upgrade head` with the same KOLLEGA_DATABASE_URL, then start again"
        )
