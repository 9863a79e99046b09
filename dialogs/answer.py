"""Turning knowledge into replies: an intent's answer, a "did you mean", a list of domains.

The answer's language follows the reader along ``texts.language_chain`` (a Nynorsk reader
gets Bokmål before English), so a missing translation never leaves a user without an
answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from dialogs.texts import language_chain, message_keys, text
from dialogs.turn import Choice, Link, Reply

T = TypeVar("T")
MAX_CHOICES = 3
MAX_FOLLOW_UPS = 3


def pick(by_language: Mapping[str, T], language: str) -> T:
    """The entry for ``language``, or the closest one a reader of it understands."""
    for candidate in language_chain(language):
        if candidate in by_language:
            return by_language[candidate]
    return next(iter(by_language.values()))


def intent_title(knowledge: Any, intent_id: str, language: str) -> str:
    """A button label for an intent: its first example phrase, as an employee would ask it."""
    phrase = pick(knowledge.intents[intent_id].examples, language)[0]
    return phrase[:1].upper() + phrase[1:]


def domain_name(domain: str, language: str) -> str:
    key = f"domain.{domain}"
    if key in message_keys():
        return text(key, language)
    return domain.replace("_", " ").capitalize()


def owner_display(owner: str) -> str:
    """``IT-servicedesk <servicedesk@example.org>`` as Markdown with a mail link."""
    if "<" in owner and owner.endswith(">"):
        name, _, address = owner[:-1].partition("<")
        name, address = name.strip(), address.strip()
        return f"**{name}** ([{address}](mailto:{address}))" if name else f"<{address}>"
    return f"**{owner}**"


def answer_reply(
    knowledge: Any, intent_id: str, language: str, allowed: frozenset[str] | None = None
) -> Reply:
    """The answer, its links, and follow-ups the reader may see (``allowed`` domains)."""
    intent = knowledge.intents[intent_id]
    follow_ups = [
        f
        for f in intent.follow_ups
        if f in knowledge.intents and (allowed is None or knowledge.domain_of(f).domain in allowed)
    ][:MAX_FOLLOW_UPS]
    return Reply(
        markdown=pick(intent.answer, language),
        links=[Link(link.title, link.url) for link in intent.links],
        choices=[Choice(intent_title(knowledge, f, language), f"ask:{f}") for f in follow_ups],
        feedback_for=intent_id,
    )


def choices_reply(knowledge: Any, intent_ids: list[str], language: str) -> Reply:
    choices = [
        Choice(intent_title(knowledge, intent_id, language), f"ask:{intent_id}")
        for intent_id in intent_ids[:MAX_CHOICES]
    ]
    choices.append(Choice(text("core.choose.none", language), "none"))
    return Reply(markdown=text("core.choose.prompt", language), choices=choices)
