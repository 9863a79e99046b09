"""Rate limits: a flooding conversation is told once and then ignored; others are not affected."""

from __future__ import annotations

import time

from bot.limits import TokenBuckets
from dialogs.texts import text


def test_buckets_allow_a_burst_then_the_steady_rate() -> None:
    buckets = TokenBuckets(rate_per_second=2.0, burst=3)
    assert [buckets.take("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b", now=0.0)  # other keys have their own bucket
    assert not buckets.take("a", now=0.2)
    assert buckets.take("a", now=0.5)  # one token back after half a second at 2/s
    assert buckets.should_warn("a", 30, now=1.0)
    assert not buckets.should_warn("a", 30, now=20.0)
    assert buckets.should_warn("a", 30, now=31.5)


def test_forgotten_keys_are_bounded() -> None:
    buckets = TokenBuckets(rate_per_second=1.0, burst=1, max_keys=10)
    for i in range(100):
        buckets.take(str(i), now=0.0)
    assert len(buckets._buckets) == 10


async def test_a_flood_is_told_once_and_others_keep_being_answered(chat_factory) -> None:
    flooder = chat_factory(locale="nb-NO")
    replies = []
    started = time.monotonic()
    for _ in range(20):
        replies.append(await flooder.messages("glemt passord"))
    elapsed = time.monotonic() - started
    answered = [r for r in replies if r and "passord" in r[0]["text"].lower()]
    warned = [r for r in replies if r and r[0]["text"] == text("core.slow_down", "nb")]
    silent = [r for r in replies if not r]
    # The burst of 10, plus what refilled at 30 a minute while the test ran.
    assert 10 <= len(answered) <= 10 + int(elapsed * 0.5) + 1
    assert len(warned) == 1  # told once per quiet period ...
    assert len(silent) == 20 - len(answered) - 1  # ... and then not answered at all
    other = chat_factory(locale="nb-NO")
    (reply,) = await other.messages("glemt passord")
    assert "passord" in reply["text"].lower()
