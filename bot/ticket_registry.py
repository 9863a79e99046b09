"""Which tickets a user reported through kollega, kept without who they are or what they wrote.

kollega must not store a user's identity with what they asked, yet "status på sak 1234"
must only answer the person who reported 1234. The registry squares that: per ticket it
keeps kollega's reference, the ticket system's number, the system's name, the creation
date (a day, not a time) and a keyed hash of the reporter's principal name:
``HMAC-SHA256(KOLLEGA_TICKET_SALT, lower(principal name))``. The salt is a server-side
secret, so the hash cannot be reversed by hashing a staff list without it; no text of the
ticket is stored at all.

The registry also hands out references: ``reserve`` takes the day's next
``KOL-YYYYMMDD-NNNN`` under a unique key (replicas that collide simply try the next one)
before the ticket is sent, ``confirm`` adds the number once the system answers, and
``release`` gives a reservation up when the user cancels after a failed try.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Column, Date, String, Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.tickets import REFERENCE_PREFIX, format_reference
from bot.db import metadata

logger = logging.getLogger(__name__)

__all__ = ["TicketRecord", "TicketRegistry", "create_tables", "tickets"]

tickets = Table(
    "tickets",
    metadata,
    Column("reference", String(32), primary_key=True),
    Column("number", String(64), nullable=True),  # null while the ticket is being sent
    Column("system", String(16), nullable=False),
    Column("reporter_hash", String(64), nullable=False, index=True),
    Column("created", Date, nullable=False),
)

RESERVE_ATTEMPTS = 20
_SEPARATORS = re.compile(r"[\s\-_/.#]+")


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A ticket the asking user reported: enough to look it up, nothing they wrote."""

    reference: str
    number: str
    system: str
    created: date


class TicketRegistry:
    """The ``tickets`` table, keyed to a secret salt that never leaves the server."""

    def __init__(self, engine: AsyncEngine, salt: str) -> None:
        if not salt:
            raise ValueError("the ticket registry needs a salt (KOLLEGA_TICKET_SALT)")
        self.engine = engine
        self._salt = salt.encode("utf-8")

    def reporter_hash(self, principal_name: str) -> str:
        """The keyed hash stored instead of ``principal_name``."""
        normalised = principal_name.strip().lower().encode("utf-8")
        return hmac.new(self._salt, normalised, hashlib.sha256).hexdigest()

    async def reserve(self, system: str, reporter: str, day: date | None = None) -> str:
        """A new reference for a ticket ``reporter`` is about to send to ``system``."""
        day = day or date.today()
        prefix = f"{REFERENCE_PREFIX}-{day:%Y%m%d}-"
        row = {"system": system, "reporter_hash": self.reporter_hash(reporter), "created": day}
        for _ in range(RESERVE_ATTEMPTS):
            async with self.engine.connect() as connection:
                # Longest first, then highest: "…-10000" sorts after "…-9999".
                last = await connection.scalar(
                    select(tickets.c.reference)
                    .where(tickets.c.reference.like(prefix + "%"))
                    .order_by(func.length(tickets.c.reference).desc(), tickets.c.reference.desc())
                    .limit(1)
                )
            sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1
            reference = format_reference(day, sequence)
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(tickets.insert().values(reference=reference, **row))
            except IntegrityError:
                continue  # another replica took it in the meantime
            return reference
        raise RuntimeError(f"no free ticket reference for {day:%Y-%m-%d}")

    async def confirm(self, reference: str, number: str) -> None:
        """Record the ticket system's number for ``reference`` once it created the ticket."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(tickets).where(tickets.c.reference == reference).values(number=number)
            )

    async def release(self, reference: str) -> None:
        """Forget a reservation whose ticket was never created (the user gave up)."""
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(tickets).where(tickets.c.reference == reference, tickets.c.number.is_(None))
            )

    async def recent(self, reporter: str, limit: int = 5) -> list[TicketRecord]:
        """``reporter``'s created tickets, newest first."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(tickets.c.reference, tickets.c.number, tickets.c.system, tickets.c.created)
                .where(
                    tickets.c.reporter_hash == self.reporter_hash(reporter),
                    tickets.c.number.is_not(None),
                )
                .order_by(tickets.c.created.desc(), tickets.c.reference.desc())
                .limit(limit)
            )
            return [TicketRecord(*row) for row in rows]

    async def find(self, reporter: str, number: str, within: int = 200) -> TicketRecord | None:
        """``reporter``'s ticket known by ``number`` or reference, however it was typed.

        "I2311 042", "i 2311-042" and "I 2311 042" are one TOPdesk number, and a user may
        leave out its letter; comparing among the reporter's own tickets keeps that fuzzy
        match from ever reaching someone else's.
        """
        wanted = _normalise(number)
        if not wanted:
            return None
        for record in await self.recent(reporter, limit=within):
            for known in (_normalise(record.number), _normalise(record.reference)):
                if wanted == known or (
                    known.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == wanted and len(wanted) >= 4
                ):
                    return record
        return None

    async def forget_older_than(self, days: int, today: date | None = None) -> int:
        """Delete entries created more than ``days`` ago; returns how many went."""
        cutoff = (today or date.today()) - timedelta(days=days)
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(tickets).where(tickets.c.created < cutoff))
        return result.rowcount or 0


def _normalise(number: str) -> str:
    return _SEPARATORS.sub("", number).upper()


async def create_tables(engine: AsyncEngine) -> None:
    """Create the ``tickets`` table (tests; deployments use ``alembic upgrade head``)."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all, tables=[tickets])
