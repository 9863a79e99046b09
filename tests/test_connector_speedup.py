"""``speed_up_connector_clients`` changes msrest's retry policy's speed, never its result.

msrest 0.7.1 computes ``status_forcelist`` as every code below 999 that is not in
``safe_codes`` (a 500-item list, searched a thousand times per Connector client). The
speed-up makes ``safe_codes`` a frozenset; these tests compute the original list
independently — from msrest's documented rule written out here, and from msrest itself in
a fresh interpreter that never saw the speed-up — and compare everything the policy holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from msrest.universal_http.requests import ClientRetryPolicy

from adapters.bot_framework import speed_up_connector_clients

# msrest 0.7.1: safe_codes = [i for i in range(500) if i != 408] + [501, 505]
# and status_forcelist = [i for i in range(999) if i not in safe_codes].
EXPECTED_FORCELIST = [408, 500] + [code for code in range(502, 999) if code != 505]

_UNPATCHED = """
import json
from msrest.universal_http.requests import ClientRetryPolicy
assert isinstance(ClientRetryPolicy.safe_codes, list)
policy = ClientRetryPolicy().policy
print(json.dumps({
    "status_forcelist": policy.status_forcelist,
    "total": policy.total, "connect": policy.connect, "read": policy.read,
    "backoff_factor": policy.backoff_factor, "method_whitelist": policy.method_whitelist,
}))
"""


def _unpatched_policy() -> dict:
    """msrest's own policy, built in an interpreter where nothing patched it."""
    done = subprocess.run(
        [sys.executable, "-c", _UNPATCHED], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_retry_list_is_the_one_msrest_computes_without_the_speed_up() -> None:
    original = _unpatched_policy()
    assert original["status_forcelist"] == EXPECTED_FORCELIST

    speed_up_connector_clients()
    speed_up_connector_clients()  # idempotent
    policy = ClientRetryPolicy().policy

    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    assert list(policy.status_forcelist) == original["status_forcelist"]
    assert type(policy.status_forcelist) is list  # same type, same order
    assert policy.total == original["total"] == 3
    assert (policy.connect, policy.read) == (original["connect"], original["read"])
    assert policy.backoff_factor == original["backoff_factor"]
    assert policy.method_whitelist == original["method_whitelist"]


def test_the_safe_codes_are_the_same_codes() -> None:
    speed_up_connector_clients()
    assert set(ClientRetryPolicy.safe_codes) == {c for c in range(500) if c != 408} | {501, 505}


def test_the_retry_policy_is_built_much_faster() -> None:
    """The point of it: ~5 ms per Connector client before, ~0.1 ms after (measured here)."""
    script = """
import time
from msrest.universal_http.requests import ClientRetryPolicy
from adapters.bot_framework import speed_up_connector_clients
def best():
    times = []
    for _ in range(20):
        t = time.perf_counter(); ClientRetryPolicy(); times.append(time.perf_counter() - t)
    return min(times)
before = best()
speed_up_connector_clients()
print(before, best())
"""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = (float(v) for v in done.stdout.split())
    assert time.monotonic() - started < 60
    # Best-of-20 on each side; the real ratio is ~50x, 5x leaves room for a busy machine.
    assert after * 5 < before, (before, after)


async def test_turns_reuse_one_connector_client_and_its_connection(chat_factory, kollega) -> None:
    """CloudAdapter asks for new clients every turn; kollega hands back the same ones."""
    first, second = chat_factory(), chat_factory()
    for chat, text in ((first, "Jeg har glemt passordet mitt"), (second, "hjelp"), (first, "vpn")):
        assert await chat.messages(text)
    clients = kollega.channel.authentication.clients
    assert len(clients) == 2  # one Connector client for the service URL, one user-token client
    peers = {r.peer for r in first.connector.requests}
    assert len(peers) == 1, f"replies came over {len(peers)} connections"
