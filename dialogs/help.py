""" "Help" / "hva kan du" / "vad kan du": what the bot knows, one line per domain.

The list comes from the loaded knowledge, so a new domain shows up here the moment its
file is added, and a domain outside a user's audience never does.
"""

from __future__ import annotations

import re
from typing import Any

from dialogs.answer import domain_name, pick
from dialogs.base import Dialog, DialogContext
from dialogs.texts import text
from dialogs.turn import Message, Outcome, Reply

# Whole-message phrases per language; matched after lower-casing and trimming punctuation.
HELP_PHRASES = {
    "nb": (
        "hjelp",
        "hva kan du",
        "hva kan du hjelpe med",
        "hva kan du hjelpe meg med",
        "hva kan jeg spørre om",
        "meny",
        "hjelp meg",
    ),
    "nn": ("hjelp", "kva kan du", "kva kan du hjelpe med", "kva kan du hjelpe meg med"),
    "sv": (
        "hjälp",
        "vad kan du",
        "vad kan du hjälpa till med",
        "vad kan du hjälpa mig med",
        "vad kan jag fråga om",
        "meny",
    ),
    "da": (
        "hjælp",
        "hvad kan du",
        "hvad kan du hjælpe med",
        "hvad kan du hjælpe mig med",
        "hvad kan jeg spørge om",
        "menu",
    ),
    "fi": (
        "apua",
        "ohje",
        "ohjeet",
        "mitä osaat",
        "mitä sinä osaat",
        "missä voit auttaa",
        "mitä voin kysyä",
        "valikko",
    ),
    "en": (
        "help",
        "what can you do",
        "what can you help with",
        "what can you help me with",
        "what can i ask",
        "menu",
        "?",
    ),
}
_ALL_PHRASES = frozenset(p for phrases in HELP_PHRASES.values() for p in phrases)
# A greeting alone is not a question: greet back and say what kollega can do.
GREETINGS = frozenset(
    {
        "hei",
        "hei hei",
        "heisann",
        "hallo",
        "halla",
        "hallå",
        "god morgen",
        "god dag",
        "morn",
        "hej",
        "hej hej",
        "hejsan",
        "tjena",
        "godmorgen",
        "goddag",
        "moi",
        "moikka",
        "hei vaan",
        "terve",
        "huomenta",
        "päivää",
        "hello",
        "hi",
        "hey",
        "good morning",
    }
)
_TRIM = re.compile(r"^[\s!.?¿¡,;:]+|[\s!.,;:]+$")


def _cleaned(text_: str) -> str:
    return _TRIM.sub("", text_.casefold()).replace("?", "").strip() or text_.strip()


def is_help_request(text_: str) -> bool:
    return _cleaned(text_) in _ALL_PHRASES


def is_greeting(text_: str) -> bool:
    return _cleaned(text_).rstrip("!") in GREETINGS


def visible_domains(knowledge: Any, allowed_domains: frozenset[str] | None) -> list[str]:
    return [d for d in knowledge.domains if allowed_domains is None or d in allowed_domains]


def topics_sentence(knowledge: Any, language: str, allowed: frozenset[str] | None) -> str:
    names = [domain_name(d, language) for d in visible_domains(knowledge, allowed)]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {text('core.list_separator', language)} " + names[-1]


class HelpDialog(Dialog):
    name = "help"

    def recognise(self, message: Message) -> dict[str, Any] | None:
        if is_greeting(message.text):
            return {"greeting": True}
        return {} if is_help_request(message.text) else None

    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        knowledge = dc.services.knowledge.current
        allowed = dc.allowed_domains
        if options.get("greeting"):
            topics = topics_sentence(knowledge, dc.language, allowed)
            dc.say(Reply(text("core.welcome", dc.language, topics=topics)))
            dc.result.outcome = Outcome.WELCOME
            return False
        lines = [text("core.help.intro", dc.language), ""]
        for domain in visible_domains(knowledge, allowed):
            first_intent = knowledge.domains[domain].intents[0]
            example = pick(first_intent.examples, dc.language)[0]
            lines.append(
                "- "
                + text(
                    "core.help.domain",
                    dc.language,
                    name=domain_name(domain, dc.language),
                    example=example,
                )
            )
        lines += ["", text("core.help.outro", dc.language)]
        dc.say(Reply("\n".join(lines)))
        dc.result.outcome = Outcome.HELP
        return False
