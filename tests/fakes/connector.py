"""A fake Bot Connector service: where replies go when an Activity's serviceUrl points here.

It speaks the Bot Framework REST API's shape (``POST /v3/conversations/{id}/activities``
and ``…/activities/{replyToId}``, answered 201 with ``{"id": …}``, plus the Teams member
lookup) and records every request, headers included, so tests assert on what a real
channel would have received.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: Any = None  # the caller's (host, port): one connection reused shows one port


@dataclass
class FakeConnector:
    requests: list[RecordedRequest] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_with: int | None = None  # answer every send with this status, to test failures
    delay: float = 0.0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._send)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        # Teams' service URLs carry region and tenant path segments: accept any prefix.
        app.router.add_post("/{prefix:.*}/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post(
            "/{prefix:.*}/v3/conversations/{conversation}/activities/{reply_to}", self._send
        )
        return app

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.headers),
                body,
                request.transport.get_extra_info("peername") if request.transport else None,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with:
            return web.json_response({"error": {"code": "Failure"}}, status=self.fail_with)
        return web.json_response({"id": f"activity-{next(self._ids)}"}, status=201)

    async def _member(self, request: web.Request) -> web.Response:
        member = self.members.get(request.match_info["member"])
        if member is None:
            return web.json_response({"error": {"code": "MemberNotFound"}}, status=404)
        return web.json_response(member)

    @property
    def activities(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST"]

    def messages(self) -> list[dict[str, Any]]:
        return [a for a in self.activities if a.get("type") == "message"]

    def clear(self) -> None:
        self.requests.clear()
