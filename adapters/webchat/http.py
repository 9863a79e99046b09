"""The HTTP edge of the web chat: origins (CORS), security headers, body limits, JSON errors.

The widget runs on intranet pages of other origins, so ``/api/webchat/*`` answers CORS for
the origins ops list (``KOLLEGA_WEBCHAT_ALLOWED_ORIGINS``) and for nobody else; the default is
the page's own origin only. Sessions ride on a bearer token, never a cookie, so an allowed
origin gets no ambient authority: CORS only lets its pages read the answers.

Every error is JSON ``{"error": ...}`` with the CORS headers too, so the widget can read a
429's ``Retry-After`` and tell the person politely instead of failing blind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

logger = logging.getLogger(__name__)

SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The standalone page: its own scripts and styles only, nothing inline, no plugins, no framing
# by strangers, and API calls to this origin only.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
_ALLOW_HEADERS = "Authorization, Content-Type, Accept"
_EXPOSE_HEADERS = "Retry-After"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalise(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default port dropped; '' if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginPolicy:
    """Which page origins may call the API: the same origin always, plus ``allowed``.

    ``*`` in ``allowed`` admits any origin (a public, anonymous-only deployment).
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        items = [a.strip() for a in allowed if a.strip()]
        self.any = "*" in items
        self.allowed = frozenset(_normalise(a) for a in items if a != "*") - {""}
        bad = [a for a in items if a != "*" and not _normalise(a)]
        if bad:
            raise ValueError(f"not an origin (scheme://host[:port]): {', '.join(bad)}")

    def cross_origin(self, request: web.Request) -> str | None:
        """The request's Origin if it is another origin than ours, else None."""
        origin = request.headers.get("Origin")
        if not origin:
            return None
        # Same origin if the Origin names the host the request was sent to. The scheme is
        # not compared: behind a TLS-terminating proxy we see http while the page is https.
        netloc = urlsplit(origin).netloc.lower()
        host = request.host.lower()
        if netloc == host:
            return None
        return origin

    def allows(self, origin: str) -> bool:
        return self.any or _normalise(origin) in self.allowed

    def headers_for(self, request: web.Request) -> dict[str, str]:
        """CORS headers for an allowed cross-origin request (empty otherwise)."""
        origin = self.cross_origin(request)
        if origin is None or not self.allows(origin):
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": _EXPOSE_HEADERS,
            "Vary": "Origin",
        }

    def preflight(self, request: web.Request) -> web.Response:
        """OPTIONS: 204 with the allowances for an allowed origin, 403 for any other."""
        origin = self.cross_origin(request)
        if origin is not None and not self.allows(origin):
            return error(403, "origin not allowed", {"Vary": "Origin"})
        headers = {
            **self.headers_for(request),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return web.Response(status=204, headers={**SECURITY_HEADERS, **headers})


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": message},
        status=status,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})},
    )


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; '' for a malformed one; None if absent."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()
