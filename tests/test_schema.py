"""The database schema contract: who migrates what, and that the migrations match the models.

design.md: the embedded SQLite is migrated at start so a first ``python app.py`` just works;
any other database is migrated deliberately with ``alembic upgrade head`` and the bot
refuses to start on an older schema, naming that command. Two replicas of a new release
must never quietly run on last release's tables.

And the migrations must be the models: a table or column added to ``bot.db.metadata``
without a migration passes every SQLite test that uses ``create_all`` and then breaks
production. Here the real ``alembic upgrade head`` runs on both backends and Alembic's own
autogenerate comparison must find nothing to do, so such a change fails CI.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.db import create_engine, metadata
from bot.schema import current_revision, head_revision
from bot.settings import Settings
from tests.fakes.databases import database_url, postgres_database  # noqa: F401 - fixture
from tests.fakes.processes import REPO_ROOT, alembic, bot_process, run_until_exit

# Where a module might declare a table against ``bot.db.metadata``.
PACKAGES = ("bot", "adapters", "dialogs", "knowledge")
DECLARES_TABLE = "from bot.db import metadata"


def table_modules() -> list[str]:
    """Every module that declares a table, found by reading the source, not by guessing.

    So a new table in a new module is compared against the migrations too, even before
    anyone remembers to import it in ``bot/schema.py``.
    """
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if "migrations" in relative.parts or relative == Path("bot/db.py"):
                continue
            if DECLARES_TABLE in path.read_text(encoding="utf-8"):
                found.append(".".join(relative.with_suffix("").parts))
    return found


def all_tables() -> set[str]:
    for module in table_modules():
        importlib.import_module(module)
    return set(metadata.tables)


async def schema_differences(url: str) -> list[object]:
    """What ``alembic revision --autogenerate`` would put in a new migration (empty = none)."""
    all_tables()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()


async def revision_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_a_fresh_sqlite_is_migrated_at_start(
    kollega_client: TestClient, settings_factory: Callable[..., Settings]
) -> None:
    """The first ``python app.py`` on a laptop needs no alembic command."""
    url = settings_factory().database_url  # the file the kollega_client app started on
    assert (await kollega_client.get("/readyz")).status == 200
    assert await revision_of(url) == head_revision(url)
    assert {"analytics_events", "bot_state", "tickets"} <= await table_names(url)


@pytest.mark.parametrize("revision", [None, "0001"], ids=["empty", "older-revision"])
async def test_postgres_not_at_head_refuses_to_start_until_migrated(
    revision: str | None, tmp_path: Path
) -> None:
    """Ops get the command to run, not a half-working bot; after it, the bot starts."""
    async with postgres_database() as url:
        if revision is not None:
            await alembic(url, "upgrade", revision)
        settings = {"KOLLEGA_DATABASE_URL": url}

        code, output = await run_until_exit(settings, tmp_path)
        assert code != 0, output
        assert "alembic upgrade head" in output, output
        assert await revision_of(url) == revision, "the bot must not migrate PostgreSQL itself"

        await alembic(url, "upgrade", "head")
        async with bot_process("kollega", settings, tmp_path) as bot:
            assert bot.returncode is None  # ready: /readyz said 200


async def test_downgrade_to_base_and_upgrade_again_round_trips_on_postgres() -> None:
    """A release can be rolled back: every migration's downgrade works on PostgreSQL."""
    async with postgres_database() as url:
        await alembic(url, "upgrade", "head")
        migrated = await table_names(url)
        await alembic(url, "downgrade", "base")
        assert await table_names(url) <= {"alembic_version"}
        assert await revision_of(url) is None
        await alembic(url, "upgrade", "head")
        assert await table_names(url) == migrated
        assert await revision_of(url) == head_revision(url)


async def test_the_alembic_head_matches_the_models(database_url: str) -> None:  # noqa: F811
    """On SQLite and PostgreSQL alike, autogenerate after ``upgrade head`` finds nothing:
    a model change without its migration fails here."""
    await alembic(database_url, "upgrade", "head")
    differences = await schema_differences(database_url)
    assert differences == [], (
        "the models differ from the migrations; write one with "
        f"`alembic revision --autogenerate -m ...`: {differences}"
    )


def test_alembic_sees_every_table() -> None:
    """``alembic revision --autogenerate`` knows only the tables that ``bot/schema.py``
    imports (env.py imports it): a table declared elsewhere would never get a migration."""
    declared = all_tables()
    probe = (
        "import json\nimport bot.schema\nfrom bot.db import metadata\n"
        "print(json.dumps(sorted(metadata.tables)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert declared <= seen, (
        "tables Alembic's env.py does not see (import their module in bot/schema.py): "
        f"{sorted(declared - seen)}"
    )
