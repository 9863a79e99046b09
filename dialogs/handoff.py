"""Handing a question over to a human: a service desk ticket, or the owner contact.

Started after a fallback or a 👎 (``begin(dc, {"reason": "fallback"|"feedback",
"question": ..., "owner": ...})``) or when the user asks ("lag en sak", "prata med en
människa", "talk to a human" …, see ``HANDOFF_REQUESTS``). The steps, each a turn:

1. ``use_question`` — offer the question the user asked as the description (when known),
   or ``describe`` — ask for a short description;
2. ``confirm`` — show the summary, the description and the conversation's last turns
   that go with it, and ask Yes/No;
3. the ticket is created and the user gets its number and kollega's reference; if the
   ticket system fails, the step becomes ``failed``: the description stays in the state
   and a "Try again" button sends the very same ticket (same reference) again.

Cancel words ("avbryt", "peruuta", "glem det", "cancel" …) end the dialog at every step.
With no ticket system configured, or no way to tell who the user is (a ticket nobody can
answer helps no one), the user is pointed to the owner of the closest domain instead.

The user's principal name is asked for when needed and never put in the dialog state;
the state holds what the user typed only until the dialog ends. Every turn of this
dialog is ``Outcome.HANDOFF``, so analytics know its text is a ticket, not a question.

The answer words (yes/no/retry/cancel) and ``format_time`` here are shared with the ticket
status and leave dialogs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.tickets import (
    NewTicket,
    TicketSystem,
    TicketSystemError,
    format_reference,
    summary_of,
)
from dialogs.base import Dialog, DialogContext
from dialogs.texts import text
from dialogs.turn import Choice, Message, Outcome, Reply

logger = logging.getLogger(__name__)

MAX_DESCRIPTION_CHARS = 2000
MIN_DESCRIPTION_CHARS = 3
TRANSCRIPT_TURNS = 10  # sent with the ticket
SHOWN_TURNS = 6  # shown to the user in the summary
TURN_CHARS = 300

# What the user asks for when they want a person or a ticket, per language. Searched in
# the lower-cased message; every language is tried, since a short request is easily
# detected as a neighbouring language.
HANDOFF_REQUESTS: dict[str, tuple[str, ...]] = {
    "nb": (
        r"\b(?:snakke|prate|chatte)\s+med\s+(?:et\s+|en\s+)?(?:ekte\s+)?"
        r"(?:menneske|person|noen|saksbehandler|brukerstøtte\w*|servicedesk\w*|kundeservice)\b",
        r"\b(?:lag|lage|opprett|opprette|registrer|registrere|meld|melde)\s+"
        r"(?:en\s+)?(?:ny\s+)?(?:sak|henvendelse|ticket)\b",
        r"\bmenneskelig\s+hjelp\b",
        r"\bkontakte?\s+(?:med\s+)?(?:brukerstøtte\w*|servicedesk\w*|it-?support\w*)",
    ),
    "sv": (
        r"\b(?:prata|tala|snacka|chatta)\s+med\s+(?:en\s+)?(?:riktig\s+)?"
        r"(?:människa|person|någon|handläggare|supporten|servicedesk\w*)\b",
        r"\b(?:skapa|lägga\s+upp|lägg\s+upp|lägga\s+in|lägg\s+in|registrera|öppna|göra)\s+"
        r"(?:ett\s+)?(?:nytt\s+)?ärende\b",
        r"\bfelanmäl\w*",
    ),
    "da": (
        r"\b(?:tale|tal|snakke|chatte)\s+med\s+(?:et\s+|en\s+)?(?:rigtig\s+)?"
        r"(?:menneske|person|nogen|sagsbehandler|support\w*|servicedesk\w*)\b",
        r"\b(?:opret|oprette|lav|lave|registrer|registrere)\s+(?:en\s+)?(?:ny\s+)?sag\b",
    ),
    "fi": (
        r"\bpuhu\w*\s+(?:\w+\s+)?(?:ihmisen|henkilön|jonkun|asiakaspalvelijan|tukihenkilön)"
        r"\s+kanssa\b",
        r"\b(?:luo|luoda|tee|tehdä|avaa|avata|jätä|jättää)\s+(?:uusi\s+|uuden\s+)?"
        r"(?:tiket\w*|tukipyyn\w*|palvelupyyn\w*)",
        r"\boikea\w*\s+ihmi\w*",
    ),
    "en": (
        r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+)?(?:real\s+)?"
        r"(?:human|person|someone|somebody|agent|service\s*desk|help\s*desk|support)\b",
        r"\b(?:create|open|raise|log|file|submit|make)\s+(?:a\s+|an\s+)?(?:new\s+)?"
        r"(?:support\s+)?(?:ticket|case|incident)\b",
        r"\bhuman\s+agent\b",
    ),
}

# Answers to the dialog's questions, per language. A message is an answer when it is one
# of these phrases, perhaps with a courtesy word ("ja takk", "yes please"), and no more:
# "no internet since Monday" is a description, not a "no".
ANSWER_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "yes": {
        "nb": (
            "ja",
            "jada",
            "jepp",
            "japp",
            "ok",
            "okei",
            "gjerne",
            "ja gjerne",
            "send",
            "opprett",
            "det stemmer",
            "stemmer",
        ),
        "sv": (
            "ja",
            "japp",
            "jajamen",
            "okej",
            "gärna",
            "absolut",
            "skicka",
            "skapa",
            "det stämmer",
            "stämmer",
        ),
        "da": ("ja", "jo", "jep", "okay", "gerne", "send", "opret", "det passer"),
        "fi": (
            "kyllä",
            "joo",
            "juu",
            "jep",
            "ok",
            "okei",
            "selvä",
            "lähetä",
            "luo",
            "pitää paikkansa",
        ),
        "en": (
            "yes",
            "y",
            "yeah",
            "yep",
            "sure",
            "ok",
            "okay",
            "go ahead",
            "please do",
            "send",
            "create",
            "correct",
        ),
    },
    "no": {
        "nb": ("nei", "nope", "niks"),
        "sv": ("nej", "nä", "nää"),
        "da": ("nej", "nix"),
        "fi": ("ei", "en", "ei kiitos"),
        "en": ("no", "n", "nope", "nah"),
    },
    "retry": {
        "nb": ("prøv igjen", "prøv på nytt", "send igjen", "igjen"),
        "sv": ("försök igen", "prova igen", "skicka igen", "igen"),
        "da": ("prøv igen", "prøv på ny", "send igen", "igen"),
        "fi": ("yritä uudelleen", "yritä uudestaan", "yritä uudelleen nyt", "uudelleen"),
        "en": ("try again", "retry", "again", "resend", "send again"),
    },
    "cancel": {
        "nb": (
            "avbryt",
            "avslutt",
            "stopp",
            "glem det",
            "glem det bare",
            "drit i det",
            "la være",
            "angre",
        ),
        "sv": (
            "avbryt",
            "avsluta",
            "stopp",
            "sluta",
            "glöm det",
            "strunt i det",
            "låt bli",
            "ångra",
        ),
        "da": (
            "afbryd",
            "annuller",
            "annullér",
            "stop",
            "glem det",
            "lad være",
            "fortryd",
            "drop det",
        ),
        "fi": (
            "peruuta",
            "peru",
            "keskeytä",
            "lopeta",
            "unohda",
            "unohda se",
            "anna olla",
            "ei sittenkään",
        ),
        "en": (
            "cancel",
            "stop",
            "abort",
            "quit",
            "forget it",
            "never mind",
            "nevermind",
            "don't bother",
        ),
    },
}
COURTESY = (
    "takk",
    "tack",
    "tak",
    "kiitos",
    "thanks",
    "thank you",
    "please",
    "bare",
    "nå",
    "nu",
    "nyt",
    "då",
    "så",
    "du",
    "danke",
)

# The zone a reader of each language most likely lives in, for times shown to them.
TIME_ZONES = {
    "nb": "Europe/Oslo",
    "nn": "Europe/Oslo",
    "sv": "Europe/Stockholm",
    "da": "Europe/Copenhagen",
    "fi": "Europe/Helsinki",
    "en": "Europe/Oslo",
}
TIME_FORMATS = {"sv": "%Y-%m-%d %H:%M", "en": "%d %b %Y %H:%M"}
DEFAULT_TIME_FORMAT = "%d.%m.%Y %H:%M"


def compile_phrases(by_language: dict[str, Iterable[str]]) -> re.Pattern[str]:
    """One case-insensitive pattern that finds any of the languages' phrases."""
    alternatives = [f"(?:{phrase})" for phrases in by_language.values() for phrase in phrases]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _answer_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    words = "|".join(sorted((re.escape(p) for p in phrases), key=len, reverse=True))
    polite = "|".join(re.escape(p) for p in COURTESY)
    return re.compile(
        rf"^(?:(?:ok|okay|okei|okej|nei|nej|ei|no)\s+)??(?:{words})(?:\s+(?:{polite}))*$"
    )


