"""Ticket status: "status på sak 1234", "status för ärende 1234", "tiketin tila" …

Only the person who reported a ticket may hear about it. kollega does not store who asked
what, so the ticket registry (``bot.ticket_registry``) is asked first: it knows each
ticket only by a keyed hash of its reporter's principal name, and a number that is not
among the asking user's tickets gets the same "not found" as a number that does not exist
(no hint that it is someone else's). Only then is the ticket system asked, by the number
it gave; TOPdesk also checks that the incident's caller is the asking user.

Without a number, the user's recent tickets are offered as buttons. Every turn is
``Outcome.PERSONAL``: the answer is about one person and is not kept anywhere.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from adapters.tickets import TicketSystem, TicketSystemError
from dialogs.base import Dialog, DialogContext
from dialogs.handoff import answer_of, compile_phrases, format_time, message_text
from dialogs.texts import text
from dialogs.turn import Choice, Message, Outcome, Reply

logger = logging.getLogger(__name__)

RECENT_TICKETS = 5

# How a status question is put, per language (searched in the lower-cased message).
STATUS_REQUESTS: dict[str, tuple[str, ...]] = {
    "nb": (
        r"\bstatus(?:en)?\b.{0,30}\b(?:sak|saka|saken|sakene|saker|henvendelse\w*|ticket)\b",
        r"\bhvordan\s+går\s+det\s+med\b.{0,20}\b(?:sak\w*|henvendelse\w*)",
        r"\bhva\s+skjer\s+med\b.{0,20}\bsak\w*",
    ),
    "sv": (
        r"\bstatus(?:en)?\b.{0,30}\bärende\w*",
        r"\bhur\s+går\s+det\s+med\b.{0,20}\bärende\w*",
    ),
    "da": (
        r"\bstatus(?:sen)?\b.{0,30}\bsag(?:en|er|erne)?\b",
        r"\bhvordan\s+går\s+det\s+med\b.{0,20}\bsag\w*",
    ),
    "fi": (
        r"\btiket\w*\b.{0,20}\btila\w*",
        r"\btila\w*\b.{0,20}\btiket\w*",
        r"\b(?:tukipyyn|palvelupyyn)\w*\b.{0,20}\btila\w*",
        r"\bmissä\s+vaiheessa\b.{0,30}\b(?:tiket|tukipyyn|palvelupyyn|pyyn)\w*",
    ),
    "en": (
        r"\b(?:ticket|case|incident)s?\b.{0,20}\bstatus\b",
        r"\bstatus\b.{0,20}\b(?:ticket|case|incident)s?\b",
        r"\b(?:where|how)\s+is\s+my\s+(?:ticket|case)\b",
        r"\bany\s+news\s+(?:on|about)\s+my\s+(?:ticket|case)\b",
    ),
    # A bare reference is a status question in any language.
    "any": (r"^\s*kol-\d{8}-\d{3,}\s*[?.!]*\s*$",),
}
STATUS_PATTERN = compile_phrases(STATUS_REQUESTS)

# kollega's references first, then ticket numbers as systems write them: "1234",
# "I 2311 042", "I2311-042", "INC-20231".
_REFERENCE = re.compile(r"\bKOL-?\d{8}-?\d{3,}\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w-])(?:[A-Za-z][ -]?|[A-Za-z]{2,3}-?)?\d{3,}(?:[ -]\d{2,})*(?![\w-])")


def ticket_number(said: str) -> str | None:
    """The ticket number or reference in ``said``, as typed, or None."""
    found = _REFERENCE.search(said) or _NUMBER.search(said)
    return found.group(0).strip() if found else None


class TicketStatusDialog(Dialog):
    """Answers "what is the status of my ticket" for the asking user's own tickets."""

    name = "ticket_status"

    def __init__(self, registry: Any | None = None) -> None:
        self.registry = registry

    def recognise(self, message: Message) -> dict[str, Any] | None:
        said = message.text or ""
        if not STATUS_PATTERN.search(said):
            return None
        number = ticket_number(said)
        return {"number": number} if number else {}

    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        dc.result.outcome = Outcome.PERSONAL
        tickets: TicketSystem | None = dc.services.tickets
        if tickets is None or self.registry is None:
            dc.say(text("tickets.no_system", dc.language))
            return False
        reporter = await dc.principal_name()
        if not reporter:
            dc.say(text("tickets.no_identity", dc.language))
            return False
        number = str(options.get("number") or "").strip()
        if number:
            await self._answer(dc, tickets, reporter, number)
            return False
        try:
            records = await self.registry.recent(reporter, limit=RECENT_TICKETS)
        except Exception:
            logger.exception("ticket status: registry lookup failed")
            dc.say(text("tickets.failed", dc.language))
            return False
        if not records:
            dc.say(text("tickets.none", dc.language))
            return False
        if not tickets.tracks_status:
            references = [record.reference for record in records]
            dc.say(text("tickets.by_mail", dc.language, references=references))
            return False
        dc.state.clear()
        dc.state["step"] = "pick"
        dc.state["choices"] = [
            [_label(record.reference, record.number), record.reference] for record in records
        ]
        self._ask_pick(dc)
        return True

    def _ask_pick(self, dc: DialogContext) -> None:
        cancel = text("handoff.choice.cancel", dc.language)
        buttons = [Choice(title=title, value=value) for title, value in dc.state["choices"]]
        dc.say(
            Reply(
                text("tickets.pick", dc.language),
                choices=[*buttons, Choice(title=cancel, value=cancel)],
            )
        )

    async def resume(self, dc: DialogContext) -> bool:
        dc.result.outcome = Outcome.PERSONAL
        if answer_of(dc.message) == "cancel":
            dc.result.outcome = Outcome.CANCELLED
            dc.say(text("tickets.cancelled", dc.language))
            dc.state.clear()
            return False
        number = ticket_number(message_text(dc.message))
        if not number and not dc.state.get("asked_again") and dc.state.get("choices"):
            dc.state["asked_again"] = True  # once: a user who moved on must not be held
            self._ask_pick(dc)
            return True
        tickets: TicketSystem | None = dc.services.tickets
        reporter = await dc.principal_name()
        dc.state.clear()
        if not number or tickets is None or not reporter:
            dc.result.outcome = Outcome.CANCELLED
            dc.say(text("tickets.cancelled", dc.language))
            return False
        await self._answer(dc, tickets, reporter, number)
        return False

    async def _answer(
        self, dc: DialogContext, tickets: TicketSystem, reporter: str, number: str
    ) -> None:
        try:
            record = await self.registry.find(reporter, number)
        except Exception:
            logger.exception("ticket status: registry lookup failed")
            dc.say(text("tickets.failed", dc.language))
            return
        if record is None:
            dc.say(text("tickets.not_found", dc.language, number=number))
            return
        if not tickets.tracks_status or record.system != tickets.name:
            dc.say(text("tickets.by_mail", dc.language, references=[record.reference]))
            return
        try:
            status = await tickets.status(record.number, reporter)
        except TicketSystemError as error:
            logger.warning("ticket status: %s lookup failed (%s)", record.reference, error.reason)
            dc.say(text("tickets.failed", dc.language))
            return
        if status is None:
            dc.say(text("tickets.not_found", dc.language, number=number))
            return
        dc.say(
            text(
                "tickets.status",
                dc.language,
                number=status.number,
                reference=record.reference,
                status=status.status,
                updated=format_time(status.updated, dc.language),
            )
        )


def _label(reference: str, number: str) -> str:
    return reference if number == reference else f"{number} ({reference})"
