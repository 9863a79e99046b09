"""One anonymous event per turn, so content owners see what was asked and what went unanswered.

Privacy is designed in, not filtered out later: an event has no user id, name, aadObjectId
or raw conversation id; its text is scrubbed of personal data before it is queued; its time
is cut to the minute. Conversations are counted through a keyed hash whose key rotates
daily and is derived, never stored, so yesterday's hashes cannot be linked to today's.

Events are buffered and written in batches off the turn's path. When the database is down
the buffer keeps them (bounded) and writes them when it is back: an accepted event is not
lost, and a user's turn never waits for, or fails with, the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db_work
from bot.db import metadata
from bot.event_spool import EventSpool
from bot.privacy import scrub

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500

events = Table(
    "analytics_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("channel", String(32), nullable=False),
    Column("language", String(8), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("intent", String(200)),
    Column("domain", String(100)),
    Column("score", Float),
    Column("feedback", SmallInteger),  # +1 👍, -1 👎
    Column("question", Text),  # scrubbed, truncated; never with identity
    Column("conversation_hash", String(16)),  # daily-rotating keyed hash, for counting only
)


@dataclass(frozen=True, slots=True)
class Event:
    occurred_at: datetime
    channel: str
    language: str
    outcome: str
    intent: str | None = None
    domain: str | None = None
    score: float | None = None
    feedback: int | None = None
    question: str | None = None
    conversation_hash: str | None = None


class ConversationCounter:
    """Hashes conversation ids with a key that changes every day and is never written down.

    With ``secret`` set (the same on every replica) all replicas derive the same daily key,
    so a conversation that moves between replicas is still counted once.
    """

    def __init__(self, secret: str = "") -> None:
        self._secret = secret.encode() or secrets.token_bytes(32)
        self._day: date | None = None
        self._key = b""

    def hash(self, conversation_id: str, today: date | None = None) -> str:
        today = today or datetime.now(UTC).date()
        if today != self._day:
            self._key = hmac.new(self._secret, today.isoformat().encode(), hashlib.sha256).digest()
            self._day = today
        return hmac.new(self._key, conversation_id.encode(), hashlib.sha256).hexdigest()[:16]


def make_event(
    *,
    channel: str,
    language: str,
    outcome: str,
    question: str | None,
    intent: str | None = None,
    domain: str | None = None,
    score: float | None = None,
    feedback: int | None = None,
    conversation_hash: str | None = None,
    now: datetime | None = None,
) -> Event:
    """An event ready to store: minute resolution, question scrubbed and cut."""
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    text = scrub(question[:MAX_QUESTION_CHARS]) if question else None
    return Event(
        occurred_at=now,
        channel=channel[:32],
        language=language[:8],
        outcome=outcome,
        intent=intent,
        domain=domain,
        score=None if score is None else round(float(score), 4),
        feedback=feedback,
        question=text,
        conversation_hash=conversation_hash,
    )


def _insert(batches: list[list[Event]], conn: Connection) -> None:
    for batch in batches:
        conn.execute(insert(events), [asdict(e) for e in batch])


class AnalyticsRecorder:
    """Queues events and writes them in batches; survives a database that comes and goes."""

    def __init__(
        self,
        engine: AsyncEngine,
        flush_seconds: float = 1.0,
        max_buffer: int = 50_000,
        batch_size: int = 500,
        spool: str | None = None,
    ) -> None:
        self.engine = engine
        self._spool = EventSpool(spool, Event) if spool else None
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self._buffer: deque[Event] = deque(maxlen=max_buffer)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.healthy = True

    def record(self, event: Event) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1  # the oldest goes; counted so /metrics can show it
        self._buffer.append(event)
        if self._spool is not None:
            try:
                self._spool.append(event)
            except OSError as exc:  # a full disk must not fail the user's turn
                logger.warning("analytics spool not written: %s", type(exc).__name__)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        if self._spool is not None:
            self._buffer.extendleft(reversed(self._spool.load()))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="analytics-writer")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Let the writer finish the batch it is writing, then write what is left.

        Not a bare cancel: one landing mid-INSERT would abandon the statement half-way.
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
            self._stopping = False
        await self.flush()
        if self._spool is not None:
            self._spool.close()

    async def flush(self) -> int:
        """Write what is buffered; returns how many were written (0 when the database is down).

        Everything pending goes in one transaction (in batches of ``batch_size`` rows), so
        the spool can then be cut to exactly the events that arrived meanwhile.
        """
        async with self._lock:
            pending = list(self._buffer)
            if not pending:
                return 0
            dropped_before = self.dropped
            batches = [
                pending[i : i + self.batch_size] for i in range(0, len(pending), self.batch_size)
            ]
            try:
                await db_work.write(self.engine, functools.partial(_insert, batches))
            except (SQLAlchemyError, OSError) as exc:
                if self.healthy:
                    logger.warning(
                        "analytics database unavailable (%s); keeping %d events buffered",
                        type(exc).__name__,
                        len(self._buffer),
                    )
                self.healthy = False
                return 0
            # a full buffer drops its oldest while we write: those were in `pending` already
            for _ in range(max(0, len(pending) - (self.dropped - dropped_before))):
                self._buffer.popleft()
            if self._spool is not None:
                try:
                    self._spool.rewrite(self._buffer)
                except OSError as exc:
                    logger.warning("analytics spool not cut: %s", type(exc).__name__)
            if not self.healthy:
                logger.info("analytics database is back; buffered events written")
            self.healthy = True
            return len(pending)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the writer must outlive any surprise
                logger.exception("analytics flush failed")