HANDOFF_PATTERN = compile_phrases(HANDOFF_REQUESTS)
_ANSWERS: dict[str, re.Pattern[str]] = {
    kind: _answer_pattern(p for phrases in by_language.values() for p in phrases)
    for kind, by_language in ANSWER_WORDS.items()
}
# Checked in this order: "nei, avbryt" is a cancel, "ok" a yes.
_ANSWER_ORDER = ("cancel", "retry", "yes", "no")
_NOT_WORDS = re.compile(r"[^\w\s']+")


def normalise(value: str) -> str:
    """Lower case, punctuation and emoji gone, single spaces: how answers are compared."""
    return " ".join(_NOT_WORDS.sub(" ", value.casefold()).split())


def message_text(message: Message) -> str:
    """What the user said or pressed: a button's ``value`` wins over the text."""
    if isinstance(message.value, dict):
        for key in ("value", "text", "choice"):
            pressed = message.value.get(key)
            if isinstance(pressed, str) and pressed.strip():
                return pressed.strip()
    return (message.text or "").strip()


def answer_of(message: Message) -> str | None:
    """``yes``, ``no``, ``retry`` or ``cancel`` when the message is such an answer."""
    said = normalise(message_text(message))
    if not said:
        return None
    for kind in _ANSWER_ORDER:
        if _ANSWERS[kind].match(said):
            return kind
    return None


