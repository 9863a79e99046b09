"""A fake of Meta's Graph API for the Workplace adapter: a real aiohttp server that records calls.

It speaks the parts the adapter uses: ``POST /me/messages`` (Send API, answering
``{"recipient_id", "message_id"}``), ``POST /{object-id}/comments`` (answering ``{"id"}``),
``POST /{comment-id}`` (edit) and ``DELETE /{comment-id}``. Tests can script failures (a 429
with ``Retry-After``, a 5xx, a Graph error body) for the next calls to a path, and then
assert on exactly what arrived, including the ``Authorization`` header.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Recorded:
    """One call the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int  # what the fake answered


@dataclass(frozen=True, slots=True)
class Scripted:
    """An answer to give instead of success."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeWorkplaceGraph:
    """Serve ``app`` with ``aiohttp_server(fake.app)`` and point the adapter at its URL."""

    def __init__(self) -> None:
        self.calls: list[Recorded] = []
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls to ``path`` (e.g. ``/me/messages``) with ``status``."""
        for _ in range(times):
            self._scripts[path].append(Scripted(status, body, dict(headers or {})))

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Bodies of the Send API calls that succeeded, in order."""
        return [c.body for c in self._succeeded if c.path == "/me/messages"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Sent chat messages (not typing indicators), in order."""
        return [b for b in self.sent if "message" in b]

    def comments(self, object_id: str) -> list[str]:
        """Texts of the comments that succeeded under ``object_id``."""
        return [c.body["message"] for c in self._succeeded if c.path == f"/{object_id}/comments"]

    @property
    def _succeeded(self) -> list[Recorded]:
        return [c for c in self.calls if c.status == 200]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = dict(request.headers)
        script = self._scripts.get(request.path)
        if script:
            answer = script.popleft()
            self.calls.append(Recorded(request.method, request.path, headers, body, answer.status))
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        self.calls.append(Recorded(request.method, request.path, headers, body, 200))
        number = next(self._ids)
        if request.path == "/me/messages":
            recipient = (body or {}).get("recipient", {}) if isinstance(body, dict) else {}
            if "sender_action" in (body or {}):
                return web.json_response({"recipient_id": recipient.get("id")})
            return web.json_response(
                {"recipient_id": recipient.get("id"), "message_id": f"m_{number}"}
            )
        if request.path.endswith("/comments"):
            return web.json_response({"id": f"{request.path.split('/')[1]}_{number}"})
        return web.json_response({"success": True})
