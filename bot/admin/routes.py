"""``/admin`` (dashboard for content owners) and ``/api/admin/*`` (the same, for scripts).

With ``KOLLEGA_ADMIN_TOKEN`` empty every admin path answers 404: an admin surface that
is not configured must not exist. Every admin response carries the security headers
(a CSP without inline script, no framing, no sniffing, no referrer, no caching), whether
it is a page, JSON, a PNG or an error.

The pages are rendered on the server with Jinja2 autoescaping; the one script is a
static file that progressively enhances the "copy to intent" forms, which also work
without it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web
from sqlalchemy import select

from bot.admin.examples import AddedExample, ExampleRefused, add_example, restore
from bot.admin.session import (
    CSRF_HEADER,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    SessionSigner,
    clear_cookie,
    same_origin,
    same_secret,
    set_cookie,
)
from bot.analytics import events
from bot.audit import AuditAction, actor_for
from bot.audit import record as audit_record
from bot.report import jinja, period_title, setting
from bot.report_chart import trend_png
from bot.report_data import MAX_PERIOD_DAYS, collect
from bot.report_targets import load_report_targets
from bot.retention import DEFAULT_TIMEZONE, as_utc, day_bounds, delete_day, report_timezone
from bot.settings import SUPPORTED_LANGUAGES

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {"admin.css": "text/css", "admin.js": "text/javascript"}
DEFAULT_PERIOD_DAYS = 7
MAX_JSON_BYTES = 16 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the
    # page's own form posts, which the origin check must refuse
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
EXPORT_COLUMNS = (
    "occurred_at",
    "channel",
    "language",
    "outcome",
    "intent",
    "domain",
    "score",
    "feedback",
    "question",
    "conversation_hash",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _secured(handler: Handler) -> Handler:
    """Adds the security headers to the handler's response, errors included."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(SECURITY_HEADERS)
            raise
        response.headers.update(SECURITY_HEADERS)
        return response

    return wrapped


class Lockout:
    """Refuses a client after repeated wrong tokens, for a while: guessing costs time."""

    def __init__(self, max_failures: int, seconds: float, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.seconds = seconds
        self.max_clients = max_clients
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.seconds]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def locked(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return len(self._recent(client, now)) >= self.max_failures

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) >= self.max_clients and client not in self._failures:
            self._failures.pop(next(iter(self._failures)))
        self._recent(client, now)
        self._failures.setdefault(client, []).append(now)
        if len(self._failures[client]) == self.max_failures:
            logger.warning("admin locked out a client after %d wrong tokens", self.max_failures)


def _client(request: web.Request) -> str:
    """Who is guessing. Behind nginx the peer is the proxy, which sets X-Real-IP; the header
    is believed only from a proxy on a private address, or anyone could pick a new one."""
    peer = request.remote or "unknown"
    forwarded = request.headers.get("X-Real-IP", "")
    try:
        behind_proxy = ipaddress.ip_address(peer).is_private
    except ValueError:
        behind_proxy = False
    return forwarded if forwarded and behind_proxy else peer


def _locked_out() -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=json.dumps({"error": "too many wrong tokens; try again later"}),
        content_type="application/json",
        headers={"Retry-After": "900"},
    )


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _problem(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status)


