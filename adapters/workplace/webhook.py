"""The HTTP edge of the webhook: the verification handshake, the body limit, the signature.

Meta signs every POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
keyed with the app secret>``. The check runs on the raw bytes before any JSON parsing, so a
forged body never reaches the parser, and compares in constant time. The older SHA-1
``X-Hub-Signature`` header that some deliveries still carry is deliberately not accepted on
its own: SHA-1 is the weaker MAC, and a request without the SHA-256 header is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping

from aiohttp import web

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_MAX_CHALLENGE = 1024


def sign(app_secret: str, body: bytes) -> str:
    """The header value Meta would send for ``body``; used by the check and by tests."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """True only for a ``sha256=`` header matching the body, compared in constant time."""
    if not app_secret or not header or header[: len(_PREFIX)].lower() != _PREFIX:
        return False
    expected = sign(app_secret, body).encode("ascii")
    given = (_PREFIX + header[len(_PREFIX) :].strip().lower()).encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def verification_response(query: Mapping[str, str], verify_token: str) -> web.Response:
    """Answer the subscription handshake: echo ``hub.challenge`` if the token matches, or 403."""
    mode = query.get("hub.mode")
    token = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge")
    token_ok = bool(verify_token) and hmac.compare_digest(
        token.encode("utf-8", "replace"), verify_token.encode("utf-8")
    )
    if mode == "subscribe" and token_ok and challenge and len(challenge) <= _MAX_CHALLENGE:
        logger.info("workplace webhook subscription verified")
        return web.Response(text=challenge, content_type="text/plain")
    logger.warning("workplace webhook verification refused (mode=%r)", mode)
    return web.Response(status=403, text="Forbidden", content_type="text/plain")
