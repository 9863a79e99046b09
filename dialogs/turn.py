"""The bot's own picture of a turn: what came in and what goes out, free of any channel SDK.

Dialogs read a ``Message`` and write ``Reply`` objects; the turn glue in ``bot/`` turns a
channel's Activity into a ``Message`` and renders each ``Reply`` for that channel (an
Adaptive Card in Teams, Markdown with suggested actions elsewhere). Keeping botbuilder out
of here is what lets a move to the Microsoft 365 Agents SDK touch only ``bot/`` and
``adapters/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What a turn achieved, as the anonymous analytics event records it."""

    ANSWERED = "answered"
    CHOICES = "offered_choices"
    FALLBACK = "fallback"
    HANDOFF = "handoff"
    CONTACT = "contact_lookup"
    HELP = "help"
    WELCOME = "welcome"
    FEEDBACK = "feedback"
    PERSONAL = "personal_answer"
    CANCELLED = "cancelled"
    NOT_ALLOWED = "not_allowed"
    RATE_LIMITED = "rate_limited"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class User:
    """Who is asking, as far as the channel tells. Held in memory for one turn, never stored."""

    channel: str
    id: str = ""
    aad_object_id: str = ""
    principal_name: str = ""
    tenant_id: str = ""
    is_guest: bool = False
    name: str = ""


@dataclass(slots=True)
class Message:
    """One user message, already stripped of channel markup (Teams mentions and the like)."""

    text: str
    language: str
    user: User
    locale: str = ""
    value: dict[str, Any] | None = None  # data from a card button or quick reply


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Choice:
    """A button: ``title`` is shown, ``value`` is what the bot receives back when pressed."""

    title: str
    value: str


@dataclass(slots=True)
class Reply:
    """One message to the user. ``markdown`` is the body; the rest becomes buttons or cards."""

    markdown: str
    links: list[Link] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    feedback_for: str | None = None  # intent id whose answer may get 👍/👎
    title: str = ""
    card: dict[str, Any] | None = None  # a ready Adaptive Card for channels that show them


@dataclass(slots=True)
class TurnResult:
    """Everything a dialog produced in one turn, and what analytics may know of it."""

    replies: list[Reply] = field(default_factory=list)
    outcome: Outcome = Outcome.OTHER
    intent: str | None = None
    score: float | None = None
    domain: str | None = None
    feedback: int | None = None  # +1 / -1 when the turn was a 👍 / 👎

    def say(self, reply: Reply | str) -> Reply:
        item = Reply(reply) if isinstance(reply, str) else reply
        self.replies.append(item)
        return item
