"""A fake Entra ID authority and Microsoft Graph, over real HTTPS on loopback.

One aiohttp application answers what msal and ``adapters.graph.GraphClient`` ask: the
tenant's OpenID configuration and token endpoint (shaped like the captured payloads in
``tests/payloads/graph/``), and the Graph calls the contact lookup makes. It records
every request so tests can assert the exact wire traffic (headers, ``$search`` syntax,
``$select``, one token for many calls), and tests script failures per request: a 429
with ``Retry-After``, 5xx, or a slow answer.

TLS comes from a throwaway CA made with ``trustme``; ``start_fake_graph`` writes its PEM
to a file, the way ops hand ``KOLLEGA_GRAPH_CA_BUNDLE`` to the bot.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

logger = logging.getLogger(__name__)

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "graph"
TENANT_ID = "5f2b1c9e-0d4a-4e63-9a51-6c0e7d3b2a10"
CLIENT_ID = "0b7e4d21-3c8f-4a56-b1d9-2e6f8a0c5d43"
CLIENT_SECRET = "fake-secret"  # a test value, not a credential
CAPTURED_TENANT = "d6d49420-f39b-4df7-a1dc-d59a935871db"  # in the captured OpenID document
_SEARCH = re.compile(r'^"displayName:((?:[^"\\]|\\.)*)"$')
_TOKENS = re.compile(r"\w+", re.UNICODE)


def payload(name: str) -> Any:
    """A captured payload from ``tests/payloads/graph`` (a fresh copy each time)."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def user(
    id: str,
    name: str,
    *,
    title: str = "",
    department: str = "",
    office: str = "",
    mail: str = "",
    upn: str = "",
    phones: tuple[str, ...] = (),
    mobile: str = "",
) -> dict[str, Any]:
    """A directory user shaped as Graph returns one (all PERSON_FIELDS and a few more)."""
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": id,
        "displayName": name,
        "givenName": name.split()[0],
        "jobTitle": title or None,
        "department": department or None,
        "officeLocation": office or None,
        "mail": mail or None,
        "userPrincipalName": upn or mail or f"{id}@example.org",
        "businessPhones": list(phones),
        "mobilePhone": mobile or None,
        "accountEnabled": True,
        "employeeId": "not-selected",  # proves $select is honoured
    }


