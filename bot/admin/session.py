"""Who may use the admin pages: the bearer token, or a signed session cookie plus CSRF token.

Scripts send ``Authorization: Bearer <KOLLEGA_ADMIN_TOKEN>``. Browsers cannot be given a
header, so the login form exchanges the token for a session cookie: HttpOnly (no script
reads it), SameSite=Strict (no other site's request carries it), Secure over https. The
cookie is stateless, ``payload.signature`` with an HMAC keyed by a key derived from the
admin token, so every replica accepts it and changing the token logs everybody out.

The session also carries a random CSRF token (synchronizer pattern, stateless): forms
repeat it in a hidden field and the dashboard's script in an ``X-CSRF-Token`` header; a
state-changing request with a cookie but without the matching token is refused. Every
comparison of a secret is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

logger = logging.getLogger(__name__)

SESSION_COOKIE = "kollega_admin"
LOGIN_COOKIE = "kollega_admin_login"  # double-submit token for the login form itself
SESSION_SECONDS = 8 * 3600
CSRF_HEADER = "X-CSRF-Token"


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality; an empty expected secret never matches."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    expires: int


class SessionSigner:
    """Signs and checks session cookies with a key derived from the admin token."""

    def __init__(self, admin_token: str) -> None:
        self._key = hmac.new(
            admin_token.encode("utf-8"), b"kollega-admin-session/v1", hashlib.sha256
        ).digest()

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> tuple[str, Session]:
        session = Session(
            csrf=secrets.token_urlsafe(32), expires=int((now or time.time()) + SESSION_SECONDS)
        )
        payload = _b64(json.dumps({"csrf": session.csrf, "exp": session.expires}).encode())
        return f"{payload}.{self._signature(payload)}", session

    def check(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature.encode(), self._signature(payload).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(csrf=str(data["csrf"]), expires=int(data["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now or time.time()):
            return None
        return session


def is_https(request: web.Request) -> bool:
    """https here or at the proxy in front (nginx sets X-Forwarded-Proto); only used to
    add ``Secure``, which can only make the cookie stricter."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_cookie(response: web.StreamResponse, name: str) -> None:
    response.del_cookie(name, path="/")


def same_origin(request: web.Request) -> bool:
    """A browser's Origin header, when sent, must name this host (defence in depth)."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    host = origin.split("://", 1)[-1]
    return host == request.host
