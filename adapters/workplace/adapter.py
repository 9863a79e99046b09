"""The Workplace (and Messenger Platform) channel as a botbuilder ``BotAdapter``.

The one bot (an ``ActivityHandler``) runs unchanged: webhooks become Activities that go
through ``run_pipeline`` (so adapter middleware applies), and whatever the bot sends comes
back through ``send_activities`` and out through the Graph API.

Meta wants a 200 within 20 seconds and retries otherwise, and a bot turn (matching, a
service-desk lookup, several Graph calls) can take longer. So the POST handler checks the
signature, answers 200 at once and runs the turns as background tasks, which are tracked:
``drain()`` waits for them (tests, shutdown) and ``close()`` refuses new deliveries, drains
and closes the HTTP session it made. Turns of one conversation run one after another, in
delivery order; different conversations run side by side.

Messenger-only deployments use the same class: ``page_id``/``channel_id`` aside, the
Workplace-only parts (group chats by ``thread_key``, @mentions in groups answered as
comments) are simply never triggered by a Messenger payload.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import Bot, BotAdapter, TurnContext
from botbuilder.schema import (
    Activity,
    ActivityEventNames,
    ActivityTypes,
    ConversationReference,
    ResourceResponse,
)

from adapters.background import BackgroundTurns
from adapters.bodies import read_limited

from .dedupe import SeenEvents
from .graph import GraphClient, RetryPolicy
from .inbound import OBJECT_ID, InboundEvent, parse_webhook
from .outbound import COMMENT_TEXT_LIMIT, Target, chat_messages, comment_messages, target_of
from .webhook import SIGNATURE_HEADER, signature_ok, verification_response

logger = logging.getLogger(__name__)

Logic = Callable[[TurnContext], Awaitable[Any]]
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_MAX_DELAY_SECONDS = 30.0


class WorkplaceAdapter(BotAdapter):
    """Receives Workplace/Messenger webhooks for ``bot`` and sends its replies via the Graph API.

    Explicit values rather than a settings object, so tests and a Messenger deployment can
    build one directly. In app.py: ``app_secret=settings.workplace_app_secret`` and so on.
    ``session`` is used as given and never closed here; without it a session is made by
    ``session_factory`` (default: a plain ``aiohttp.ClientSession``) on first use and closed
    by ``close()``. ``page_id`` (the bot page's id) adds a guard against answering the bot's
    own messages beyond Meta's ``is_echo`` flag; ``bot_name`` helps strip the bot's name from
    group mentions when Meta sends no mention tags.
    """

    def __init__(
        self,
        *,
        app_secret: str,
        verify_token: str,
        access_token: str,
        bot: Bot | Logic,
        graph_url: str = DEFAULT_GRAPH_URL,
        session: aiohttp.ClientSession | None = None,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        page_id: str | None = None,
        bot_name: str | None = None,
        channel_id: str = "workplace",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        retry: RetryPolicy | None = None,
        dedupe_ttl_seconds: float = 3600.0,
        dedupe_max_entries: int = 10_000,
        on_turn_error: Callable[[TurnContext, Exception], Awaitable[Any]] | None = None,
    ) -> None:
        super().__init__(on_turn_error)
        if not app_secret:
            raise ValueError("app_secret is required: without it no webhook can be verified")
        if not access_token:
            raise ValueError("access_token is required to send replies")
        self._app_secret = app_secret
        self._verify_token = verify_token
        self._logic = _logic_of(bot)
        self._graph_url = graph_url.rstrip("/")
        self._session = session
        self._session_factory = session_factory
        self._owns_session = False
        self._page_id = page_id or None
        self._bot_name = bot_name or None
        self._channel_id = channel_id
        self._max_body_bytes = max_body_bytes
        self._seen = SeenEvents(dedupe_ttl_seconds, dedupe_max_entries)
        self._graph = GraphClient(self._graph_url, access_token, self._get_session, retry)
        self._turns = BackgroundTurns("workplace")
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    # -- HTTP handlers --------------------------------------------------------------------

    def add_routes(self, app: web.Application, path: str = "/api/workplace") -> None:
        """Route GET/POST ``path`` here and drain and close on the app's shutdown."""
        app.router.add_get(path, self.handle_verification)
        app.router.add_post(path, self.handle_webhook)
        app.on_shutdown.append(self._on_shutdown)

    async def handle_verification(self, request: web.Request) -> web.Response:
        """GET: the handshake (``hub.mode``, ``hub.verify_token``, ``hub.challenge``)."""
        return verification_response(request.query, self._verify_token)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """POST: verify, acknowledge with 200 at once, run the bot turns in the background.

        403 for a missing or wrong signature, 413 for a body over the limit, 400 for a body
        that is not a JSON object, 503 while shutting down (Meta delivers again later).
        """
        if self._turns.closing:
            return _plain(503, "Shutting down")
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            logger.warning("workplace webhook without %s refused", SIGNATURE_HEADER)
            return _plain(403, "Forbidden")
        body = await read_limited(request, self._max_body_bytes)
        if body is None:
            logger.warning("workplace webhook over %d bytes refused", self._max_body_bytes)
            return _plain(413, "Payload Too Large")
        if not signature_ok(self._app_secret, body, header):
            logger.warning("workplace webhook with a wrong signature refused")
            return _plain(403, "Forbidden")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return _plain(400, "Bad Request")
        if not isinstance(payload, dict):
            return _plain(400, "Bad Request")
        try:
            events = parse_webhook(
                payload,
                channel_id=self._channel_id,
                service_url=self._graph_url,
                page_id=self._page_id,
                bot_name=self._bot_name,
            )
        except Exception:
            # A payload shape we failed to foresee: acknowledge it anyway, or Meta retries
            # the same delivery for hours and eventually disables the subscription.
            logger.exception("workplace webhook could not be read; acknowledged and dropped")
            return _plain(200, "EVENT_RECEIVED")
        for event in events:
            if event.dedupe_key is not None and not self._seen.first_time(event.dedupe_key):
                logger.info("workplace delivered %s again; ignored", event.dedupe_key[0])
                continue
            self._turns.spawn(self._run_in_order(event))
        return _plain(200, "EVENT_RECEIVED")

    # -- background turns -----------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every turn accepted so far (and any it started) has finished."""
        await self._turns.drain()

    async def close(self, grace_seconds: float = 15.0) -> None:
        """Refuse new deliveries, give running turns ``grace_seconds``, close our session."""
        await self._turns.close(grace_seconds)
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
            self._owns_session = False

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self.close()

    async def _run_in_order(self, event: InboundEvent) -> None:
        """Run one turn after the earlier turns of its conversation; never raise."""
        key = event.conversation_key
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                await self.process_activity(event.activity)
        except Exception:
            kind = event.activity.conversation.conversation_type
            logger.exception("workplace turn failed in a %s conversation", kind)
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]

    async def process_activity(self, activity: Activity, logic: Logic | None = None) -> None:
        """Run one incoming Activity through the middleware and the bot (or ``logic``)."""
        context = TurnContext(self, activity)
        await self.run_pipeline(context, logic or self._logic)

    # -- BotAdapter: outgoing -------------------------------------------------------------

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        """Send the bot's activities in order; a failed send is logged and yields an empty id."""
        incoming = context.activity
        proactive = bool(
            incoming is not None
            and incoming.type == ActivityTypes.event
            and incoming.name == ActivityEventNames.continue_conversation
        )
        return [await self._send(activity, proactive) for activity in activities]

    async def _send(self, activity: Activity, proactive: bool) -> ResourceResponse:
        if activity.type == "delay":  # botbuilder-python has no ActivityTypes.delay
            await asyncio.sleep(_delay_seconds(activity.value))
            return ResourceResponse(id="")
        target = target_of(activity.conversation)
        if target is None:
            logger.warning("workplace reply to an unknown conversation dropped")
            return ResourceResponse(id="")
        if activity.type == ActivityTypes.typing:
            if target.is_chat:
                body = {"recipient": target.recipient(), "sender_action": "typing_on"}
                await self._graph.post("me/messages", body)
            return ResourceResponse(id="")
        if activity.type != ActivityTypes.message:
            logger.debug("workplace does not send %s activities", activity.type)
            return ResourceResponse(id="")
        if target.is_chat:
            return await self._send_chat(target, activity, proactive)
        return await self._send_comments(target, activity)

    async def _send_chat(
        self, target: Target, activity: Activity, proactive: bool
    ) -> ResourceResponse:
        last_id = ""
        for message in chat_messages(activity):
            answer = await self._graph.post(
                "me/messages",
                {
                    "recipient": target.recipient(),
                    # RESPONSE answers a user's message; a proactive turn is an UPDATE.
                    "messaging_type": "UPDATE" if proactive else "RESPONSE",
                    "message": message,
                },
            )
            if answer is None:
                break  # the rest would make no sense without the part that failed
            last_id = str(answer.get("message_id") or last_id)
        return ResourceResponse(id=last_id)

    async def _send_comments(self, target: Target, activity: Activity) -> ResourceResponse:
        """Workplace only: answer a group @mention with comments under the post or comment."""
        last_id = ""
        for text in comment_messages(activity):
            answer = await self._graph.post(f"{target.id}/comments", {"message": text})
            if answer is None:
                break
            last_id = str(answer.get("id") or last_id)
        return ResourceResponse(id=last_id)

    async def update_activity(
        self, context: TurnContext, activity: Activity
    ) -> ResourceResponse | None:
        """Edit a sent comment (Workplace); chat messages cannot be edited, so that is a no-op.

        The no-op is logged, not raised: a dialog that tidies up its buttons after a tap must
        not lose the whole turn on a channel that cannot edit.
        """
        target = target_of(activity.conversation)
        if target is None or target.is_chat or not _object_id(activity.id):
            logger.info("workplace cannot edit a sent chat message; update ignored")
            return None
        text = "\n\n".join(comment_messages(activity))[:COMMENT_TEXT_LIMIT]
        answer = await self._graph.post(str(activity.id), {"message": text})
        return ResourceResponse(id=str(activity.id)) if answer is not None else None

    async def delete_activity(self, context: TurnContext, reference: ConversationReference) -> None:
        """Delete a sent comment (Workplace); chat messages cannot be deleted: logged no-op."""
        target = target_of(reference.conversation)
        if target is None or target.is_chat or not _object_id(reference.activity_id):
            logger.info("workplace cannot delete a sent chat message; delete ignored")
            return
        await self._graph.delete(str(reference.activity_id))

    async def continue_conversation(
        self,
        reference: ConversationReference,
        callback: Callable[[TurnContext], Awaitable[Any]],
        bot_id: str | None = None,
        claims_identity: Any = None,
        audience: str | None = None,
    ) -> Any:
        """Proactive turn in a saved conversation (e.g. a ticket status changed).

        The reference must come from a Workplace turn (``TurnContext.get_conversation_reference``):
        its ``conversation.conversation_type`` says whether to message a person, a group chat
        or a post. Replies in it are sent with ``messaging_type: UPDATE``.
        """
        if target_of(reference.conversation) is None:
            raise ValueError("not a Workplace conversation reference")
        reference.channel_id = reference.channel_id or self._channel_id
        return await super().continue_conversation(
            reference, callback, bot_id, claims_identity, audience
        )

    # -- plumbing -------------------------------------------------------------------------

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            factory = self._session_factory or aiohttp.ClientSession
            self._session = factory()
            self._owns_session = True
        return self._session


def _logic_of(bot: Bot | Logic) -> Logic:
    on_turn = getattr(bot, "on_turn", None)
    if callable(on_turn):
        return on_turn
    if callable(bot):
        return bot
    raise TypeError("bot must be a botbuilder Bot (ActivityHandler) or a turn callable")


def _object_id(value: Any) -> bool:
    return isinstance(value, str) and OBJECT_ID.fullmatch(value) is not None


def _delay_seconds(value: Any) -> float:
    """A ``delay`` activity's value is milliseconds; capped so a bot cannot stall a turn."""
    try:
        return max(0.0, min(float(value) / 1000, _MAX_DELAY_SECONDS))
    except (TypeError, ValueError):
        return 1.0


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")
