"""Bot Connector clients reused across turns instead of built for every one.

botbuilder 4.17.1's ``CloudAdapter`` asks for a new ``ConnectorClient`` and a new
``UserTokenClient`` on every turn. Each builds msrest's pipeline and a fresh ``requests``
session, so every reply also opens a new TCP (and, in production, TLS) connection to the
Bot Connector service. Measured with ``bench/load.py``: the reply stage and the socket
set-up were a fifth of a turn's CPU. Clients here are kept per (bot app id, service URL,
audience), so replies reuse warm connections and the credentials' token cache; a client
holds no per-turn state, so one serves any number of concurrent turns.

Everything else is delegated to the SDK's own authentication object unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    UserTokenClient,
)

# Service URLs are few (a Teams region or two, the Emulator); this only bounds a mistake.
MAX_CLIENTS = 64

T = TypeVar("T")


class _Clients:
    """A small LRU of clients by key; building one is cheap enough to do outside the lock."""

    def __init__(self, size: int = MAX_CLIENTS) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    async def get(self, key: Hashable, build: Callable[[], Awaitable[T]]) -> T:
        with self._lock:
            client = self._items.get(key)
            if client is not None:
                self._items.move_to_end(key)
                return client
        client = await build()
        with self._lock:
            client = self._items.setdefault(key, client)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return client

    def __len__(self) -> int:
        return len(self._items)


def bot_app_id(claims_identity: ClaimsIdentity | None) -> str:
    """The bot's app id as the SDK derives it: the token's audience, else its appid claim."""
    if claims_identity is None:
        return ""
    return str(
        claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
        or claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)
        or ""
    )


class _ReusingConnectorFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, app_id: str, clients: _Clients) -> None:
        self._inner = inner
        self._app_id = app_id
        self._clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = ("connector", self._app_id, service_url, audience)
        return await self._clients.get(key, lambda: self._inner.create(service_url, audience))


class ReusingAuthentication(BotFrameworkAuthentication):
    """The SDK's authentication, with the clients it makes for turns kept and reused."""

    def __init__(self, inner: BotFrameworkAuthentication, size: int = MAX_CLIENTS) -> None:
        self.inner = inner
        self.clients = _Clients(size)

    def _reusing(self, factory: ConnectorFactory | None, app_id: str) -> ConnectorFactory | None:
        if factory is None or isinstance(factory, _ReusingConnectorFactory):
            return factory
        return _ReusingConnectorFactory(factory, app_id, self.clients)

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        return self._with_reuse(await self.inner.authenticate_request(activity, auth_header))

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return self._with_reuse(
            await self.inner.authenticate_streaming_request(auth_header, channel_id_header)
        )

    def _with_reuse(self, result: AuthenticateRequestResult) -> AuthenticateRequestResult:
        result.connector_factory = self._reusing(
            result.connector_factory, bot_app_id(result.claims_identity)
        )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        factory = self.inner.create_connector_factory(claims_identity)
        return self._reusing(factory, bot_app_id(claims_identity)) or factory

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        key = ("user-token", bot_app_id(claims_identity))
        return await self.clients.get(
            key, lambda: self.inner.create_user_token_client(claims_identity)
        )

    def create_bot_framework_client(self) -> Any:
        return self.inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self.inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self.inner.authenticate_channel_request(auth_header)

    async def generate_caller_id(self, **kwargs: Any) -> str | None:
        return await self.inner.generate_caller_id(**kwargs)
