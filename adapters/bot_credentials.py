"""The bot's outbound token (bot -> Bot Connector) from a configurable authority, over our trust.

botbuilder 4.17.1's ``MicrosoftAppCredentials`` builds an msal ``ConfidentialClientApplication``
against ``https://login.microsoftonline.com/…`` with instance discovery on and requests' default
trust, one app per credentials object, i.e. per turn. That cannot work offline (tests,
benchmarks), behind a TLS-inspecting proxy, or against a national cloud's own login host.
``KollegaCredentialsFactory`` is the ``ServiceClientCredentialsFactory`` that
``ConfigurationBotFrameworkAuthentication(credentials_factory=…)`` takes instead:

* one msal app per factory, i.e. per (app id, authority): ``{authority}/botframework.com`` for a
  MultiTenant bot, ``{authority}/{tenant}`` for a SingleTenant one, built with
  ``instance_discovery=False`` and ``MsalHttpClient(ca_bundle)`` so the CA bundle
  (``KOLLEGA_BOT_CA_BUNDLE``) wins over ``REQUESTS_CA_BUNDLE`` (design.md, "Traps in the SDKs");
* msal's token cache, and in front of it a per-scope memo, because msrest calls
  ``get_access_token`` synchronously from ``signed_session`` *on the event loop* for every
  outbound request: the cached path is a dict lookup and a clock read;
* no blocking on the loop in the normal case. ``create_credentials`` is async and runs before
  every connector client is built, so a missing token is fetched there in a worker thread
  (one fetch however many turns wait for it), and an ageing token (msal's ``refresh_on``, or
  five minutes before expiry) is refreshed in a background thread while the old one is still
  served. Only if a credentials object outlives its token (a turn running past the expiry
  margin, or the authority failing until the token expired) does ``get_access_token`` fetch
  synchronously, blocking the loop for the authority's round trip (bounded by
  ``timeout``). ``warm_up()`` fetches the first token at start-up, if you want even the
  first turn to find it ready.

The UserAssignedMSI app type is left to the SDK (``bot_credentials_factory`` returns None).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConstants,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

from adapters.graph import DEFAULT_AUTHORITY, MsalHttpClient, _https_origin

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE  # api.botframework.com
MULTI_TENANT = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # botframework.com
# msal treats a cached token with less than five minutes left as expired; refreshing at the
# same point makes msal go to the authority instead of handing back the ageing token.
MSAL_EXPIRY_SKEW = 300.0
# Below this much life left a token is not handed out: the request it signs must still land.
HARD_MARGIN = 30.0
# After a failed background refresh, wait this long before the next try (old token still good).
RETRY_AFTER_FAILURE = 10.0


def default_scope(oauth_scope: str | None) -> str:
    """The ``/.default`` scope msal wants for an audience (the Bot Connector unless a skill's)."""
    scope = oauth_scope or DEFAULT_SCOPE
    return scope if scope.endswith("/.default") else f"{scope.rstrip('/')}/.default"


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float  # time.time() after which a background refresh is due
    expires_at: float  # time.time() after which it is no longer handed out


class _OneShotHttpClient(MsalHttpClient):
    """``MsalHttpClient`` that closes its connection after every request.

    The authority is asked about twice a day; an idle keep-alive socket would only sit
    there until the process ends (and, in tests, be reported as unclosed).
    """

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            response = super().request(method, url, *args, **kwargs)
            _ = response.content  # read it all before the connection goes
            return response
        finally:
            self.close()


class TokenSource:
    """One msal app and its tokens per scope; safe to call from the loop and from threads.

    msal itself is touched only under ``_msal_lock`` (it is not documented as thread-safe
    and serialising also makes concurrent misses one request). The memo is a dict read
    under the GIL, so the hot path takes no lock.
    """

    def __init__(
        self,
        *,
        app_id: str,
        password: str,
        authority: str,
        ca_bundle: str | Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.app_id = app_id
        self.authority = authority
        self._password = password
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        self._msal_lock = threading.Lock()
        self._msal_app: msal.ConfidentialClientApplication | None = None
        self._tokens: dict[str, _Token] = {}
        self._refreshing: set[str] = set()
        self._failed_at: dict[str, float] = {}
        self._async_locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # authority round trips (msal misses); read by tests and benchmarks

    # Hot path ------------------------------------------------------------------------

    def cached(self, scope: str) -> str | None:
        """A token still good for a request, starting a background refresh if it is ageing."""
        token = self._tokens.get(scope)
        if token is None:
            return None
        now = time.time()
        if now >= token.expires_at:
            return None
        if now >= token.refresh_at:
            self._refresh_in_background(scope, now)
        return token.value

    def get(self, scope: str) -> str:
        """The token, fetched synchronously (blocking) when none is usable."""
        return self.cached(scope) or self.fetch(scope)

    async def ensure(self, scope: str) -> None:
        """Have a usable token for ``scope`` without blocking the loop (fetch in a thread)."""
        if self.cached(scope) is not None:
            return
        lock = self._async_locks.setdefault(scope, asyncio.Lock())
        async with lock:  # a cold start with 200 waiting turns makes one request
            if self.cached(scope) is None:
                await asyncio.to_thread(self.fetch, scope)

    # Authority round trips ------------------------------------------------------------

    def fetch(self, scope: str) -> str:
        """Ask msal (its cache, else the authority); raise PermissionError on failure.

        Blocking: the tenant's OpenID configuration on first use, then the token request.
        """
        with self._msal_lock:
            token = self._tokens.get(scope)
            now = time.time()
            if token is not None and now < token.refresh_at:
                return token.value  # another thread fetched it while we waited for the lock
            result = self._acquire(scope)
            if token is not None and result.get("access_token") == token.value:
                # msal's cache still trusted the ageing token (our clock ran a little
                # ahead of its own): drop it so msal asks the authority.
                self._app().remove_tokens_for_client()
                result = self._acquire(scope)
            if "access_token" not in result:
                # Error code and description only: never the secret or the request.
                raise PermissionError(
                    f"the bot's token authority {self.authority} refused: "
                    f"{result.get('error', 'unknown_error')}: "
                    f"{result.get('error_description', '')}".strip()
                )
            fresh = self._remember(scope, result, now)
            return fresh.value

    def _acquire(self, scope: str) -> dict[str, Any]:
        try:
            result = self._app().acquire_token_for_client(scopes=[scope])
        except Exception as exc:  # requests' errors, msal's ValueError on a bad document
            raise PermissionError(
                f"the bot's token authority {self.authority} could not be reached: "
                f"{type(exc).__name__}"
            ) from exc
        if result.get("token_source") != "cache":
            self.fetches += 1
        return result

    def _app(self) -> msal.ConfidentialClientApplication:
        if self._msal_app is None:
            self._msal_app = msal.ConfidentialClientApplication(
                client_id=self.app_id,
                client_credential=self._password,
                authority=self.authority,
                instance_discovery=False,
                http_client=_OneShotHttpClient(self._ca_bundle, self._timeout),
            )
        return self._msal_app

    def _remember(self, scope: str, result: dict[str, Any], now: float) -> _Token:
        expires_in = float(result.get("expires_in") or 0)
        expires_at = now + expires_in
        refresh_at = expires_at - MSAL_EXPIRY_SKEW + 1
        if result.get("refresh_on"):
            refresh_at = min(refresh_at, float(result["refresh_on"]))
        token = _Token(str(result["access_token"]), refresh_at, expires_at - HARD_MARGIN)
        self._tokens[scope] = token
        self._failed_at.pop(scope, None)
        return token

    def _refresh_in_background(self, scope: str, now: float) -> None:
        if scope in self._refreshing or now - self._failed_at.get(scope, 0.0) < RETRY_AFTER_FAILURE:
            return
        self._refreshing.add(scope)

        def run() -> None:
            try:
                self.fetch(scope)
            except PermissionError as exc:
                self._failed_at[scope] = time.time()
                logger.warning("refreshing the bot's token failed, keeping the old one: %s", exc)
            finally:
                self._refreshing.discard(scope)

        threading.Thread(target=run, name="kollega-bot-token", daemon=True).start()


class KollegaAppCredentials(AppCredentials):
    """Credentials for one connector client; the token comes from the shared ``TokenSource``."""

    def __init__(self, source: TokenSource, oauth_scope: str | None) -> None:
        super().__init__(app_id=source.app_id, oauth_scope=oauth_scope or DEFAULT_SCOPE)
        self.oauth_endpoint = source.authority
        self._source = source
        self._scope = default_scope(oauth_scope)

    def get_access_token(self, force_refresh: bool = False) -> str:
        """Called by msrest's ``signed_session`` on the event loop: a memo read when warm.

        ``force_refresh`` is accepted for the interface; msal refuses forced client-credential
        refreshes and so do we (a rejected token is the authority's problem, not a cache's).
        """
        return self._source.get(self._scope)


class KollegaCredentialsFactory(ServiceClientCredentialsFactory):
    """Bot Framework credentials for one app id from a configurable authority and CA bundle."""

    def __init__(
        self,
        *,
        app_id: str,
        password: str,
        tenant_id: str | None = None,
        authority: str = DEFAULT_AUTHORITY,
        ca_bundle: str | Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        if ca_bundle and not Path(ca_bundle).is_file():
            raise ValueError(f"the bot's CA bundle {str(ca_bundle)!r} is not a file")
        if app_id and not password:
            raise ValueError("MicrosoftAppPassword is needed with MicrosoftAppId")
        self.app_id = app_id
        host = _https_origin(authority or DEFAULT_AUTHORITY, "KOLLEGA_BOT_AUTHORITY")
        tenant = (tenant_id or MULTI_TENANT).strip("/")
        self.source = TokenSource(
            app_id=app_id,
            password=password,
            authority=f"{host}/{tenant}",
            ca_bundle=ca_bundle,
            timeout=timeout,
        )

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(
        self,
        app_id: str,
        oauth_scope: str,
        login_endpoint: str,
        validate_authority: bool,
    ) -> AppCredentials:
        """Credentials for a connector client; fetches the token first if none is usable.

        ``login_endpoint`` and ``validate_authority`` come from the SDK's cloud constants and
        are ignored: the authority is ours (``KOLLEGA_BOT_AUTHORITY``) and msal never
        validates it against Microsoft's instance list.
        """
        if not self.app_id:
            return MicrosoftAppCredentials.empty()
        if not await self.is_valid_app_id(app_id):
            raise PermissionError("the activity's app id is not this bot's")
        await self.source.ensure(default_scope(oauth_scope))
        return KollegaAppCredentials(self.source, oauth_scope)

    async def warm_up(self) -> None:
        """Fetch the Bot Connector token now (in a thread), e.g. at start-up."""
        if self.app_id:
            await self.source.ensure(default_scope(None))


def bot_credentials_factory(settings: Any) -> KollegaCredentialsFactory | None:
    """The factory for ``settings``; None means the SDK's own (auth off, or a managed identity).

    Reads ``APP_ID``, ``APP_PASSWORD``, ``APP_TYPE``, ``APP_TENANTID``, ``bot_authority``
    (``KOLLEGA_BOT_AUTHORITY``) and ``bot_ca_bundle`` (``KOLLEGA_BOT_CA_BUNDLE``).
    """
    app_id = getattr(settings, "APP_ID", "") or ""
    app_type = str(getattr(settings, "APP_TYPE", "") or "MultiTenant").lower()
    if not app_id or app_type == "userassignedmsi":
        return None
    tenant = None
    if app_type == "singletenant":
        tenant = getattr(settings, "APP_TENANTID", "") or ""
        if not tenant:
            raise ValueError("MicrosoftAppTenantId is needed for a SingleTenant bot")
    return KollegaCredentialsFactory(
        app_id=app_id,
        password=getattr(settings, "APP_PASSWORD", "") or "",
        tenant_id=tenant,
        authority=getattr(settings, "bot_authority", "") or DEFAULT_AUTHORITY,
        ca_bundle=getattr(settings, "bot_ca_bundle", "") or None,
        timeout=float(getattr(settings, "bot_token_timeout_seconds", 10.0) or 10.0),
    )
