"""Adaptive Cards (schema 1.5) for Teams, built from a channel-free ``Reply``.

Teams refuses cards the Emulator happily renders, so the cards stay inside schema 1.5
(validated in the tests), use no colours or fixed sizes (dark theme, mobile), and send
buttons back as ``messageBack`` so the chat shows the button's title, not its action code.
"""

from __future__ import annotations

import re
from typing import Any

from dialogs.texts import text
from dialogs.turn import Reply

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_ACTIONS = 6  # Teams shows at most six; more would be hidden behind "…"


def teams_markdown(markdown: str) -> str:
    """Teams' TextBlock starts a new line only at a blank line; keep the author's line breaks."""
    return re.sub(r"(?<!\n)\n(?!\n)", "\n\n", markdown)


def message_back(title: str, value: str) -> dict[str, Any]:
    return {
        "type": "Action.Submit",
        "title": title,
        "data": {"msteams": {"type": "messageBack", "displayText": title, "text": value}},
    }


def reply_card(reply: Reply, language: str, with_feedback_buttons: bool = True) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if reply.title:
        body.append({"type": "TextBlock", "text": reply.title, "weight": "Bolder", "wrap": True})
    body.append({"type": "TextBlock", "text": teams_markdown(reply.markdown), "wrap": True})
    actions: list[dict[str, Any]] = [
        {"type": "Action.OpenUrl", "title": link.title, "url": link.url} for link in reply.links
    ]
    actions += [message_back(choice.title, choice.value) for choice in reply.choices]
    feedback: list[dict[str, Any]] = []
    if reply.feedback_for and with_feedback_buttons:
        feedback = [
            message_back(text("core.feedback.up", language), f"feedback:+1:{reply.feedback_for}"),
            message_back(text("core.feedback.down", language), f"feedback:-1:{reply.feedback_for}"),
        ]
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    }
    actions = actions[: MAX_ACTIONS - len(feedback)] + feedback  # 👍/👎 are never cut
    if actions:
        card["actions"] = actions
    return card
