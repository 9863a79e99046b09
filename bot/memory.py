"""A conversation's short-term memory (active dialog, language, last turns) in a ``Storage``.

Read at the start of a turn and written at its end with the eTag it was read with, so two
replicas serving one conversation cannot silently overwrite each other: on a conflict the
keys this turn changed are laid over the fresh copy and the write is tried again.

Memory is short-lived on purpose: after ``IDLE_MINUTES`` without a turn, everything but the
language is forgotten, so a half-finished dialog does not capture tomorrow's question and
text typed into a dialog does not linger.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from typing import Any

from botbuilder.core import Storage
from sqlalchemy.exc import SQLAlchemyError

from bot.storage import NEW_ITEM, StorageConflictError

logger = logging.getLogger(__name__)

IDLE_MINUTES = 60
KEPT_WHEN_IDLE = ("language", "welcomed")
_ETAG = "e_tag"
_MAX_LOCKS = 10_000
# What a storage that cannot reach its database raises (OSError covers refused and timeouts).
STORAGE_ERRORS = (SQLAlchemyError, OSError)
# The eTag ``load`` gives when the storage is down: ``save`` then writes nothing, so the
# blank memory of an outage never overwrites the real one when the database is back.
UNAVAILABLE = "kollega:memory-unavailable"
# Keys that several turns add to, merged entry by entry on a conflict instead of replaced:
# lists that turns append to (then cut to their length) and maps that turns add entries to.
APPENDED = ("transcript",)
MERGED = ("answered",)


class ConversationMemory:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    def lock(self, key: str) -> asyncio.Lock:
        """One turn at a time per conversation in this process (a user's quick double send)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > _MAX_LOCKS:
                oldest, old_lock = next(iter(self._locks.items()))
                if old_lock.locked():
                    break
                del self._locks[oldest]
        else:
            self._locks.move_to_end(key)
        return lock

    async def load(self, key: str) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """(memory to change, untouched copy, eTag); empty memory when the storage is down.

        A conversation's memory helps (an active dialog, the language) but is not needed to
        answer a question from the knowledge, so an outage must not fail the turn.
        """
        try:
            items = await self.storage.read([key])
        except STORAGE_ERRORS as error:
            logger.warning(
                "conversation memory unavailable (%s); answering without it", type(error).__name__
            )
            return {}, {}, UNAVAILABLE
        stored = dict(items.get(key) or {})
        etag = stored.pop(_ETAG, None)
        now = time.time()
        if now - stored.get("touched", now) > IDLE_MINUTES * 60:
            stored = {k: v for k, v in stored.items() if k in KEPT_WHEN_IDLE}
        return stored, copy.deepcopy(stored), etag

    async def save(
        self, key: str, memory: dict[str, Any], original: dict[str, Any], etag: str | None
    ) -> None:
        if etag == UNAVAILABLE:
            return
        memory["touched"] = int(time.time())
        changed = {k: v for k, v in memory.items() if original.get(k) != v}
        removed = [k for k in original if k not in memory]
        document = dict(memory)
        try:
            for attempt in range(4):
                # Nothing stored yet: create it, so a racing first turn elsewhere conflicts.
                document[_ETAG] = etag or NEW_ITEM
                try:
                    await self.storage.write({key: document})
                    return
                except (StorageConflictError, KeyError):
                    if attempt == 3:
                        raise
                    fresh = dict((await self.storage.read([key])).get(key) or {})
                    etag = fresh.pop(_ETAG, None)
                    for k, mine in changed.items():
                        fresh[k] = _merge(k, fresh.get(k), original.get(k), mine)
                    for k in removed:
                        fresh.pop(k, None)
                    document = fresh
                    logger.info("conversation memory changed under this turn; merged and retried")
        except STORAGE_ERRORS as error:
            # The user has had the answer; only this turn's memory is lost.
            logger.warning("conversation memory not saved (%s)", type(error).__name__)


def _merge(key: str, fresh: Any, original: Any, mine: Any) -> Any:
    """This turn's value of ``key`` laid over a newer one another turn wrote meanwhile.

    Most keys are replaced whole (an active dialog's state is one unit). Lists in
    ``APPENDED`` get this turn's new entries after the other turn's; maps in ``MERGED``
    get this turn's new and changed entries, and lose those this turn dropped. Either may
    end up a little longer than its owner's cap until the next turn cuts it.
    """
    if key in APPENDED and all(isinstance(v, list) for v in (fresh, mine)):
        before = original if isinstance(original, list) else []
        added = mine[_overlap(before, mine) :]
        merged = fresh + added
        trimmed = len(mine) < len(before) + len(added)  # this turn cut the list: keep its cap
        return merged[-len(mine) :] if trimmed else merged
    if key in MERGED and all(isinstance(v, dict) for v in (fresh, mine)):
        before = original if isinstance(original, dict) else {}
        merged = {k: v for k, v in fresh.items() if not (k in before and k not in mine)}
        merged.update({k: v for k, v in mine.items() if before.get(k) != v})
        return merged
    return mine


def _overlap(before: list[Any], after: list[Any]) -> int:
    """How many of ``after``'s first entries are ``before``'s last (what was kept of it)."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before[-size:] == after[:size]:
            return size
    return 0
