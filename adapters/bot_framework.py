"""The Bot Framework channel (Teams, Emulator, Direct Line web chat) on botbuilder's CloudAdapter.

Two traps of botbuilder 4.17.1 are handled here, both found by trying them:

* ``CloudAdapter.process`` turns a token it cannot verify (wrong key, expired, ``alg: none``,
  a missing header once a metadata URL is configured) into an uncaught exception, i.e. a
  500. This handler validates the request itself, authenticates before anything else, and
  answers every authentication failure with 401 so nothing reaches the bot.
* msrest builds a ``ClientRetryPolicy`` for every Connector client (one per turn) and
  computes its retry list by searching a 500-item list a thousand times, about 5 ms of CPU
  a turn. ``speed_up_connector_clients`` makes that list a set once, which triples the
  throughput of a plain echo bot (see ``bench/``); and ``ReusingAuthentication`` keeps the
  clients themselves, so a turn builds none and its reply reuses a warm connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from botbuilder.core import Bot, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityTypes
from msrest.universal_http.requests import ClientRetryPolicy

from adapters.bodies import read_limited
from adapters.bot_credentials import bot_credentials_factory
from adapters.connector_clients import ReusingAuthentication
from adapters.tenants import REFUSED_STATUS, parse_tenants, tenant_allowed

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024  # Bot Framework activities are small; cards stay far below this.
OnTurnError = Callable[[TurnContext, Exception], Awaitable[None]]


def speed_up_connector_clients() -> None:
    """Make msrest's retry-code lookup a set lookup; the resulting retry policy is identical."""
    if not isinstance(ClientRetryPolicy.safe_codes, frozenset):
        ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)


class _AuthConfiguration:
    """The attribute view ``ConfigurationBotFrameworkAuthentication`` reads, blanks as None.

    The SDK treats an empty string as a value (an empty metadata URL, say), so unset
    settings must reach it as None.
    """

    _NAMES = (
        "APP_ID",
        "APP_PASSWORD",
        "APP_TYPE",
        "APP_TENANTID",
        "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL",
        "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER",
    )

    def __init__(self, settings: Any) -> None:
        for name in self._NAMES:
            setattr(self, name, getattr(settings, name, None) or None)
        if not self.APP_ID:
            self.APP_TYPE = "MultiTenant"


class BotFrameworkChannel:
    """``POST /api/messages``: check the request, authenticate it, hand it to the bot."""

    def __init__(
        self,
        settings: Any,
        on_turn_error: OnTurnError | None = None,
        on_auth_timed: Callable[[float], None] | None = None,
    ) -> None:
        speed_up_connector_clients()
        self.authentication = ReusingAuthentication(
            ConfigurationBotFrameworkAuthentication(
                _AuthConfiguration(settings),
                credentials_factory=bot_credentials_factory(settings),
                logger=logger,
            )
        )
        self.adapter = CloudAdapter(self.authentication)
        if on_turn_error is not None:
            self.adapter.on_turn_error = on_turn_error
        self.requires_auth = bool(getattr(settings, "APP_ID", ""))
        self.on_auth_timed = on_auth_timed
        self.allowed_tenants = parse_tenants(getattr(settings, "allowed_tenants", ""))
        self.tenantless = frozenset(
            c.strip().lower()
            for c in str(getattr(settings, "tenantless_channels", "")).split(",")
            if c.strip()
        )

    async def handle(self, request: web.Request, bot: Bot) -> web.Response:
        activity = await self._read_activity(request)
        auth_header = request.headers.get("Authorization", "")
        if self.requires_auth and not auth_header:
            return _problem(401, "missing Authorization header")
        started = time.perf_counter()
        try:
            auth_result = await self.authentication.authenticate_request(activity, auth_header)
        except Exception as exc:
            logger.warning("refused a Bot Framework request: %s", type(exc).__name__)
            return _problem(401, "the token could not be verified")
        if self.on_auth_timed is not None:
            self.on_auth_timed(time.perf_counter() - started)
        # After authentication, so an unauthenticated caller learns nothing about the policy.
        if not tenant_allowed(activity, self.allowed_tenants, self.tenantless):
            logger.warning("refused an activity from another organisation's tenant")
            return _problem(REFUSED_STATUS, "this kollega does not serve your organisation")
        try:
            invoke_response = await self.adapter.process_activity(
                auth_result, activity, bot.on_turn
            )
        except Exception:
            # on_turn_error already answered the user where it could; the channel gets 502
            # (the reply could not be delivered) rather than a 500 it would treat as a bug.
            logger.exception("turn failed outside the bot's own error handling")
            return _problem(502, "the reply could not be delivered")
        if invoke_response:
            return web.json_response(
                data=invoke_response.body, status=invoke_response.status, dumps=_dumps
            )
        return web.Response(status=201)

    async def _read_activity(self, request: web.Request) -> Activity:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send the activity as application/json")
        raw = await read_limited(request, MAX_BODY_BYTES)
        if raw is None:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_BODY_BYTES, actual_size=request.content_length or MAX_BODY_BYTES + 1
            )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(text="the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="the body must be a JSON object (an Activity)")
        try:
            activity = Activity().deserialize(body)
        except Exception as exc:
            raise web.HTTPBadRequest(text="the body is not an Activity") from exc
        problem = _missing_parts(activity)
        if problem:
            raise web.HTTPBadRequest(text=problem)
        return activity


def _missing_parts(activity: Activity) -> str:
    if not activity.type or not isinstance(activity.type, str):
        return "the activity has no type"
    if activity.conversation is None or not activity.conversation.id:
        return "the activity has no conversation id"
    if not activity.service_url:
        return "the activity has no serviceUrl"
    parts = urlsplit(str(activity.service_url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "the activity's serviceUrl is not an http(s) URL"
    text = activity.text
    if activity.type == ActivityTypes.message and text is not None and not isinstance(text, str):
        return "the activity's text is not a string"
    return ""


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
