"""The encoder's thread budget: all cores while the machine is ours, one when it is not.

The rule is checked with readings handed in, and once against a real busy process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from knowledge.matching import cpu
from knowledge.matching.cpu import CoreBudget


class Counters:
    """Stand-in /proc/stat and process CPU readings, advanced by the test."""

    def __init__(self) -> None:
        self.machine = 100.0
        self.own = 10.0

    def spend(self, others: float, own: float) -> None:
        self.machine += others + own
        self.own += own


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> Counters:
    readings = Counters()
    monkeypatch.setattr(cpu, "_machine_busy_seconds", lambda: readings.machine)
    monkeypatch.setattr(cpu, "_own_cpu_seconds", lambda: readings.own)
    monkeypatch.setattr(cpu, "SAMPLE_SECONDS", 0.0)
    return readings


def test_our_own_work_does_not_count_as_a_busy_machine(counters: Counters) -> None:
    budget = CoreBudget(cores=2)
    assert budget.threads() == 2
    time.sleep(0.02)
    counters.spend(others=0.0, own=0.04)  # both cores ours for the whole interval
    assert budget.threads() == 2


def test_another_process_on_a_core_gets_us_down_to_one_thread(counters: Counters) -> None:
    budget = CoreBudget(cores=2)
    budget.threads()
    started = time.monotonic()
    time.sleep(0.05)
    counters.spend(others=time.monotonic() - started, own=0.0)  # one core busy elsewhere
    assert budget.threads() == 1
    time.sleep(0.05)
    counters.spend(others=0.0, own=0.01)  # it finished: back to every core
    assert budget.threads() == 2


def test_one_core_machines_never_split(counters: Counters) -> None:
    assert CoreBudget(cores=1).threads() == 1


def test_without_proc_stat_the_budget_stays_at_every_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpu, "_PROC_STAT", "/nonexistent/stat")
    monkeypatch.setattr(cpu, "SAMPLE_SECONDS", 0.0)
    budget = CoreBudget(cores=2)
    assert budget.threads() == 2
    assert budget.threads() == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_real_busy_process_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "SAMPLE_SECONDS", 0.0)
    budget = CoreBudget(cores=2)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        budget.threads()  # first reading
        time.sleep(1.0)
        assert budget.threads() == 1
    finally:
        hog.kill()
        hog.wait()
