"""How a person (or a domain's owner) is shown: an Adaptive Card for Teams, Markdown elsewhere.

The card keeps to Adaptive Cards 1.5 (what Teams renders) and to what works in dark theme
and on phones: no colours, no pixel widths, text that wraps, host-styled actions. The
Markdown version carries the same facts and links for Workplace and web chat.

Names, titles and numbers come from the directory, so Markdown built from them is
escaped: a display name with ``*`` or ``[`` must not turn into formatting or a link.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from dialogs.texts import text

logger = logging.getLogger(__name__)

CARD_VERSION = "1.5"
TEAMS_CHAT_URL = "https://teams.microsoft.com/l/chat/0/0?users="
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def md(value: str) -> str:
    """``value`` as literal Markdown text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)


def tel_url(number: str) -> str:
    """``tel:`` link for a number as people write it (spaces, dashes, brackets dropped)."""
    digits = re.sub(r"[^\d+]", "", number)
    return f"tel:{digits[:1]}{digits[1:].replace('+', '')}" if digits else ""


def mail_url(address: str) -> str:
    return f"mailto:{quote(address, safe='@')}" if address else ""


def chat_url(principal_name: str) -> str:
    """Teams deep link to a 1:1 chat; a guest's ``#EXT#`` principal name must be encoded."""
    return f"{TEAMS_CHAT_URL}{quote(principal_name, safe='@')}" if principal_name else ""


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return card


def _open(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def person_facts(person: Any, language: str) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing, in card order; empty values left out."""
    facts = [
        (text("contact.department", language), person.department),
        (text("contact.office", language), person.office_location),
        (text("contact.phone", language), ", ".join(person.phones)),
        (text("contact.mail", language), person.mail),
    ]
    return [(label, value) for label, value in facts if value]


def person_actions(person: Any, language: str) -> list[tuple[str, str]]:
    """(title, url) of the call, chat and mail buttons the person's data allows."""
    actions: list[tuple[str, str]] = []
    if person.phones and (url := tel_url(person.phones[0])):
        actions.append((text("contact.call", language), url))
    if person.user_principal_name and not person.is_contact:
        actions.append((text("contact.chat", language), chat_url(person.user_principal_name)))
    if person.mail:
        actions.append((text("contact.send_mail", language), mail_url(person.mail)))
    return actions


def person_card(person: Any, language: str, intro: str = "") -> dict[str, Any]:
    """An Adaptive Card 1.5 for one ``adapters.graph.Person``."""
    body: list[dict[str, Any]] = []
    if intro:
        body.append({"type": "TextBlock", "text": intro, "wrap": True})
    body.append(
        {
            "type": "TextBlock",
            "text": person.display_name,
            "style": "heading",
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        }
    )
    if person.job_title:
        body.append(
            {
                "type": "TextBlock",
                "text": person.job_title,
                "isSubtle": True,
                "spacing": "None",
                "wrap": True,
            }
        )
    facts = person_facts(person, language)
    if facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": label, "value": v} for label, v in facts]}
        )
    actions = [_open(title, url) for title, url in person_actions(person, language)]
    return _card(body, actions)


def person_markdown(person: Any, language: str, intro: str = "") -> str:
    """The same as the card, as Markdown for channels without cards."""
    lines = [md(intro)] if intro else []
    heading = f"**{md(person.display_name)}**"
    if person.job_title:
        heading += f" – {md(person.job_title)}"
    lines.append(heading)
    lines.extend(f"{md(label)}: {md(value)}" for label, value in person_facts(person, language))
    links = [f"[{md(title)}]({url})" for title, url in person_actions(person, language)]
    if links:
        lines.append(" · ".join(links))
    return "  \n".join(lines)


def owner_card(intro: str, name: str, mail: str, language: str) -> dict[str, Any]:
    """The team that owns a knowledge domain, with a mail button."""
    body = [
        {"type": "TextBlock", "text": intro, "wrap": True},
        {
            "type": "TextBlock",
            "text": name,
            "style": "heading",
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
    ]
    if mail:
        body.append({"type": "TextBlock", "text": mail, "isSubtle": True, "wrap": True})
    actions = [_open(text("contact.send_mail", language), mail_url(mail))] if mail else []
    return _card(body, actions)


def owner_markdown(intro: str, name: str, mail: str) -> str:
    lines = [md(intro), f"**{md(name)}**"]
    if mail:
        lines.append(f"[{md(mail)}]({mail_url(mail)})")
    return "  \n".join(lines)
