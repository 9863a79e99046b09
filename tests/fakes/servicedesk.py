"""Stand-ins for the service desk and HR: real servers on 127.0.0.1 that record what they got.

- ``FakeTopdesk``: TOPdesk's incident API (``/tas/api/incidents`` …) with Basic auth,
  ``callerLookup`` by e-mail, the 80-character ``briefDescription`` limit, FIQL lookup by
  ``externalNumber`` and incident numbers like ``I 2611 001``.
- ``FakeTicketWebhook``: a receiver of kollega's JSON ticket webhook that checks the
  ``X-Kollega-Signature`` HMAC on the raw body before anything else.
- ``FakeHr``: the leave balance endpoint of ``adapters.leave``.
- ``SmtpServer``: an aiosmtpd server with STARTTLS (a trustme certificate) and AUTH.

Each HTTP fake is an aiohttp app for ``pytest-aiohttp``'s ``aiohttp_server`` (ephemeral
ports), and each can be told to misbehave: ``fail_with = 500`` answers that status to every
request, ``delay = 1.0`` answers late (after a client's timeout; the request still takes
effect, as on a slow real system). ``requests`` records every request as it arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import trustme
from aiohttp import encode_basic_auth, web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeService:
    """Records every request and fails on demand; subclasses add the routes."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.fail_with: int | None = None
        self.delay: float = 0.0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        if self.fail_with is not None:
            await asyncio.sleep(self.delay)
            return web.json_response({"message": "failure on purpose"}, status=self.fail_with)
        # The request takes effect first and the answer comes late, as on a slow system:
        # aiohttp may cancel the handler once the client has given up waiting.
        response = await handler(request)
        await asyncio.sleep(self.delay)
        return response


class FakeTopdesk(FakeService):
    """TOPdesk's incident API, as much of it as kollega uses."""

    def __init__(self, user: str, app_password: str, persons: set[str]) -> None:
        super().__init__()
        self.auth = encode_basic_auth(user, app_password)
        self.persons = {person.lower() for person in persons}
        self.incidents: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/tas/api/incidents", self._create)
        app.router.add_get("/tas/api/incidents", self._list)
        app.router.add_get("/tas/api/incidents/number/{number}", self._by_number)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == self.auth

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.Response(status=401)
        body = await request.json()
        if len(body.get("briefDescription", "")) > 80:
            return web.json_response([{"message": "briefDescription too long"}], status=400)
        if "callerLookup" in body:
            email = body["callerLookup"].get("email", "").lower()
            if email not in self.persons:
                return web.json_response(
                    [{"message": "No person found for callerLookup"}], status=400
                )
            caller = {"id": f"person-{email}", "dynamicName": email, "email": email}
        else:
            caller = {"id": None, **body.get("caller", {})}
        number = f"I 2611 {len(self.incidents) + 1:03d}"
        incident = {
            "id": f"id-{len(self.incidents) + 1}",
            "number": number,
            "caller": caller,
            "briefDescription": body.get("briefDescription", ""),
            "request": body.get("request", ""),
            "externalNumber": body.get("externalNumber", ""),
            "processingStatus": {"id": "st-1", "name": "Registrert"},
            "modificationDate": "2026-11-23T08:41:07.000+0000",
        }
        self.incidents[number] = incident
        return web.json_response(incident, status=201)

    async def _list(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.Response(status=401)
        match = re.fullmatch(r'externalNumber=="([^"]*)"', request.query.get("query", ""))
        if not match:
            return web.json_response([{"message": "unsupported query"}], status=400)
        found = [
            {"id": incident["id"], "number": incident["number"]}
            for incident in self.incidents.values()
            if incident["externalNumber"] == match.group(1)
        ]
        return web.json_response(found) if found else web.Response(status=204)

    async def _by_number(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return web.Response(status=401)
        incident = self.incidents.get(request.match_info["number"])
        if incident is None:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response(incident)


class FakeTicketWebhook(FakeService):
    """A receiver of kollega's ticket webhook; ``answer`` is what it says to a new ticket."""

    def __init__(self, secret: str = "") -> None:
        super().__init__()
        self.secret = secret
        self.answer: dict[str, Any] | None = None
        self.tickets: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/tickets", self._create)
        app.router.add_get("/tickets/{number}", self._status)

    def _signed(self, request: web.Request, body: bytes) -> bool:
        if not self.secret:
            return True
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Kollega-Signature", "")
        return hmac.compare_digest(expected, given)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self._signed(request, body):  # checked on the raw body, before parsing
            return web.json_response({"error": "bad signature"}, status=401)
        ticket = json.loads(body)
        self.tickets[ticket["reference"]] = ticket
        return web.json_response(self.answer) if self.answer else web.Response(status=202)

    async def _status(self, request: web.Request) -> web.StreamResponse:
        if not self._signed(request, b""):
            return web.json_response({"error": "bad signature"}, status=401)
        status = self.statuses.get(request.match_info["number"])
        if status is None:
            return web.json_response({"error": "unknown ticket"}, status=404)
        return web.json_response(status)


class FakeHr(FakeService):
    """The HR leave balance endpoint: ``GET /leave?upn=`` with a bearer token."""

    def __init__(self, token: str = "") -> None:
        super().__init__()
        self.token = token
        self.balances: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/leave", self._balance)

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorised"}, status=401)
        balance = self.balances.get(request.query.get("upn", "").lower())
        if balance is None:
            return web.json_response({"error": "unknown person"}, status=404)
        return web.json_response(balance)


def free_port() -> int:
    """A port nothing listens on right now: for servers that need one, and "refused" tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    data: bytes
    login: str


@dataclass
class _MailHandler:
    delay: float = 0.0
    fail_with: str | None = None  # an SMTP reply such as "451 4.3.0 try later"
    mails: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with:
            return self.fail_with
        login = session.auth_data.login.decode() if session.auth_data else ""
        self.mails.append(
            ReceivedMail(
                sender=envelope.mail_from or "",
                recipients=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content or b""),
                login=login,
            )
        )
        return "250 OK"


class SmtpServer:
    """A real SMTP server on 127.0.0.1: STARTTLS required before AUTH, AUTH before mail.

    ``client_tls_context`` trusts its certificate (the CA trustme made for this server).
    Use as a context manager; it runs in aiosmtpd's own thread.
    """

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.handler = _MailHandler()
        ca = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        self.client_tls_context = ssl.create_default_context()
        ca.configure_trust(self.client_tls_context)
        self.port = free_port()
        self.logins: list[tuple[str, bool]] = []
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=server_context,
            require_starttls=True,
            auth_required=True,
            authenticator=self._authenticate,
        )

    @property
    def mails(self) -> list[ReceivedMail]:
        return self.handler.mails

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = data.login.decode() == self.user and data.password.decode() == self.password
        self.logins.append((data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
