"""The outside world of a load run, in the load generator's process: connector and authority.

The bot under test gets its own process; everything it talks to lives here, on loopback:

* ``BenchConnector`` — a lean fake Bot Connector. The test suite's ``FakeConnector`` keeps
  every request (headers, bodies) for assertions; at a few hundred replies a second for
  minutes that is memory and CPU stolen from the bot on a 2-core machine, so this one only
  counts, checks the bearer token, and wakes the conversation waiting for its reply.
* ``start_authority`` — the test suite's fake Entra authority (``tests.fakes.graph``) over
  HTTPS with a throwaway CA, set up to issue the bot's outbound token.

The fake OpenID metadata server is ``tests.fakes.openid.openid_server`` unchanged (a thread:
botbuilder fetches keys with a blocking ``requests.get``; here it runs in another process
anyway).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.fakes.graph import FakeGraph, make_tls


@dataclass
class BenchConnector:
    """Counts replies per conversation and resolves the waiter of the turn that sent them."""

    accepted_tokens: list[str]  # the authority's ``tokens_issued``: any of them is right
    waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    replies: int = 0  # message activities received
    other_activities: int = 0  # typing indicators and the like
    bad_auth: int = 0
    unexpected: int = 0  # a message for a conversation nobody was waiting on
    statuses: Counter[int] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._send)
        return app

    def expect(self, conversation: str) -> asyncio.Future[float]:
        """A future that gets the ``perf_counter`` time of the conversation's next message."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[conversation] = future
        return future

    async def _send(self, request: web.Request) -> web.Response:
        received = time.perf_counter()
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.accepted_tokens:
            self.bad_auth += 1
            self.statuses[401] += 1
            return web.json_response({"error": {"code": "Unauthorized"}}, status=401)
        if body.get("type") == "message":
            self.replies += 1
            waiter = self.waiters.get(request.match_info["conversation"])
            if waiter is not None and not waiter.done():
                waiter.set_result(received)
            elif waiter is None:
                self.unexpected += 1
        else:
            self.other_activities += 1
        self.statuses[201] += 1
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)


@dataclass
class Authority:
    """A running fake authority: its state, HTTPS origin and CA file for the bot."""

    fake: FakeGraph
    url: str
    ca_file: Path
    runner: web.AppRunner


async def start_authority(folder: Path, app_id: str, password: str) -> Authority:
    """The fake Entra authority over HTTPS on an ephemeral loopback port, issuing bot tokens."""
    tls = make_tls(folder)
    fake = FakeGraph()
    fake.tenant_id = "botframework.com"
    fake.client_id = app_id
    fake.client_secret = password
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context)
    await site.start()
    port = runner.addresses[0][1]
    return Authority(fake, f"https://127.0.0.1:{port}", tls.ca_file, runner)


async def start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on an ephemeral loopback port; returns the runner and its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"
