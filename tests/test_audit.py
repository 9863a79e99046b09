"""The audit log on SQLite and PostgreSQL: who did what, when — and nothing users wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.audit import (
    TOKEN_ACTOR,
    AuditAction,
    actor_for,
    audit_log,
    purge_older_than,
    recent,
    record,
)
from tests.fakes.databases import database_engine, database_url  # noqa: F401

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture
async def engine(database_engine: AsyncEngine) -> AsyncEngine:  # noqa: F811
    async with database_engine.begin() as conn:
        await conn.run_sync(audit_log.create)
    return database_engine


def test_the_table_holds_who_what_when_and_nothing_else() -> None:
    assert [c.name for c in audit_log.columns] == [
        "id",
        "occurred_at",
        "actor",
        "action",
        "target",
        "result",
    ]


def test_actor_labels() -> None:
    assert actor_for(None) == TOKEN_ACTOR == "admin-token"
    assert actor_for("  ") == "admin-token"
    assert actor_for("Kari.Nordmann@Example.org") == "kari.nordmann@example.org"


async def test_record_and_read_back_latest_first(engine: AsyncEngine) -> None:
    await record(
        engine,
        actor=actor_for(None),
        action=AuditAction.KNOWLEDGE_EXAMPLE_ADDED,
        target="it.password_reset (nb)",
        at=T0,
    )
    await record(
        engine,
        actor=actor_for("kari@example.org"),
        action="analytics.deleted",
        target="day 2026-11-22",
        at=T0 + timedelta(minutes=5),
    )
    await record(
        engine,
        actor="admin-token",
        action=AuditAction.KNOWLEDGE_EXAMPLE_ADDED,
        target="hr.sick_leave (sv)",
        result="refused",
        at=T0 + timedelta(minutes=10),
    )

    entries = await recent(engine)
    assert [(e.action, e.target, e.result) for e in entries] == [
        ("knowledge.example_added", "hr.sick_leave (sv)", "refused"),
        ("analytics.deleted", "day 2026-11-22", "ok"),
        ("knowledge.example_added", "it.password_reset (nb)", "ok"),
    ]
    assert entries[1].actor == "kari@example.org"
    assert entries[0].occurred_at == T0 + timedelta(minutes=10)
    assert all(e.occurred_at.tzinfo is not None for e in entries)

    assert len(await recent(engine, limit=1)) == 1
    only_deletes = await recent(engine, action=AuditAction.EVENTS_DELETED)
    assert [e.target for e in only_deletes] == ["day 2026-11-22"]
    by_token = await recent(engine, actor="admin-token")
    assert len(by_token) == 2
    since = await recent(engine, since=T0 + timedelta(minutes=1))
    assert len(since) == 2


async def test_targets_carry_no_personal_data_or_control_characters(engine: AsyncEngine) -> None:
    await record(
        engine,
        actor="admin-token",
        action=AuditAction.KNOWLEDGE_EDITED,
        target="it.yaml for kari.nordmann@example.org\n\x00 ring 912 34 567 " + "x" * 1000,
    )
    (entry,) = await recent(engine)
    assert "kari.nordmann" not in entry.target and "912 34 567" not in entry.target
    assert "[email]" in entry.target and "[phone]" in entry.target
    assert "\n" not in entry.target and "\x00" not in entry.target
    assert len(entry.target) <= 300


async def test_refuses_what_is_not_an_audit_entry(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError):
        await record(engine, actor="admin-token", action="user.asked_something")
    with pytest.raises(ValueError, match="result"):
        await record(engine, actor="admin-token", action=AuditAction.KNOWLEDGE_RELOADED, result="?")
    with pytest.raises(ValueError, match="actor"):
        await record(engine, actor=" \n", action=AuditAction.KNOWLEDGE_RELOADED)
    assert await recent(engine) == []


async def test_a_failed_write_raises(database_engine: AsyncEngine) -> None:  # noqa: F811
    # No table: the database refuses, and the caller hears of it.
    with pytest.raises(SQLAlchemyError):
        await record(database_engine, actor="admin-token", action=AuditAction.KNOWLEDGE_RELOADED)


async def test_purge_keeps_what_is_within_retention(engine: AsyncEngine) -> None:
    for days_ago in (400, 200, 1):
        await record(
            engine,
            actor="admin-token",
            action=AuditAction.EVENTS_EXPORTED,
            target=f"{days_ago} days ago",
            at=T0 - timedelta(days=days_ago),
        )
    assert await purge_older_than(engine, 365, now=T0) == 1
    assert [e.target for e in await recent(engine)] == ["1 days ago", "200 days ago"]
    with pytest.raises(ValueError):
        await purge_older_than(engine, 0)
