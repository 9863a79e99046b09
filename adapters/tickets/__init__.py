"""Service desk tickets behind one small interface: e-mail, TOPdesk or a JSON webhook.

A dialog only ever sees ``TicketSystem``: ``create`` a ticket from a ``NewTicket`` and ask
the ``status`` of one by its number. Each connector lives in its own module and is chosen
by ``KOLLEGA_TICKETS`` in ``build_ticket_system``; none is built when that setting is
empty, and the handoff dialog then offers the owner contact instead.

Every ticket carries kollega's own reference (``KOL-20261123-0042``), made before the
ticket is sent and kept across the user's retries. It is shown to the user, put in the
mail subject and sent to TOPdesk and the webhook, so a desk can recognise the same ticket
sent twice (a retry after a timeout whose outcome was unknown) instead of working it twice.

Failures are one exception, ``TicketSystemError``, whose ``reason`` is a short code safe to
log and whose ``retryable`` says whether trying again later can help (a system that is
down or slow) or not (refused credentials, a request the system rejects). Connectors never
log message text, descriptions or transcripts: only references, reasons and status codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import aiohttp

if TYPE_CHECKING:
    import ssl

    from bot.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TIMEOUT",
    "REFERENCE_PREFIX",
    "CreatedTicket",
    "NewTicket",
    "TicketStatus",
    "TicketSystem",
    "TicketSystemError",
    "build_ticket_system",
    "format_reference",
    "http_failure",
    "http_json",
    "summary_of",
]

# One budget for a whole call (connect, send, answer): a user is waiting in the chat.
DEFAULT_TIMEOUT = 10.0
REFERENCE_PREFIX = "KOL"
SUMMARY_CHARS = 80  # TOPdesk's briefDescription limit; a fine length for a mail subject too


@dataclass(frozen=True, slots=True)
class NewTicket:
    """A ticket to create. ``reporter`` is the user's principal name (e-mail/UPN).

    ``transcript`` holds the conversation's last turns as ``{"from", "text"}`` dicts.
    ``attempt`` counts the user's retries of this same ticket (0 the first time), so a
    connector that can look for an earlier, perhaps successful, attempt knows to do so.
    """

    reference: str
    summary: str
    description: str
    language: str
    channel: str
    reporter: str
    transcript: tuple[dict[str, str], ...] = ()
    created: datetime = field(default_factory=lambda: datetime.now().astimezone())
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class CreatedTicket:
    """What the user is told: ``number`` is the ticket system's (the reference by mail)."""

    reference: str
    number: str
    system: str


@dataclass(frozen=True, slots=True)
class TicketStatus:
    """A ticket's state in words the service desk chose, and when it last changed."""

    number: str
    status: str
    updated: datetime | None = None


class TicketSystemError(Exception):
    """The ticket system could not do what was asked.

    ``reason`` is a short code (``unavailable``, ``timeout``, ``unauthorised``,
    ``server_error``, ``rejected``, ``bad_answer``, ``not_supported``), never user text,
    so the exception can be logged as it is.
    """

    def __init__(self, reason: str, *, retryable: bool, status: int | None = None) -> None:
        detail = f"{reason} (HTTP {status})" if status is not None else reason
        super().__init__(detail)
        self.reason = reason
        self.retryable = retryable
        self.status = status


@runtime_checkable
class TicketSystem(Protocol):
    """What dialogs need of a service desk. ``name`` is stored with each ticket's reference."""

    name: str
    # False where a ticket's state cannot be asked for (mail): the dialog says so instead.
    tracks_status: bool

    async def create(self, ticket: NewTicket) -> CreatedTicket:
        """Create the ticket; raise ``TicketSystemError`` when that fails."""
        ...

    async def status(self, number: str, reporter: str) -> TicketStatus | None:
        """The ticket's state, or None when there is none by that number for ``reporter``."""
        ...


def format_reference(day: date, sequence: int) -> str:
    """kollega's reference for the ``sequence``-th ticket of ``day``: ``KOL-20261123-0042``."""
    return f"{REFERENCE_PREFIX}-{day:%Y%m%d}-{sequence:04d}"


