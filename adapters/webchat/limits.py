"""Token buckets per key (a session, a client address), bounded in memory.

A person types a message every few seconds and taps a button now and then; a script sends
hundreds a second. A bucket of ``burst`` tokens refilled at ``per_second`` lets the person
through untouched and answers the script with 429 and how long to wait, before any of its
messages costs a bot turn. Buckets live in this process only: behind several replicas each
enforces its own share, which still bounds what one session can cost any one of them.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key)`` spends a token or says how many seconds until one is back.

    At most ``max_keys`` buckets are kept; the least recently used goes first. A dropped
    bucket comes back full, which only ever errs toward letting a person through.
    """

    def __init__(
        self,
        burst: float,
        per_second: float,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be >= 1 and per_second > 0")
        self.burst = float(burst)
        self.per_second = float(per_second)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> float:
        """0.0 if allowed (a token spent), else the seconds to wait (rounded up, at least 1)."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return float(max(1, math.ceil((1.0 - bucket.tokens) / self.per_second)))
