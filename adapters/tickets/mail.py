"""Tickets by e-mail to the service desk's mailbox, over SMTP with STARTTLS and AUTH.

The simplest service desk there is, and the one many municipalities run: a shared mailbox
that a desk system (or people) turn into cases. The subject starts with kollega's
reference in brackets (``[KOL-20261123-0042] VPN fails after update``) because the mailbox
assigns its own number only later, and ``Reply-To`` is the reporter's address so the desk
answers the user, not the bot's sending address.

A mail has no status to ask for: ``tracks_status`` is False and ``status`` refuses, and
the status dialog tells the user the desk answers by e-mail.

Sending is not retried here: after a timeout the mail may or may not have been accepted,
and a second copy is worse than a polite "try again". A user's retry sends the same
reference, so the desk sees a duplicate for what it is.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import aiosmtplib

from adapters.tickets import (
    DEFAULT_TIMEOUT,
    CreatedTicket,
    NewTicket,
    TicketStatus,
    TicketSystemError,
)

logger = logging.getLogger(__name__)

IMPLICIT_TLS_PORT = 465  # SMTPS: TLS from the first byte, so STARTTLS does not apply
SPEAKERS = {"user": "User", "bot": "kollega"}


class MailTicketSystem:
    """Sends each ticket as one plain-text mail to ``recipient``."""

    name = "mail"
    tracks_status = False

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        recipient: str,
        user: str = "",
        password: str = "",
        starttls: bool = True,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipient = recipient
        self.user = user
        self.password = password
        self.starttls = starttls
        self.tls_context = tls_context
        self.timeout = timeout

    def compose(self, ticket: NewTicket) -> EmailMessage:
        """The mail for ``ticket``; public so its shape can be checked without a server."""
        message = EmailMessage()
        message["Subject"] = f"[{ticket.reference}] {_one_line(ticket.summary)}"
        message["From"] = self.sender
        message["To"] = self.recipient
        reply_to = _address(ticket.reporter)
        if reply_to:
            message["Reply-To"] = reply_to
        message["Date"] = format_datetime(ticket.created)
        message["Message-ID"] = make_msgid(
            idstring=ticket.reference, domain=_domain(self.sender) or None
        )
        message["X-Kollega-Reference"] = ticket.reference
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to the bot
        message.set_content(_body(ticket))
        return message

    async def create(self, ticket: NewTicket) -> CreatedTicket:
        message = self.compose(ticket)
        try:
            async with asyncio.timeout(self.timeout):
                await aiosmtplib.send(
                    message,
                    sender=self.sender,
                    recipients=[self.recipient],
                    hostname=self.host,
                    port=self.port,
                    username=self.user or None,
                    password=self.password or None,
                    use_tls=self.port == IMPLICIT_TLS_PORT,
                    start_tls=self.starttls if self.port != IMPLICIT_TLS_PORT else False,
                    tls_context=self.tls_context,
                    timeout=self.timeout,
                )
        except TimeoutError as error:
            raise _failed(ticket, TicketSystemError("timeout", retryable=True)) from error
        except aiosmtplib.SMTPAuthenticationError as error:
            raise _failed(
                ticket, TicketSystemError("unauthorised", retryable=False, status=error.code)
            ) from error
        except aiosmtplib.SMTPResponseException as error:
            # 4xx is the server's "not now"; 5xx a refusal that a retry will not change.
            transient = 400 <= error.code < 500
            failure = TicketSystemError(
                "unavailable" if transient else "rejected", retryable=transient, status=error.code
            )
            raise _failed(ticket, failure) from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _failed(ticket, TicketSystemError("rejected", retryable=False)) from error
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as error:
            raise _failed(ticket, TicketSystemError("unavailable", retryable=True)) from error
        logger.info("ticket %s sent by mail", ticket.reference)
        return CreatedTicket(reference=ticket.reference, number=ticket.reference, system=self.name)

    async def status(self, number: str, reporter: str) -> TicketStatus | None:
        raise TicketSystemError("not_supported", retryable=False)


def _failed(ticket: NewTicket, error: TicketSystemError) -> TicketSystemError:
    logger.warning("ticket %s not sent by mail: %s", ticket.reference, error)
    return error


def _body(ticket: NewTicket) -> str:
    lines = [
        ticket.description.strip(),
        "",
        "--",
        f"Reference: {ticket.reference}",
        f"Reported by: {ticket.reporter or '(unknown)'}",
        f"Language: {ticket.language}",
        f"Channel: {ticket.channel}",
        f"Created: {ticket.created.isoformat(timespec='seconds')}",
    ]
    if ticket.transcript:
        lines += ["", "Conversation with kollega (last turns):"]
        for turn in ticket.transcript:
            speaker = SPEAKERS.get(turn.get("from", ""), turn.get("from", "?"))
            lines.append(f"{speaker}: {_one_line(turn.get('text', ''))}")
    lines += ["", "Reply to this mail to answer the user; keep the reference in the subject."]
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    """Header-safe and tidy: no line breaks (a header injection needs one)."""
    return " ".join(text.split())


def _address(value: str) -> str:
    """``value`` as a mail address fit for a header, or "" if it is not one."""
    value = value.strip()
    if not value or any(ch in value for ch in '\r\n<>,;"') or value.count("@") != 1:
        return ""
    local, _, domain = value.partition("@")
    if not local or "." not in domain:
        return ""
    try:
        return str(Address(addr_spec=value))
    except (ValueError, IndexError):
        return ""


def _domain(address: str) -> str:
    _, _, domain = address.rpartition("@")
    return domain.strip(" >")
