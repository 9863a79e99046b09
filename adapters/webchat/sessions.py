"""Web chat sessions as signed, self-contained tokens: no session table, any replica serves.

``POST /api/webchat/sessions`` issues a random conversation id and an anonymous user id and
signs them (with the signed-in identity, when there is one) into an HS256 token the page
sends back as ``Authorization: Bearer`` with every message. A replica that has the same
``secret`` accepts it, so the chat works behind a load balancer without sticky sessions; the
conversation's memory lives in the bot's own storage, keyed by the conversation id.

The token is the only thing that ties a browser to a conversation: the ids are 128 random
bits, the signature is checked in constant time by PyJWT, and the audience is our own, so an
Entra ID access token (or anything else) is never mistaken for a session token.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field

import jwt

logger = logging.getLogger(__name__)

AUDIENCE = "kollega-webchat"
_ALGORITHM = "HS256"
# A session id travels in a URL path; only these characters are ever issued or accepted.
SESSION_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed in, from a validated Entra ID token; empty fields for an anonymous session."""

    object_id: str = ""
    principal_name: str = ""
    name: str = ""
    tenant_id: str = ""
    is_guest: bool = False

    @property
    def signed_in(self) -> bool:
        return bool(self.object_id)


@dataclass(frozen=True, slots=True)
class Session:
    """One browser session: its conversation, its anonymous user id, its locale, who (if known)."""

    id: str
    user_id: str
    locale: str
    expires: int
    identity: Identity = field(default_factory=Identity)


class SessionTokens:
    """Issues and checks session tokens.

    ``secret`` must be the same on every replica; empty means a random one for this process,
    which is fine for a single replica (a restart ends the sessions and the page quietly
    starts a new one).
    """

    def __init__(self, secret: str = "", ttl_seconds: float = 8 * 3600) -> None:
        if secret and len(secret.encode("utf-8")) < 32:
            raise ValueError("the web chat secret must be at least 32 bytes")
        self._secret = secret or secrets.token_urlsafe(48)
        self._ttl = int(ttl_seconds)

    def new_session(self, locale: str, identity: Identity | None = None) -> Session:
        return Session(
            id=secrets.token_urlsafe(16),
            user_id="anon-" + secrets.token_urlsafe(12),
            locale=locale,
            expires=int(time.time()) + self._ttl,
            identity=identity or Identity(),
        )

    def issue(self, session: Session) -> str:
        claims: dict[str, object] = {
            "aud": AUDIENCE,
            "sid": session.id,
            "sub": session.user_id,
            "loc": session.locale,
            "exp": session.expires,
            "iat": int(time.time()),
        }
        who = session.identity
        if who.signed_in:
            claims.update(
                oid=who.object_id, upn=who.principal_name, name=who.name, tid=who.tenant_id
            )
            if who.is_guest:
                claims["guest"] = True
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def check(self, token: str, session_id: str) -> Session | None:
        """The session ``token`` stands for, if it is ours, unexpired and for ``session_id``."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["exp", "sid", "sub"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("web chat session token refused: %s", type(exc).__name__)
            return None
        if not isinstance(claims.get("sid"), str) or claims["sid"] != session_id:
            return None
        return Session(
            id=claims["sid"],
            user_id=str(claims["sub"]),
            locale=str(claims.get("loc") or ""),
            expires=int(claims["exp"]),
            identity=Identity(
                object_id=str(claims.get("oid") or ""),
                principal_name=str(claims.get("upn") or ""),
                name=str(claims.get("name") or ""),
                tenant_id=str(claims.get("tid") or ""),
                is_guest=bool(claims.get("guest")),
            ),
        )


def plausible_session_id(value: str) -> bool:
    return 8 <= len(value) <= 64 and all(c in SESSION_ID_CHARS for c in value)
