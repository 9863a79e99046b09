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

from bot.storage import StorageConflictError

logger = logging.getLogger(__name__)

IDLE_MINUTES = 60
KEPT_WHEN_IDLE = ("language", "welcomed")
_ETAG = "e_tag"
_MAX_LOCKS = 10_000


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
        """(memory to change, untouched copy, eTag)."""
        items = await self.storage.read([key])
        stored = dict(items.get(key) or {})
        etag = stored.pop(_ETAG, None)
        now = time.time()
        if now - stored.get("touched", now) > IDLE_MINUTES * 60:
            stored = {k: v for k, v in stored.items() if k in KEPT_WHEN_IDLE}
        return stored, copy.deepcopy(stored), etag

    async def save(
        self, key: str, memory: dict[str, Any], original: dict[str, Any], etag: str | None
    ) -> None:
        memory["touched"] = int(time.time())
        changed = {k: v for k, v in memory.items() if original.get(k) != v}
        removed = [k for k in original if k not in memory]
        document = dict(memory)
        for attempt in range(4):
            document[_ETAG] = etag or "*"
            try:
                await self.storage.write({key: document})
                return
            except (StorageConflictError, KeyError):
                if attempt == 3:
                    raise
                fresh = dict((await self.storage.read([key])).get(key) or {})
                etag = fresh.pop(_ETAG, None)
                fresh.update(changed)
                for k in removed:
                    fresh.pop(k, None)
                document = fresh
                logger.info("conversation memory changed under this turn; merged and retried")