def choices(language: str, *kinds: str) -> list[Choice]:
    """Buttons whose title is also what they send back, understood by ``answer_of``."""
    result = []
    for kind in kinds:
        title = text(f"handoff.choice.{kind}", language)
        result.append(Choice(title=title, value=title))
    return result


def format_time(moment: datetime | None, language: str) -> str:
    """``moment`` in the reader's zone and the format their language uses, or ""."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        # Without time zone data on the host, the time is shown as the system gave it.
        with contextlib.suppress(ZoneInfoNotFoundError):
            moment = moment.astimezone(ZoneInfo(TIME_ZONES.get(language, "Europe/Oslo")))
    return moment.strftime(TIME_FORMATS.get(language, DEFAULT_TIME_FORMAT))


def contact_text(dc: DialogContext, owner: str) -> str:
    """Who to turn to when kollega cannot make a ticket: the owner, the switchboard, anyone."""
    if owner:
        return text("handoff.contact_owner", dc.language, owner=owner)
    switchboard = getattr(dc.services, "switchboard", "")
    if switchboard:
        return text("handoff.contact_switchboard", dc.language, switchboard=switchboard)
    return text("handoff.contact_general", dc.language)


Step = Callable[[DialogContext, str | None], Awaitable[bool]]


class HandoffDialog(Dialog):
    """Describe, confirm, create: a service desk ticket in three turns, cancellable in each.

    ``registry`` (``bot.ticket_registry.TicketRegistry``) hands out references and lets
    the ticket status dialog know whose ticket is whose; without one, references are
    random and status questions cannot be answered.
    """

    name = "handoff"

    def __init__(self, registry: Any | None = None) -> None:
        self.registry = registry
        self._steps: dict[str, Step] = {
            "use_question": self._on_use_question,
            "describe": self._on_description,
            "confirm": self._on_confirm,
            "failed": self._on_failed,
        }

    def recognise(self, message: Message) -> dict[str, Any] | None:
        if HANDOFF_PATTERN.search(message.text or ""):
            return {"reason": "request"}
        return None

    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        dc.result.outcome = Outcome.HANDOFF
        owner = str(options.get("owner") or "")
        if dc.services.tickets is None:
            dc.say(contact_text(dc, owner))
            return False
        if not await dc.principal_name():
            dc.say(text("handoff.no_identity", dc.language) + "\n\n" + contact_text(dc, owner))
            return False
        dc.state.clear()
        dc.state.update(
            owner=owner,
            reason=str(options.get("reason") or "request"),
            transcript=_recent_turns(dc.transcript, TRANSCRIPT_TURNS),
            attempt=0,
        )
        question = " ".join(str(options.get("question") or "").split())
        if len(question) >= MIN_DESCRIPTION_CHARS:
            dc.state["question"] = question[:MAX_DESCRIPTION_CHARS]
            dc.state["step"] = "use_question"
            dc.say(
                Reply(
                    text("handoff.offer_question", dc.language, question=question),
                    choices=choices(dc.language, "yes", "no", "cancel"),
                )
            )
            return True
        return self._ask_description(dc)

    async def resume(self, dc: DialogContext) -> bool:
        dc.result.outcome = Outcome.HANDOFF
        answer = answer_of(dc.message)
        if answer == "cancel":
            return await self._cancel(dc)
        step = self._steps.get(str(dc.state.get("step")))
        if step is None:  # state from an older version of this dialog: start afresh
            return self._ask_description(dc)
        return await step(dc, answer)

    async def _on_use_question(self, dc: DialogContext, answer: str | None) -> bool:
        if answer == "yes":
            dc.state["description"] = dc.state.pop("question", "")
            return self._ask_confirmation(dc)
        if answer == "no":
            dc.state.pop("question", None)
            return self._ask_description(dc)
        # Neither: the user simply wrote the description instead.
        return await self._on_description(dc, answer)

    async def _on_description(self, dc: DialogContext, answer: str | None) -> bool:
        description = message_text(dc.message).strip()
        if answer is not None or len(description) < MIN_DESCRIPTION_CHARS:
            dc.state["step"] = "describe"
            dc.say(
                Reply(
                    text("handoff.too_short", dc.language),
                    choices=choices(dc.language, "cancel"),
                )
            )
            return True
        dc.state.pop("question", None)
        dc.state["description"] = description[:MAX_DESCRIPTION_CHARS]
        return self._ask_confirmation(dc)

    async def _on_confirm(self, dc: DialogContext, answer: str | None) -> bool:
        if answer in ("yes", "retry"):
            return await self._create(dc)
        if answer == "no":
            return await self._cancel(dc)
        dc.say(
            Reply(
                text("handoff.confirm_again", dc.language),
                choices=choices(dc.language, "yes", "no"),
            )
        )
        return True

    async def _on_failed(self, dc: DialogContext, answer: str | None) -> bool:
        if answer in ("retry", "yes"):
            return await self._create(dc)
        if answer == "no":
            return await self._cancel(dc)
        dc.say(
            Reply(
                text("handoff.retry_or_cancel", dc.language),
                choices=choices(dc.language, "retry", "cancel"),
            )
        )
        return True

    def _ask_description(self, dc: DialogContext) -> bool:
        dc.state["step"] = "describe"
        dc.say(
            Reply(
                text("handoff.ask_description", dc.language),
                choices=choices(dc.language, "cancel"),
            )
        )
        return True

    def _ask_confirmation(self, dc: DialogContext) -> bool:
        dc.state["step"] = "confirm"
        description = dc.state["description"]
        speakers = {
            "user": text("handoff.speaker.user", dc.language),
            "bot": text("handoff.speaker.bot", dc.language),
        }
        shown = [
            {"who": speakers.get(turn["from"], turn["from"]), "text": turn["text"]}
            for turn in dc.state.get("transcript", [])[-SHOWN_TURNS:]
        ]
        dc.say(
            Reply(
                text(
                    "handoff.summary",
                    dc.language,
                    summary=summary_of(description),
                    description=description,
                    transcript=shown,
                ),
                choices=choices(dc.language, "yes", "no"),
            )
        )
        return True

    async def _create(self, dc: DialogContext) -> bool:
        tickets: TicketSystem | None = dc.services.tickets
        reporter = await dc.principal_name()
        if tickets is None or not reporter:  # configuration changed under a running dialog
            dc.say(contact_text(dc, dc.state.get("owner", "")))
            dc.state.clear()
            return False
        reference = dc.state.get("reference") or await self._reserve(tickets, reporter)
        dc.state["reference"] = reference
        description = dc.state["description"]
        ticket = NewTicket(
            reference=reference,
            summary=summary_of(description),
            description=description,
            language=dc.language,
            channel=dc.message.user.channel,
            reporter=reporter,
            transcript=tuple(dc.state.get("transcript", [])),
            attempt=int(dc.state.get("attempt", 0)),
        )
        try:
            created = await tickets.create(ticket)
        except TicketSystemError as error:
            logger.warning("handoff: ticket %s not created (%s)", reference, error.reason)
            dc.state["step"] = "failed"
            dc.state["attempt"] = ticket.attempt + 1
            key = "handoff.failed_retryable" if error.retryable else "handoff.failed"
            dc.say(
                Reply(
                    text(key, dc.language, contact=dc.state.get("owner", "")),
                    choices=choices(dc.language, "retry", "cancel"),
                )
            )
            return True
        await self._confirm(created.reference, created.number)
        dc.say(
            text(
                "handoff.created",
                dc.language,
                number=created.number,
                reference=created.reference,
                by_mail=not tickets.tracks_status,
            )
        )
        dc.state.clear()
        return False

    async def _cancel(self, dc: DialogContext) -> bool:
        reference = dc.state.get("reference")
        if reference and self.registry is not None:
            try:
                await self.registry.release(reference)
            except Exception:  # the reservation only wastes a number
                logger.exception("handoff: could not release reference %s", reference)
        dc.result.outcome = Outcome.CANCELLED
        dc.say(text("handoff.cancelled", dc.language))
        dc.state.clear()
        return False

    async def _reserve(self, tickets: TicketSystem, reporter: str) -> str:
        """The registry's next reference; a random one if there is no registry (or it fails)."""
        if self.registry is not None:
            try:
                return await self.registry.reserve(tickets.name, reporter)
            except Exception:
                # The ticket matters more than its status lookup later.
                logger.exception("handoff: ticket registry failed; using a random reference")
        return format_reference(date.today(), 1000 + secrets.randbelow(9000))

    async def _confirm(self, reference: str, number: str) -> None:
        if self.registry is None:
            return
        try:
            await self.registry.confirm(reference, number)
        except Exception:
            logger.exception("handoff: could not record ticket %s in the registry", reference)


def _recent_turns(transcript: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    """The last ``count`` turns, each one line and bounded, as plain JSON for the state."""
    turns = []
    for turn in transcript[-count:]:
        said = " ".join(str(turn.get("text", "")).split())
        if said:
            turns.append({"from": str(turn.get("from", "")), "text": said[:TURN_CHARS]})
    return turns