@dataclass(slots=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Scripted:
    """A canned answer for the next Graph request (not the authority's)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0  # seconds before answering (for timeouts)


class FakeGraph:
    """State and handlers of the fake authority + Graph. Tests edit the public fields."""

    def __init__(self) -> None:
        self.tenant_id = TENANT_ID
        self.client_id = CLIENT_ID
        self.client_secret = CLIENT_SECRET
        self.requests: list[Recorded] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.managers: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, list[str]] = {}
        self.page_size = 2
        self.script: deque[Scripted] = deque()
        self.authority_delay = 0.0
        self.tokens_issued: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        for index, item in enumerate(payload("users-search.json")["value"]):
            # The documented example has no ids; a directory always has them.
            self.add(dict(item, id=f"0000000{index}-doc0-4000-8000-000000000000"))

    # Test helpers ----------------------------------------------------------------------

    def add(self, *users: dict[str, Any]) -> None:
        for item in users:
            self.users[item["id"]] = item

    def graph_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1.0/")]

    def token_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/oauth2/v2.0/token")]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        tenant = "/{tenant}"
        app.router.add_get(f"{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        app.router.add_post(f"{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/common/discovery/instance", self._instance_discovery)
        app.router.add_get("/v1.0/users", self._users)
        app.router.add_get("/v1.0/users/{id}", self._user)
        app.router.add_get("/v1.0/users/{id}/manager", self._manager)
        app.router.add_get(
            "/v1.0/users/{id}/transitiveMemberOf/microsoft.graph.group", self._member_of
        )
        return app

    # Plumbing ----------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), form)
        )
        if request.path.startswith("/v1.0/"):
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.tokens_issued:
                return _error(401, "InvalidAuthenticationToken", "Access token is empty.")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.script:
                    step = self.script.popleft()
                    if step.delay:
                        await asyncio.sleep(step.delay)
                    if step.status != 200 or step.body is not None:
                        return web.json_response(
                            step.body, status=step.status, headers=step.headers
                        )
                return await handler(request)
            finally:
                self.in_flight -= 1
        if self.authority_delay:
            await asyncio.sleep(self.authority_delay)
        return await handler(request)

    def _origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def _openid(self, request: web.Request) -> web.Response:
        if request.match_info["tenant"] != self.tenant_id:
            return web.json_response({"error": "invalid_tenant"}, status=400)
        text = json.dumps(payload("entra-openid-configuration-botframework-tenant.json"))
        text = text.replace(
            f"https://login.microsoftonline.com/{CAPTURED_TENANT}",
            f"{self._origin(request)}/{self.tenant_id}",
        )
        return web.json_response(json.loads(text))

    async def _token(self, request: web.Request) -> web.Response:
        form = self.requests[-1].form
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"},
                status=401,
            )
        body = payload("entra-token-client-credentials.json")
        body["access_token"] = f"fake-access-token-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(body["access_token"])
        return web.json_response(body)

    async def _instance_discovery(self, request: web.Request) -> web.Response:
        return web.json_response(payload("entra-instance-discovery.json"))

    async def _users(self, request: web.Request) -> web.Response:
        query = request.query
        found = list(self.users.values())
        if "$search" in query:
            if request.headers.get("ConsistencyLevel") != "eventual":
                return _error(400, "Request_UnsupportedQuery", "Unsupported query.")
            match = _SEARCH.match(query["$search"])
            if not match:
                return _error(400, "Request_UnsupportedQuery", "Syntax error in $search.")
            term = re.sub(r"\\(.)", r"\1", match.group(1))
            wanted = [t.casefold() for t in _TOKENS.findall(term)]
            found = [u for u in found if _tokens_match(wanted, u.get("displayName") or "")]
        if query.get("$orderby") == "displayName":
            found.sort(key=lambda u: (u.get("displayName") or "").casefold())
        count = len(found)
        found = found[: int(query.get("$top", "100"))]
        body: dict[str, Any] = {
            "@odata.context": f"{self._origin(request)}/v1.0/$metadata#users",
            "value": [_select(u, query.get("$select")) for u in found],
        }
        if query.get("$count") == "true":
            body["@odata.count"] = count
        return web.json_response(body)

    async def _user(self, request: web.Request) -> web.Response:
        found = self.users.get(request.match_info["id"])
        if found is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        return web.json_response(_select(found, request.query.get("$select")))

    async def _manager(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.users:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        manager = self.managers.get(request.match_info["id"])
        if manager is None:
            return _error(404, "Request_ResourceNotFound", "Resource 'manager' does not exist.")
        return web.json_response(_select(manager, request.query.get("$select")))

    async def _member_of(self, request: web.Request) -> web.Response:
        groups = self.groups.get(request.match_info["id"])
        if groups is None:
            return _error(404, "Request_ResourceNotFound", "Resource does not exist.")
        start = int(request.query.get("$skiptoken", "0"))
        page = groups[start : start + self.page_size]
        template = payload("user-transitive-member-of-groups-search.json")
        body: dict[str, Any] = {
            "@odata.context": template["@odata.context"].replace(
                "https://graph.microsoft.com", self._origin(request)
            ),
            "value": [{"id": group_id} for group_id in page],
        }
        if start + self.page_size < len(groups):
            body["@odata.nextLink"] = str(
                request.url.with_query({"$select": "id", "$skiptoken": str(start + self.page_size)})
            )
        return web.json_response(body)


def _tokens_match(wanted: list[str], display_name: str) -> bool:
    """Graph's directory search: every search token a prefix of some name token, any order."""
    have = [t.casefold() for t in _TOKENS.findall(display_name)]
    return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)


def _select(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return copy.deepcopy(item)
    fields = select.split(",")
    return {k: copy.deepcopy(v) for k, v in item.items() if k in fields or k == "@odata.type"}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@dataclass(slots=True)
class TLS:
    """A throwaway CA, the server context it signed, and the CA's PEM file."""

    ca: trustme.CA
    server_context: ssl.SSLContext
    ca_file: Path


def make_tls(folder: Path) -> TLS:
    """A CA trusted by nothing but this test, and a loopback certificate it issued."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca_file = folder / "graph-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLS(ca, context, ca_file)


@dataclass(slots=True)
class Running:
    """A started fake: where it listens and the state tests drive."""

    fake: FakeGraph
    url: str  # https://127.0.0.1:port, used as both Graph URL and authority
    tls: TLS


async def start_fake_graph(aiohttp_server: Any, folder: Path) -> Running:
    """Serve a ``FakeGraph`` over HTTPS on an ephemeral loopback port in this loop.

    msal's requests run in the client's worker thread, so serving from the test's own
    loop is fine: the loop is free while the client awaits the thread.
    """
    tls = make_tls(folder)
    fake = FakeGraph()
    server = await aiohttp_server(fake.app(), ssl=tls.server_context)
    return Running(fake, str(server.make_url("")).rstrip("/"), tls)
