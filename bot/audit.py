"""The audit log: which administrator did what to the knowledge or the data, and when.

Knowledge edits from the dashboard, reloads, exports and deletions of analytics change
what thousands of employees are told or remove evidence, so each is written down with
who did it (``actor``), what (``action`` and ``target``) and when. End users' turns are
never audited: the bot keeps no record of who asked what, and this table must not become
one.

What goes in, on purpose:

* ``actor``: for the shared admin token the label ``admin-token`` (the token identifies no
  person, so the log says so honestly rather than inventing one); for an Entra ID sign-in
  the user principal name, because an audit trail must name the person.
* ``action``: a dotted code from ``AuditAction`` (``knowledge.example_added`` …).
* ``target``: *what* was acted on, never content: an intent id and language, a day, a
  file name. An example phrase an admin copied from a user's question is content and stays
  out; targets are scrubbed of personal data and cut to ``MAX_TARGET_CHARS`` all the same.
* ``result``: ``ok`` or ``refused`` (a refused edit is as interesting as a done one).

Rows are written at once, one transaction each (admin actions are rare), and a failed
write raises: a caller that cannot audit should say so rather than pretend.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, DateTime, Integer, String, Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import metadata
from bot.privacy import scrub

logger = logging.getLogger(__name__)

__all__ = [
    "TOKEN_ACTOR",
    "AuditAction",
    "AuditEntry",
    "actor_for",
    "audit_log",
    "purge_older_than",
    "recent",
    "record",
]

TOKEN_ACTOR = "admin-token"  # noqa: S105 - a label, not a secret
MAX_ACTOR_CHARS = 320  # an e-mail address / UPN at its longest
MAX_TARGET_CHARS = 300
MAX_RECENT = 1000
RESULTS = frozenset({"ok", "refused"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(MAX_ACTOR_CHARS), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("target", String(MAX_TARGET_CHARS), nullable=False, default=""),
    Column("result", String(16), nullable=False, default="ok"),
)


class AuditAction(StrEnum):
    """Everything that is audited. New admin features add a member here, not free text."""

    ADMIN_LOGIN = "admin.login"
    ADMIN_LOGIN_FAILED = "admin.login_failed"
    ADMIN_LOGOUT = "admin.logout"
    KNOWLEDGE_EXAMPLE_ADDED = "knowledge.example_added"
    KNOWLEDGE_EDITED = "knowledge.edited"
    KNOWLEDGE_RELOADED = "knowledge.reloaded"
    EVENTS_EXPORTED = "analytics.exported"
    EVENTS_DELETED = "analytics.deleted"
    REPORT_TARGETS_VIEWED = "report_targets.viewed"
    AUDIT_VIEWED = "audit.viewed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    occurred_at: datetime
    actor: str
    action: str
    target: str
    result: str


def actor_for(principal_name: str | None) -> str:
    """The actor label: the signed-in admin's UPN, or ``admin-token`` for the shared token."""
    name = (principal_name or "").strip().lower()
    return name[:MAX_ACTOR_CHARS] if name else TOKEN_ACTOR


def _clean_target(target: str) -> str:
    cleaned = _CONTROL.sub(" ", scrub(str(target))).strip()
    return cleaned[:MAX_TARGET_CHARS]


async def record(
    engine: AsyncEngine,
    *,
    actor: str,
    action: AuditAction | str,
    target: str = "",
    result: str = "ok",
    at: datetime | None = None,
) -> None:
    """Write one audit row now. Raises ``ValueError`` for an unknown action or result, and
    SQLAlchemy's error when the database refuses (logged here without the target)."""
    action = AuditAction(action)
    if result not in RESULTS:
        raise ValueError(f"result must be one of {sorted(RESULTS)}, not {result!r}")
    actor = _CONTROL.sub("", actor).strip()[:MAX_ACTOR_CHARS]
    if not actor:
        raise ValueError("an audit entry needs an actor (actor_for(...) gives one)")
    row = {
        "occurred_at": (at or datetime.now(UTC)).astimezone(UTC),
        "actor": actor,
        "action": str(action),
        "target": _clean_target(target),
        "result": result,
    }
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(audit_log).values(**row))
    except Exception:
        logger.error("could not write the audit entry for %s by %s", action, actor)
        raise


async def recent(
    engine: AsyncEngine,
    limit: int = 100,
    *,
    action: AuditAction | str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
) -> list[AuditEntry]:
    """The latest entries first, optionally only one action, one actor, or since a time."""
    query = select(
        audit_log.c.occurred_at,
        audit_log.c.actor,
        audit_log.c.action,
        audit_log.c.target,
        audit_log.c.result,
    )
    if action is not None:
        query = query.where(audit_log.c.action == str(AuditAction(action)))
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if since is not None:
        query = query.where(audit_log.c.occurred_at >= since.astimezone(UTC))
    query = query.order_by(audit_log.c.occurred_at.desc(), audit_log.c.id.desc()).limit(
        max(1, min(limit, MAX_RECENT))
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        AuditEntry(
            occurred_at=_as_utc(row.occurred_at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            result=row.result,
        )
        for row in rows
    ]


async def purge_older_than(engine: AsyncEngine, days: int, now: datetime | None = None) -> int:
    """Delete entries older than ``days`` days; returns how many. For the retention job."""
    if days < 1:
        raise ValueError("audit retention must be at least one day")
    cutoff = (now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=days)
    async with engine.begin() as conn:
        result = await conn.execute(delete(audit_log).where(audit_log.c.occurred_at < cutoff))
    return int(result.rowcount or 0)


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive (they were written as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
