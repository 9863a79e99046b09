"""Optional sign-in: validates an Entra ID access token the intranet page hands the widget.

Where the intranet sits behind Entra ID, the page can get an access token for kollega's API
(MSAL.js ``acquireTokenSilent``) and the widget sends it once, when it opens a session. The
token is checked here — signature against the tenant's published keys, issuer, audience,
expiry, tenant — and only then do its ``oid`` and ``preferred_username``/``upn`` reach the bot.
A token that fails any check is refused (401): a broken sign-in must be noticed, not turned
silently into an anonymous chat.

PyJWT's ``PyJWKClient`` fetches the keys with blocking ``urllib``; it runs in a worker thread
so the event loop (and every other chat) never waits on login.microsoftonline.com. It caches
the key set for five minutes and fetches again when a token names a key it does not know
(Entra rolls its keys), at most once per ``cooldown`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import jwt

from .sessions import Identity

logger = logging.getLogger(__name__)

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
_ALGORITHMS = ["RS256"]
_MAX_TOKEN_CHARS = 16 * 1024


class InvalidToken(Exception):
    """The bearer token was sent but is not a valid access token for kollega."""


class EntraIdValidator:
    """Checks Entra ID access tokens for one tenant and one API (audience).

    ``audiences``: the API's application id URI and/or client id (v1 tokens carry the URI,
    v2 tokens the GUID). ``issuers`` default to the tenant's v2 and v1 issuers and
    ``jwks_url`` to the tenant's key set; tests (and sovereign clouds) pass their own.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        audiences: Iterable[str],
        issuers: Iterable[str] = (),
        jwks_url: str = "",
        authority: str = DEFAULT_AUTHORITY,
        leeway_seconds: float = 60.0,
        fetch_timeout_seconds: float = 10.0,
    ) -> None:
        self.tenant_id = tenant_id.strip()
        self.audiences = [a.strip() for a in audiences if a.strip()]
        if not self.tenant_id or not self.audiences:
            raise ValueError("sign-in needs a tenant id and at least one audience")
        authority = authority.rstrip("/")
        self.issuers = [i.strip() for i in issuers if i.strip()] or [
            f"{authority}/{self.tenant_id}/v2.0",
            f"https://sts.windows.net/{self.tenant_id}/",
        ]
        self.jwks_url = jwks_url or f"{authority}/{self.tenant_id}/discovery/v2.0/keys"
        self._leeway = leeway_seconds
        self._keys = jwt.PyJWKClient(
            self.jwks_url, cache_keys=True, lifespan=300, timeout=fetch_timeout_seconds
        )

    async def identity(self, token: str) -> Identity:
        """The signed-in user, or ``InvalidToken`` with the reason (for the log, not the user)."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise InvalidToken("empty or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"not a JWT: {type(exc).__name__}") from exc
        if header.get("alg") not in _ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} not accepted")
        try:
            signing_key = await asyncio.to_thread(self._keys.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as exc:
            # Either the key set is unreachable or no key matches the token's kid.
            raise InvalidToken(f"no signing key: {exc}") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"unreadable token: {type(exc).__name__}") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=_ALGORITHMS,
                audience=self.audiences,
                issuer=self.issuers,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "oid"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        tenant = str(claims.get("tid") or "")
        if tenant and tenant.lower() != self.tenant_id.lower():
            raise InvalidToken("token from another tenant")
        object_id = str(claims.get("oid") or "")
        if not object_id:
            raise InvalidToken("token without oid")
        return Identity(
            object_id=object_id,
            principal_name=str(claims.get("preferred_username") or claims.get("upn") or ""),
            name=str(claims.get("name") or ""),
            tenant_id=tenant or self.tenant_id,
            # Entra's optional ``acct`` claim: 1 for a guest (B2B) account in this tenant.
            is_guest=str(claims.get("acct", "")) == "1",
        )
