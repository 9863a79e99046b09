"""The intranet web chat as a botbuilder ``BotAdapter``: the one bot, served to a browser.

The protocol is two POSTs, both under ``/api/webchat``:

- ``POST /sessions`` (optionally with an Entra ID ``Authorization: Bearer`` token) opens a
  session: a random conversation id and anonymous user id, signed into a session token. The
  bot's welcome (its answer to the conversationUpdate) comes back in the same JSON answer.
- ``POST /sessions/{id}/messages`` with the session token sends one message. The answer is a
  server-sent event stream of that turn — ``typing``, ``message`` … then ``end`` — written as
  the bot sends, so a slow lookup shows the typing indicator first. ``Accept:
  application/json`` gets the same activities as one JSON document instead.

Replies ride on the response to the message that caused them, so nothing holds a socket open
between messages, any replica can answer any message (sessions are signed tokens, memory is
in the bot's storage) and every proxy that passes a POST passes the chat. The price: the bot
cannot speak unprompted here — a proactive message (``continue_conversation``) is logged
and dropped.

Turns run as tracked tasks, one at a time per session in arrival order; a browser that
goes away mid-turn stops reading, but its turn still finishes (and its state is saved).
``drain()`` waits for them and ``close()`` refuses new messages and drains, as the
Workplace adapter does.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web
from botbuilder.core import Bot, BotAdapter, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse

from adapters.background import BackgroundTurns
from adapters.bodies import read_limited

from .activities import (
    BadMessage,
    for_page,
    message_activity,
    parse_message,
    parse_session_request,
    session_started_activity,
)
from .auth import EntraIdValidator, InvalidToken
from .http import (
    PAGE_CSP,
    SECURITY_HEADERS,
    OriginPolicy,
    bearer,
    error,
)
from .limits import RateLimiter
from .sessions import Session, SessionTokens, plausible_session_id

logger = logging.getLogger(__name__)

Logic = Callable[[TurnContext], Awaitable[Any]]
STATIC_DIR = Path(__file__).resolve().parent / "static"
UI_LANGUAGES = ("nb", "sv", "da", "fi", "en")
_LANGUAGE_ALIASES = {"no": "nb", "nn": "nb", "nob": "nb", "nno": "nb", "swe": "sv", "dan": "da"}
_PAGE_TITLES = {
    "nb": "kollega – chat",
    "sv": "kollega – chatt",
    "da": "kollega – chat",
    "fi": "kollega – chat",
    "en": "kollega – chat",
}
_STATIC_TYPES = {
    "widget.js": "text/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
}
_SINK = "kollega.webchat.sink"
_LOCALES = "kollega.webchat.locales"
_END = object()
_MAX_DELAY_SECONDS = 10.0


class WebChatAdapter(BotAdapter):
    """Serves ``bot`` to the web chat page and widget (see the module docstring for the protocol).

    Explicit values rather than a settings object, so tests build one directly; app.py passes
    the ``KOLLEGA_WEBCHAT_*`` settings. ``sign_in`` is None for anonymous-only chat (a bearer
    token on a new session is then ignored). ``allowed_origins`` are the intranet origins whose
    pages may embed the widget; the chat page's own origin is always allowed.
    """

    def __init__(
        self,
        *,
        bot: Bot | Logic,
        secret: str = "",
        session_ttl_seconds: float = 8 * 3600,
        sign_in: EntraIdValidator | None = None,
        allowed_origins: Iterable[str] = (),
        default_language: str = "nb",
        max_body_bytes: int = 16 * 1024,
        message_burst: int = 10,
        messages_per_second: float = 2.0,
        session_burst: int = 60,
        sessions_per_second: float = 5.0,
        turn_timeout_seconds: float = 60.0,
        keepalive_seconds: float = 15.0,
        static_dir: Path = STATIC_DIR,
        on_turn_error: Callable[[TurnContext, Exception], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(on_turn_error)
        self._logic = _logic_of(bot)
        self._tokens = SessionTokens(secret, session_ttl_seconds)
        self._sign_in = sign_in
        self._origins = OriginPolicy(allowed_origins)
        self._default_language = _ui_language(default_language) or "nb"
        self._max_body_bytes = max_body_bytes
        self._message_limits = RateLimiter(message_burst, messages_per_second)
        # New sessions per client address: without it a script would dodge the per-session
        # limit by opening a fresh session for every message.
        self._session_limits = RateLimiter(session_burst, sessions_per_second)
        self._turn_timeout = turn_timeout_seconds
        self._keepalive = keepalive_seconds
        self._static = _load_static(static_dir)
        self._page = (static_dir / "index.html").read_text(encoding="utf-8")
        self._turns = BackgroundTurns("web chat")
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    # -- routes ---------------------------------------------------------------------------

    def add_routes(
        self,
        app: web.Application,
        path: str = "/api/webchat",
        *,
        page_path: str | None = "/",
        static_path: str = "/webchat",
    ) -> None:
        """The API under ``path``, the widget files under ``static_path``, the chat page at
        ``page_path`` (None: no page); drain and close on the app's shutdown."""
        path, static_path = path.rstrip("/"), static_path.rstrip("/")
        self._static_path = static_path
        for route, handler in (
            (f"{path}/sessions", self.handle_new_session),
            (f"{path}/sessions/{{session}}/messages", self.handle_message),
        ):
            app.router.add_post(route, handler)
            app.router.add_route("OPTIONS", route, self.handle_preflight)
            app.router.add_route("*", route, _method_not_allowed)
        app.router.add_get(f"{static_path}/{{name}}", self.handle_static)
        if page_path:
            app.router.add_get(page_path, self.handle_page)
        app.on_shutdown.append(self._on_shutdown)

    # -- HTTP handlers --------------------------------------------------------------------

    async def handle_preflight(self, request: web.Request) -> web.Response:
        return self._origins.preflight(request)

    async def handle_new_session(self, request: web.Request) -> web.Response:
        """Open a session: 200 ``{session, token, expiresAt, signedIn, activities}``.

        401 for a bearer token that does not validate (when sign-in is configured), 429 when
        one address opens sessions too fast, 413/400 for a body that is too big or not JSON.
        """
        cors = self._origins.headers_for(request)
        refused = self._refuse(request, cors)
        if refused is not None:
            return refused
        wait = self._session_limits.allow(request.remote or "unknown")
        if wait:
            return _too_many(wait, cors)
        body = await read_limited(request, self._max_body_bytes)
        if body is None:
            return error(413, "the request is too large", cors)
        try:
            locale = parse_session_request(body)
        except BadMessage as exc:
            return error(400, str(exc), cors)
        identity = None
        token = bearer(request)
        if token is not None and self._sign_in is not None:
            try:
                identity = await self._sign_in.identity(token)
            except InvalidToken as exc:
                logger.warning("web chat sign-in refused: %s", exc)
                return error(
                    401, "the sign-in token is not valid", {**cors, "WWW-Authenticate": "Bearer"}
                )
        session = self._tokens.new_session(locale or self._default_language, identity)
        welcome = await self._collect(session, session_started_activity(session))
        logger.info("web chat session opened (%s)", "signed in" if identity else "anonymous")
        return web.json_response(
            {
                "session": session.id,
                "token": self._tokens.issue(session),
                "expiresAt": session.expires,
                "signedIn": session.identity.signed_in,
                "activities": welcome,
            },
            headers={**SECURITY_HEADERS, **cors, "Cache-Control": "no-store"},
        )

    async def handle_message(self, request: web.Request) -> web.StreamResponse:
        """One message in; the turn's activities out as an event stream (or JSON).

        401 without a valid session token for this session, 404 for a malformed session id,
        429 with ``Retry-After`` past the per-session rate, 413 over the body limit, 400 for a
        body that is not ``{"text": "..."}``, 503 while shutting down.
        """
        cors = self._origins.headers_for(request)
        refused = self._refuse(request, cors)
        if refused is not None:
            return refused
        session_id = request.match_info["session"]
        if not plausible_session_id(session_id):
            return error(404, "no such session", cors)
        token = bearer(request)
        session = self._tokens.check(token, session_id) if token else None
        if session is None:
            return error(401, "unknown or expired session", {**cors, "WWW-Authenticate": "Bearer"})
        wait = self._message_limits.allow(session.id)
        if wait:
            logger.info("web chat session rate limited for %.0f s", wait)
            return _too_many(wait, cors)
        body = await read_limited(request, self._max_body_bytes)
        if body is None:
            return error(413, "the message is too large", cors)
        try:
            message = parse_message(body)
        except BadMessage as exc:
            return error(400, str(exc), cors)
        queue = self._start_turn(session, message_activity(session, message))
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self._stream(request, queue, cors)
        return web.json_response(
            {"activities": await self._drain_queue(queue)},
            headers={**SECURITY_HEADERS, **cors, "Cache-Control": "no-store"},
        )

    async def handle_static(self, request: web.Request) -> web.Response:
        """The widget's script and stylesheet, embeddable from any origin, revalidated by ETag."""
        found = self._static.get(request.match_info["name"])
        if found is None:
            return error(404, "not found")
        body, content_type, etag = found
        headers = {
            **SECURITY_HEADERS,
            "ETag": etag,
            "Cache-Control": "public, max-age=300",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        response = web.Response(body=body, headers={**headers, "Content-Type": content_type})
        response.enable_compression()
        return response

    async def handle_page(self, request: web.Request) -> web.Response:
        """The standalone chat page, in the language the browser (or ``?lang=``) asks for."""
        language = _page_language(request, self._default_language)
        page = (
            self._page.replace("{{lang}}", language)
            .replace("{{title}}", html.escape(_PAGE_TITLES[language]))
            .replace("{{static}}", html.escape(getattr(self, "_static_path", "/webchat")))
        )
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Security-Policy": PAGE_CSP,
                "Cache-Control": "no-cache",
                "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
            },
        )

    def _refuse(self, request: web.Request, cors: dict[str, str]) -> web.Response | None:
        if self._turns.closing:
            return error(503, "kollega is restarting; try again in a moment", cors)
        origin = self._origins.cross_origin(request)
        if origin is not None and not self._origins.allows(origin):
            logger.warning("web chat call from an origin not allowed refused")
            return error(403, "origin not allowed", cors)
        return None

    # -- turns ----------------------------------------------------------------------------

    def _start_turn(self, session: Session, activity: Activity) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._turns.spawn(self._run_in_order(session, activity, queue))
        return queue

    async def _run_in_order(
        self, session: Session, activity: Activity, queue: asyncio.Queue[Any]
    ) -> None:
        """Run one turn after the session's earlier ones; never raise; always end the stream."""
        key = session.id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                await self.process_activity(activity, queue=queue)
        except Exception:
            logger.exception("web chat turn failed")
            queue.put_nowait({"type": "error"})
        finally:
            queue.put_nowait(_END)
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]

    async def process_activity(
        self,
        activity: Activity,
        logic: Logic | None = None,
        *,
        queue: asyncio.Queue[Any] | None = None,
    ) -> None:
        """Run one incoming Activity through the middleware and the bot (or ``logic``).

        What the bot sends goes to ``queue`` (the page's stream); without one it is dropped.
        """
        context = _WebChatContext(self, activity)
        if queue is not None:
            context.turn_state[_SINK] = queue
        await self.run_pipeline(context, logic or self._logic)

    async def _collect(self, session: Session, activity: Activity) -> list[dict[str, Any]]:
        return await self._drain_queue(self._start_turn(session, activity))

    async def _drain_queue(self, queue: asyncio.Queue[Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(self._turn_timeout):
                while (item := await queue.get()) is not _END:
                    if item.get("type") != "typing":
                        events.append(item)
        except TimeoutError:
            logger.warning("web chat turn still running after %.0f s", self._turn_timeout)
        return events

    async def _stream(
        self, request: web.Request, queue: asyncio.Queue[Any], cors: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                **SECURITY_HEADERS,
                **cors,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
            }
        )
        await response.prepare(request)
        deadline = time.monotonic() + self._turn_timeout
        number = 0
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    logger.warning("web chat turn outlived its stream; ended it")
                    await response.write(b'event: end\ndata: {"timeout":true}\n\n')
                    break
                try:
                    async with asyncio.timeout(min(self._keepalive, left)):
                        item = await queue.get()
                except TimeoutError:
                    await response.write(b": keepalive\n\n")  # keeps idle proxies from cutting
                    continue
                if item is _END:
                    await response.write(b"event: end\ndata: {}\n\n")
                    break
                number += 1
                data = json.dumps(item, separators=(",", ":"))
                await response.write(
                    f"id: {number}\nevent: {item['type']}\ndata: {data}\n\n".encode()
                )
            await response.write_eof()
        except ConnectionError:
            # The page went away (closed, navigated). Its turn goes on without a reader.
            logger.info("web chat stream closed by the client")
        return response

    # -- lifecycle ------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every turn accepted so far (and any it started) has finished."""
        await self._turns.drain()

    async def close(self, grace_seconds: float = 15.0) -> None:
        """Refuse new sessions and messages, give running turns ``grace_seconds``."""
        await self._turns.close(grace_seconds)

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.close()

    # -- BotAdapter: outgoing -------------------------------------------------------------

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        """Hand the bot's activities to the page's stream, in order."""
        queue = context.turn_state.get(_SINK)
        locales = context.turn_state.pop(_LOCALES, None)
        if isinstance(locales, list) and len(locales) == len(activities):
            for activity, locale in zip(activities, locales, strict=True):
                activity.locale = locale or activity.locale
        responses = []
        for activity in activities:
            if activity.type == "delay":  # botbuilder-python has no ActivityTypes.delay
                await asyncio.sleep(_delay_seconds(activity.value))
                responses.append(ResourceResponse(id=""))
                continue
            event = for_page(activity)
            if queue is None:
                logger.info("web chat cannot deliver outside a turn (proactive); dropped")
            elif event is not None:
                queue.put_nowait(event)
            responses.append(ResourceResponse(id=str((event or {}).get("id", ""))))
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> None:
        """Sent messages cannot be edited in the page; a logged no-op, never a failed turn."""
        logger.info("web chat cannot edit a sent message; update ignored")

    async def delete_activity(self, context: TurnContext, reference: ConversationReference) -> None:
        """Sent messages cannot be deleted from the page; a logged no-op."""
        logger.info("web chat cannot delete a sent message; delete ignored")


class _WebChatContext(TurnContext):
    """A TurnContext that keeps the language each reply was written in.

    botbuilder's ``send_activities`` overwrites every outgoing ``locale`` with the incoming
    one (``apply_conversation_reference``), so a Finnish answer to a page whose locale is
    nb-NO would reach the page marked Norwegian — wrong for screen readers (WCAG 3.1.2) and
    for the widget's own labels, which follow the conversation's language.
    """

    async def send_activities(self, activities: list[Activity]) -> list[ResourceResponse]:
        self.turn_state[_LOCALES] = [getattr(a, "locale", None) for a in activities]
        return await super().send_activities(activities)


def _logic_of(bot: Bot | Logic) -> Logic:
    on_turn = getattr(bot, "on_turn", None)
    if callable(on_turn):
        return on_turn
    if callable(bot):
        return bot
    raise TypeError("bot must be a botbuilder Bot (ActivityHandler) or a turn callable")


def _delay_seconds(value: Any) -> float:
    """A ``delay`` activity's value is milliseconds; capped so a bot cannot stall a turn."""
    try:
        return max(0.0, min(float(value) / 1000, _MAX_DELAY_SECONDS))
    except (TypeError, ValueError):
        return 1.0


def _too_many(wait: float, cors: dict[str, str]) -> web.Response:
    return error(
        429,
        "too many messages; please wait a moment before sending more",
        {**cors, "Retry-After": str(int(wait))},
    )


async def _method_not_allowed(request: web.Request) -> web.Response:
    return error(405, "method not allowed", {"Allow": "POST, OPTIONS"})


def _ui_language(tag: str) -> str:
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    primary = _LANGUAGE_ALIASES.get(primary, primary)
    return primary if primary in UI_LANGUAGES else ""


def _page_language(request: web.Request, default: str) -> str:
    wanted = _ui_language(request.query.get("lang", ""))
    if wanted:
        return wanted
    ranked = []
    for part in request.headers.get("Accept-Language", "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        try:
            quality = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            quality = 0.0
        if (language := _ui_language(tag)) and quality > 0:
            ranked.append((-quality, len(ranked), language))
    return min(ranked)[2] if ranked else default


def _load_static(folder: Path) -> dict[str, tuple[bytes, str, str]]:
    files = {}
    for name, content_type in _STATIC_TYPES.items():
        body = (folder / name).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[name] = (body, content_type, etag)
    return files
