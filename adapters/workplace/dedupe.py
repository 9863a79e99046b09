"""A bounded, time-limited memory of webhook events already handled.

Meta retries a delivery it thinks failed (a slow answer, a network hiccup), and may deliver
one event twice anyway; without this the bot would answer the same question twice. The
memory is bounded in size so a flood of unique events cannot grow it without limit, and
entries expire so the process does not remember ids forever.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class SeenEvents:
    """Remembers event keys for ``ttl_seconds``, at most ``max_entries`` (oldest go first)."""

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries < 1:
            raise ValueError("ttl_seconds and max_entries must be positive")
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[Hashable, float] = OrderedDict()

    def first_time(self, key: Hashable) -> bool:
        """Record ``key``; True if it was not seen within the TTL (so: handle the event)."""
        now = self._clock()
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now + self._ttl
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order (constant TTL), so stop at the first live entry.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
