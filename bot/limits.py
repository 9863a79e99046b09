"""Rate limits: per conversation and per channel, so one noisy client cannot starve the rest.

Token buckets in memory: a burst is allowed, then a steady rate. A limited user is told
once per quiet period, politely, and further messages in that period are dropped without
a reply (replying to a flood would be a flood). Per process by design: with N replicas the
effective limit is N times higher, which is fine for protecting each replica.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned_at: float = -1e9


class TokenBuckets:
    """Many buckets with the same rate, keyed by string; the least recently used are forgotten."""

    def __init__(self, rate_per_second: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def take(self, key: str, now: float | None = None) -> bool:
        """True if a message may pass now."""
        now = time.monotonic() if now is None else now
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def should_warn(self, key: str, quiet_seconds: float, now: float | None = None) -> bool:
        """True at most once per ``quiet_seconds`` per key: when to say "slow down"."""
        now = time.monotonic() if now is None else now
        bucket = self._bucket(key, now)
        if now - bucket.warned_at >= quiet_seconds:
            bucket.warned_at = now
            return True
        return False


class TurnLimiter:
    """The two limits a message must pass: its conversation's and its channel's."""

    def __init__(
        self,
        per_conversation_per_minute: float,
        conversation_burst: float,
        per_channel_per_second: float,
        channel_burst: float,
    ) -> None:
        self.conversations = TokenBuckets(per_conversation_per_minute / 60.0, conversation_burst)
        self.channels = TokenBuckets(per_channel_per_second, channel_burst, max_keys=64)

    def allow(self, channel: str, conversation_key: str) -> bool:
        return self.conversations.take(conversation_key) and self.channels.take(channel)

    def warn(self, conversation_key: str) -> bool:
        return self.conversations.should_warn(conversation_key, quiet_seconds=30.0)