class AdminSite:
    """The admin handlers of one app; holds nothing global."""

    def __init__(self, kollega: Any) -> None:
        self.kollega = kollega
        self.settings = kollega.settings
        self.token = str(self.settings.admin_token)
        self.signer = SessionSigner(self.token)
        self.zone = report_timezone(setting(self.settings, "report_timezone", DEFAULT_TIMEZONE))
        self.edit_lock = asyncio.Lock()  # one knowledge edit at a time in this process
        self.lockout = Lockout(
            int(setting(self.settings, "admin_max_failures", 5)),
            float(setting(self.settings, "admin_lockout_seconds", 900.0)),
        )

    @property
    def engine(self) -> Any:
        return self.kollega.analytics.engine

    @property
    def folder(self) -> Path:
        return Path(self.kollega.knowledge.folder)

    async def audit(self, action: AuditAction, target: str = "", result: str = "ok") -> None:
        """Who did what, when; an admin action is not refused because the log is down."""
        try:
            await audit_record(
                self.engine, actor=actor_for(None), action=action, target=target, result=result
            )
        except Exception as exc:
            logger.error("audit log not written for %s: %s", action, type(exc).__name__)

    # -- who is asking -------------------------------------------------------------------

    def bearer_ok(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and same_secret(given.strip(), self.token)

    def session(self, request: web.Request) -> Session | None:
        return self.signer.check(request.cookies.get(SESSION_COOKIE))

    def require_api(self, request: web.Request) -> None:
        """Bearer token, or a session cookie (plus CSRF header for changes)."""
        client = _client(request)
        if self.lockout.locked(client):
            raise _locked_out()
        if self.bearer_ok(request):
            return
        if request.headers.get("Authorization"):
            self.lockout.failed(client)  # a wrong token, not a browser without one
        session = self.session(request)
        if session is None:
            raise web.HTTPUnauthorized(
                text=json.dumps({"error": "send Authorization: Bearer <KOLLEGA_ADMIN_TOKEN>"}),
                content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="kollega admin"'},
            )
        if request.method not in ("GET", "HEAD") and not (
            same_origin(request) and same_secret(request.headers.get(CSRF_HEADER, ""), session.csrf)
        ):
            raise web.HTTPForbidden(
                text=json.dumps({"error": "missing or wrong CSRF token"}),
                content_type="application/json",
            )

    def require_page(self, request: web.Request) -> Session:
        session = self.session(request)
        if session is None:
            raise web.HTTPSeeOther("/admin/login")
        return session

    def require_form_csrf(self, request: web.Request, form: Any, session: Session) -> None:
        if not (
            same_origin(request) and same_secret(str(form.get("csrf_token", "")), session.csrf)
        ):
            raise web.HTTPForbidden(text="missing or wrong CSRF token")

    # -- parameters ------------------------------------------------------------------------

    def today(self) -> date:
        return datetime.now(self.zone).date()

    def period(self, query: Any) -> tuple[date, date, str | None]:
        try:
            if query.get("day"):
                start = end = date.fromisoformat(query["day"])
            else:
                end = date.fromisoformat(query["to"]) if query.get("to") else self.today()
                start = (
                    date.fromisoformat(query["from"])
                    if query.get("from")
                    else end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
                )
        except ValueError as exc:
            raise web.HTTPBadRequest(text="dates are written YYYY-MM-DD") from exc
        if end < start:
            start, end = end, start
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise web.HTTPBadRequest(text=f"a period may span at most {MAX_PERIOD_DAYS} days")
        domain = (query.get("domain") or "").strip() or None
        return start, end, domain

    def day(self, request: web.Request) -> date:
        try:
            return date.fromisoformat(request.query.get("day", ""))
        except ValueError as exc:
            raise web.HTTPBadRequest(
                text=json.dumps({"error": "day=YYYY-MM-DD is required"}),
                content_type="application/json",
            ) from exc

    async def figures(
        self, start: date, end: date, domain: str | None, with_knowledge: bool = True
    ):
        return await collect(
            self.engine,
            start,
            end,
            zone=self.zone,
            domain=domain,
            knowledge_dir=self.folder if with_knowledge else None,
            today=self.today(),
        )

    # -- pages ---------------------------------------------------------------------------

    async def login_page(self, request: web.Request, error: str = "", status: int = 200):
        if error == "" and self.session(request) is not None:
            raise web.HTTPSeeOther("/admin")
        login_csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        html = (
            jinja()
            .get_template("login.html")
            .render(static="/admin/static", action="/admin/login", csrf=login_csrf, error=error)
        )
        response = web.Response(text=html, content_type="text/html", status=status)
        set_cookie(response, request, LOGIN_COOKIE, login_csrf)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not (same_origin(request) and same_secret(str(form.get("csrf_token", "")), expected)):
            return await self.login_page(request, "The form expired; try again.", 403)
        client = _client(request)
        if self.lockout.locked(client):
            return await self.login_page(
                request, "Too many wrong tokens; try again later / For mange feil forsøk.", 429
            )
        if not same_secret(str(form.get("token", "")), self.token):
            self.lockout.failed(client)
            logger.warning("admin login refused")
            await self.audit(AuditAction.ADMIN_LOGIN_FAILED, result="refused")
            return await self.login_page(request, "Wrong token / Feil nøkkel.", 401)
        cookie, _ = self.signer.issue()
        response = _redirect("/admin")
        set_cookie(response, request, SESSION_COOKIE, cookie)
        clear_cookie(response, LOGIN_COOKIE)
        logger.info("admin logged in")
        await self.audit(AuditAction.ADMIN_LOGIN)
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session = self.require_page(request)
        self.require_form_csrf(request, await request.post(), session)
        response = _redirect("/admin/login")
        clear_cookie(response, SESSION_COOKIE)
        await self.audit(AuditAction.ADMIN_LOGOUT)
        return response

    async def dashboard(
        self,
        request: web.Request,
        query: Any = None,
        notice: str = "",
        problems: list[str] | None = None,
        status: int = 200,
    ) -> web.StreamResponse:
        session = self.require_page(request)
        query = request.query if query is None else query
        start, end, domain = self.period(query)
        figures = await self.figures(start, end, domain)
        knowledge = self.kollega.knowledge.current
        params = {"from": start.isoformat(), "to": end.isoformat(), "domain": domain or ""}
        languages = sorted(set(SUPPORTED_LANGUAGES) | knowledge.languages())
        html = (
            jinja()
            .get_template("dashboard.html")
            .render(
                f=figures,
                title=period_title(figures),
                static="/admin/static",
                dashboard="/admin",
                logout_action="/admin/logout",
                chart_src="/admin/chart.png?" + urlencode(params),
                domains=sorted(knowledge.domains),
                notice=notice,
                problems=problems or [],
                admin={
                    "csrf": session.csrf,
                    "examples_action": "/admin/examples",
                    "back": "/admin?" + urlencode(params),
                    "intents": sorted(
                        i for i in knowledge.intents if not domain or i.startswith(f"{domain}.")
                    ),
                    "languages": languages,
                },
            )
        )
        return web.Response(text=html, content_type="text/html", status=status)

    async def chart(self, request: web.Request) -> web.StreamResponse:
        self.require_page(request)
        start, end, domain = self.period(request.query)
        figures = await self.figures(start, end, domain, with_knowledge=False)
        png = await asyncio.to_thread(trend_png, figures.trend)
        return web.Response(body=png, content_type="image/png")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_TYPES:
            raise web.HTTPNotFound()
        return web.Response(
            body=(STATIC / name).read_bytes(), content_type=STATIC_TYPES[name], charset="utf-8"
        )

    async def example_form(self, request: web.Request) -> web.StreamResponse:
        """The no-script path of "copy to intent": a plain form post, the page re-rendered."""
        session = self.require_page(request)
        form = await request.post()
        self.require_form_csrf(request, form, session)
        back = str(form.get("back", ""))
        parts = urlsplit(back)
        query = dict(parse_qsl(parts.query)) if parts.path == "/admin" and not parts.netloc else {}
        try:
            added = await self.add(
                str(form.get("intent", "")),
                str(form.get("language", "")),
                str(form.get("text", "")),
            )
        except ExampleRefused as refused:
            return await self.dashboard(
                request, query, problems=[refused.message, *refused.problems], status=refused.status
            )
        return await self.dashboard(
            request, query, notice=f"Added to {added.intent} ({added.file}:{added.line})."
        )

    # -- API -----------------------------------------------------------------------------

    async def add(self, intent: str, language: str, text: str) -> AddedExample:
        """Add the example, reload, and put the file back if the reload refuses it."""
        async with self.edit_lock:
            try:
                added = await asyncio.to_thread(add_example, self.folder, intent, language, text)
            except OSError as exc:  # e.g. a read-only ConfigMap mount
                logger.error("cannot write the knowledge folder: %s", exc.strerror)
                raise ExampleRefused(
                    503, f"the knowledge folder cannot be written here ({exc.strerror})"
                ) from exc
            result = await self.kollega.knowledge.reload()
            target = f"{intent} ({language})"  # never the example's text
            if not result.ok:
                await asyncio.to_thread(restore, self.folder, added)
                await self.kollega.knowledge.reload()
                await self.audit(AuditAction.KNOWLEDGE_EXAMPLE_ADDED, target, "refused")
                raise ExampleRefused(
                    422,
                    "the knowledge did not reload with this example; the file was restored",
                    [str(p) for p in result.errors],
                )
            await self.audit(AuditAction.KNOWLEDGE_EXAMPLE_ADDED, target)
        return added

    async def api_examples(self, request: web.Request) -> web.StreamResponse:
        self.require_api(request)
        if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
            return _problem(413, "the body is too large")
        try:
            body = json.loads(await request.content.read(MAX_JSON_BYTES + 1))
        except (ValueError, UnicodeDecodeError):
            return _problem(400, "send JSON: {intent, language, text}")
        if not isinstance(body, dict):
            return _problem(400, "send JSON: {intent, language, text}")
        try:
            added = await self.add(
                str(body.get("intent", "")),
                str(body.get("language", "")),
                str(body.get("text", "")),
            )
        except ExampleRefused as refused:
            return _problem(refused.status, refused.message, problems=refused.problems)
        return web.json_response(
            {**added.to_dict(), "knowledge_version": self.kollega.knowledge.version}
        )

    async def api_report(self, request: web.Request) -> web.StreamResponse:
        self.require_api(request)
        start, end, domain = self.period(request.query)
        return web.json_response((await self.figures(start, end, domain)).to_dict())

    async def api_events(self, request: web.Request) -> web.StreamResponse:
        self.require_api(request)
        day = self.day(request)
        kind = request.query.get("format", "json")
        if kind not in ("json", "csv"):
            return _problem(400, "format is csv or json")
        start, end = day_bounds(day, self.zone)
        columns = [getattr(events.c, name) for name in EXPORT_COLUMNS]
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(*columns)
                    .where(events.c.occurred_at >= start, events.c.occurred_at < end)
                    .order_by(events.c.occurred_at, events.c.id)
                )
            ).all()
        records = [
            {
                **row._asdict(),
                "occurred_at": as_utc(row.occurred_at).astimezone(self.zone).isoformat(),
            }
            for row in rows
        ]
        disposition = f'attachment; filename="kollega-events-{day.isoformat()}.{kind}"'
        await self.audit(AuditAction.EVENTS_EXPORTED, f"day {day.isoformat()} {kind}")
        if kind == "json":
            return web.json_response(
                {"day": day.isoformat(), "timezone": str(self.zone), "events": records},
                headers={"Content-Disposition": disposition},
            )
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_cell(v) for k, v in record.items()})
        return web.Response(
            text=buffer.getvalue(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": disposition},
        )

    async def api_delete_events(self, request: web.Request) -> web.StreamResponse:
        self.require_api(request)
        day = self.day(request)
        deleted = await delete_day(self.engine, day, self.zone)
        await self.audit(AuditAction.EVENTS_DELETED, f"day {day.isoformat()}: {deleted} events")
        return web.json_response({"day": day.isoformat(), "deleted": deleted})

    async def api_reload(self, request: web.Request) -> web.StreamResponse:
        """Reload the knowledge folder now; a broken folder keeps the last good knowledge."""
        self.require_api(request)
        knowledge = self.kollega.knowledge
        result = await knowledge.reload()
        await self.audit(AuditAction.KNOWLEDGE_RELOADED, result="ok" if result.ok else "refused")
        body = {
            "ok": result.ok,
            "version": knowledge.version,
            "errors": [str(p) for p in result.errors],
            "warnings": [str(p) for p in result.warnings],
        }
        return web.json_response(body, status=200 if result.ok else 422)

    async def api_report_targets(self, request: web.Request) -> web.StreamResponse:
        self.require_api(request)
        targets = await load_report_targets(self.engine)
        return web.json_response(
            {
                "targets": [
                    {
                        "conversation_id": t["conversation"]["id"],
                        "name": t["conversation"].get("name", ""),
                        "channel": t["channelId"],
                    }
                    for t in targets
                ]
            }
        )


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is prefixed with ``'`` (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def add_admin_routes(app: web.Application, kollega: Any) -> None:
    """Register ``/admin`` and ``/api/admin/*`` on ``app``; 404 everywhere without a token."""
    if not kollega.settings.admin_token:

        async def admin_off(_: web.Request) -> web.Response:
            return _problem(404, "admin is not configured on this kollega (KOLLEGA_ADMIN_TOKEN)")

        for path in ("/admin", "/admin/{tail:.*}", "/api/admin/{tail:.*}"):
            app.router.add_route("*", path, _secured(admin_off))
        return

    site = AdminSite(kollega)

    async def home(request: web.Request) -> web.StreamResponse:
        return await site.dashboard(request)

    async def login_page(request: web.Request) -> web.StreamResponse:
        return await site.login_page(request)

    routes: list[tuple[str, str, Handler]] = [
        ("GET", "/admin", home),
        ("GET", "/admin/", home),
        ("GET", "/admin/login", login_page),
        ("POST", "/admin/login", site.login),
        ("POST", "/admin/logout", site.logout),
        ("GET", "/admin/chart.png", site.chart),
        ("POST", "/admin/examples", site.example_form),
        ("GET", "/admin/static/{name}", site.static),
        ("GET", "/api/admin/report", site.api_report),
        ("GET", "/api/admin/events", site.api_events),
        ("DELETE", "/api/admin/events", site.api_delete_events),
        ("POST", "/api/admin/examples", site.api_examples),
        ("GET", "/api/admin/report-targets", site.api_report_targets),
        ("POST", "/api/admin/reload", site.api_reload),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _secured(handler))

    async def not_found(_: web.Request) -> web.Response:
        return _problem(404, "no such admin page")

    for path in ("/admin/{tail:.*}", "/api/admin/{tail:.*}"):
        app.router.add_route("*", path, _secured(not_found))
