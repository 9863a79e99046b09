"""Tickets to any system that takes a signed JSON webhook (the contract in design.md).

Create: ``POST {KOLLEGA_TICKET_WEBHOOK_URL}`` with ``Content-Type: application/json`` and
the UTF-8 JSON body::

    {"reference": "KOL-20261123-0042", "summary": "VPN fails after update",
     "description": "...", "language": "nb", "channel": "msteams",
     "reporter": "kari.nordmann@example.org",
     "transcript": [{"from": "user", "text": "..."}, {"from": "bot", "text": "..."}],
     "created": "2026-11-23T09:41:07+01:00"}

When ``KOLLEGA_TICKET_WEBHOOK_SECRET`` is set, the request carries
``X-Kollega-Signature: sha256=<hex>``, where ``<hex>`` is the lower-case hex HMAC-SHA256 of
the exact body bytes under the secret (the GitHub/Workplace style: a receiver recomputes it
over the raw body before parsing and compares in constant time). Any 2xx answer means
created; a JSON answer carrying ``id`` or ``number`` gives the number shown to the user,
otherwise the user is shown kollega's reference. ``reference`` is unique per ticket and
stays the same when the user retries after a failure, so a receiver should treat a second
POST with a known reference as the same ticket (kollega never repeats a POST by itself).

Status: ``GET {KOLLEGA_TICKET_WEBHOOK_URL}/{number}`` (the number URL-encoded), answering
``{"number": ..., "status": "...", "updated": "<ISO 8601>"}``, 404 when there is none. With a
secret, the GET carries the same header computed over the empty body, which proves only
that the caller knows the secret. Which user may ask about which ticket is checked by
kollega's ticket registry before the call; the reporter is not sent with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.tickets import (
    DEFAULT_TIMEOUT,
    CreatedTicket,
    NewTicket,
    TicketStatus,
    TicketSystemError,
    http_failure,
    http_json,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Kollega-Signature"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Kollega-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(ticket: NewTicket) -> dict[str, Any]:
    """The JSON object design.md promises receivers, and nothing more."""
    return {
        "reference": ticket.reference,
        "summary": ticket.summary,
        "description": ticket.description,
        "language": ticket.language,
        "channel": ticket.channel,
        "reporter": ticket.reporter,
        "transcript": [
            {"from": turn.get("from", ""), "text": turn.get("text", "")}
            for turn in ticket.transcript
        ],
        "created": ticket.created.isoformat(timespec="seconds"),
    }


class WebhookTicketSystem:
    """Posts tickets as signed JSON to one URL and reads their status below it."""

    name = "webhook"
    tracks_status = True

    def __init__(
        self,
        *,
        url: str,
        session: aiohttp.ClientSession,
        secret: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.secret = secret
        self.timeout = timeout

    async def create(self, ticket: NewTicket) -> CreatedTicket:
        body = json.dumps(payload(ticket), ensure_ascii=False, separators=(",", ":")).encode()
        status, answer = await http_json(
            self.session,
            "POST",
            self.url,
            seconds=self.timeout,
            data=body,
            headers=self._headers(body, {"Content-Type": "application/json; charset=utf-8"}),
        )
        if not 200 <= status < 300:
            logger.warning(
                "ticket %s not accepted by the webhook: HTTP %s", ticket.reference, status
            )
            raise http_failure(status)
        number = ticket.reference
        if isinstance(answer, dict):
            given = answer.get("number") or answer.get("id")
            if given is not None and str(given).strip():
                number = str(given).strip()
        logger.info("ticket %s accepted by the webhook", ticket.reference)
        return CreatedTicket(ticket.reference, number, self.name)

    async def status(self, number: str, reporter: str) -> TicketStatus | None:
        url = f"{self.url}/{quote(number, safe='')}"
        headers = self._headers(b"", {"Accept": "application/json"})
        try:
            status, answer = await http_json(
                self.session, "GET", url, seconds=self.timeout, headers=headers
            )
        except TicketSystemError as error:
            if not error.retryable:
                raise
            # A read is safe to repeat once; a second failure goes to the user.
            status, answer = await http_json(
                self.session, "GET", url, seconds=self.timeout, headers=headers
            )
        if status == 404:
            return None
        if status != 200:
            raise http_failure(status)
        if not isinstance(answer, dict) or not answer.get("status"):
            raise TicketSystemError("bad_answer", retryable=False, status=status)
        return TicketStatus(
            number=str(answer.get("number") or number),
            status=str(answer["status"]),
            updated=_parse_time(answer.get("updated")),
        )

    def _headers(self, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        return headers


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