def summary_of(description: str, limit: int = SUMMARY_CHARS) -> str:
    """A one-line summary of ``description`` that fits ``limit``, cut at a word if it can."""
    line = " ".join(description.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


# HTTP answers that mean "not now" rather than "never": worth a retry later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def http_failure(status: int) -> TicketSystemError:
    """The ``TicketSystemError`` for an unexpected HTTP status from a ticket system."""
    if status in (401, 403):
        return TicketSystemError("unauthorised", retryable=False, status=status)
    if status in _RETRYABLE_STATUSES:
        reason = "server_error" if status >= 500 else "unavailable"
        return TicketSystemError(reason, retryable=True, status=status)
    if status >= 500:
        return TicketSystemError("server_error", retryable=True, status=status)
    return TicketSystemError("rejected", retryable=False, status=status)


async def http_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    seconds: float,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One HTTP call to a ticket system: its status and its JSON answer (None if not JSON).

    Network trouble becomes ``TicketSystemError`` (``timeout``, ``unavailable``), so the
    connectors only decide what each status means. The whole call, answer body included,
    gets ``seconds``.
    """
    try:
        async with (
            asyncio.timeout(seconds),
            session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=seconds), **kwargs
            ) as response,
        ):
            body = await response.read()
            status = response.status
    except TimeoutError as error:
        raise TicketSystemError("timeout", retryable=True) from error
    except (aiohttp.ClientError, OSError) as error:
        raise TicketSystemError("unavailable", retryable=True) from error
    if not body:
        return status, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def build_ticket_system(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    smtp_tls_context: ssl.SSLContext | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TicketSystem | None:
    """The connector ``settings.tickets`` names, or None when tickets are off.

    A connector named but not configured (``topdesk`` without a URL …) is refused here, at
    start-up, with the missing variables named, rather than failing a user's ticket later.
    ``smtp_tls_context`` lets ops (and tests) trust a private CA for the mail server.
    """
    kind = settings.tickets
    if not kind:
        return None
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"KOLLEGA_TICKETS={kind!r} is not one of {', '.join(_BUILDERS)}")
    return builder(settings, session, smtp_tls_context, timeout)


def _build_mail(
    settings: Settings,
    session: aiohttp.ClientSession,
    tls_context: ssl.SSLContext | None,
    timeout: float,
) -> TicketSystem:
    from adapters.tickets.mail import MailTicketSystem

    _require(
        settings,
        "mail",
        smtp_host="KOLLEGA_SMTP_HOST",
        servicedesk_mail="KOLLEGA_SERVICEDESK_MAIL",
        mail_from="KOLLEGA_MAIL_FROM",
    )
    return MailTicketSystem(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        recipient=settings.servicedesk_mail,
        user=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        tls_context=tls_context,
        timeout=timeout,
    )


def _build_topdesk(
    settings: Settings,
    session: aiohttp.ClientSession,
    tls_context: ssl.SSLContext | None,
    timeout: float,
) -> TicketSystem:
    from adapters.tickets.topdesk import TopdeskTicketSystem

    _require(
        settings,
        "topdesk",
        topdesk_url="KOLLEGA_TOPDESK_URL",
        topdesk_user="KOLLEGA_TOPDESK_USER",
        # The variable's name, not a secret:
        topdesk_app_password="KOLLEGA_TOPDESK_APP_PASSWORD",  # noqa: S106
    )
    return TopdeskTicketSystem(
        base_url=settings.topdesk_url,
        user=settings.topdesk_user,
        app_password=settings.topdesk_app_password,
        session=session,
        timeout=timeout,
    )


def _build_webhook(
    settings: Settings,
    session: aiohttp.ClientSession,
    tls_context: ssl.SSLContext | None,
    timeout: float,
) -> TicketSystem:
    from adapters.tickets.webhook import WebhookTicketSystem

    _require(settings, "webhook", ticket_webhook_url="KOLLEGA_TICKET_WEBHOOK_URL")
    return WebhookTicketSystem(
        url=settings.ticket_webhook_url,
        secret=settings.ticket_webhook_secret,
        session=session,
        timeout=timeout,
    )


# Connector modules are imported only when chosen: a mail-only install never loads TOPdesk's.
_BUILDERS: dict[
    str,
    Callable[[Settings, aiohttp.ClientSession, ssl.SSLContext | None, float], TicketSystem],
] = {"mail": _build_mail, "topdesk": _build_topdesk, "webhook": _build_webhook}


def _require(settings: Settings, kind: str, **variables: str) -> None:
    missing = [env for attr, env in variables.items() if not getattr(settings, attr)]
    if missing:
        raise ValueError(f"KOLLEGA_TICKETS={kind} needs {', '.join(missing)}")
