"""A bot's outgoing Activity rendered as Send API messages or Workplace comments.

What the bot uses and what Meta shows:

* ``text`` (Markdown) -> plain text (see ``markdown``), split at 2,000 UTF-16 units per chat
  message on paragraph, line or word boundaries.
* ``suggested_actions`` -> ``quick_replies`` (at most 13, titles cut at 20 units, the action
  value as payload so it comes back as the next turn's text); ``openUrl`` actions cannot be
  quick replies and become ``title: url`` lines.
* a HeroCard -> a button template (text at most 640 units, at most 3 buttons: ``openUrl`` as
  ``web_url``, the rest as ``postback``); buttons beyond three become text lines or quick
  replies, so no link is lost.
* Workplace comments (answers to a group mention) have no buttons: everything becomes text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botbuilder.schema import ActionTypes, Activity, ConversationAccount

from .inbound import OBJECT_ID, ConversationKind
from .markdown import split_text, to_plain_text, truncate, utf16_len

logger = logging.getLogger(__name__)

HERO_CARD = "application/vnd.microsoft.card.hero"
CHAT_TEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 640
COMMENT_TEXT_LIMIT = 8000  # far below what Workplace accepts; long comments read badly
QUICK_REPLY_LIMIT = 13
TEMPLATE_BUTTON_LIMIT = 3
TITLE_LIMIT = 20
PAYLOAD_LIMIT = 1000
_URL_ACTIONS = {ActionTypes.open_url.value, "openUrl"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a reply goes: a person, a Workplace group chat, or a Workplace post/comment."""

    kind: ConversationKind
    id: str

    @property
    def is_chat(self) -> bool:
        return self.kind in (ConversationKind.CHAT, ConversationKind.GROUP_CHAT)

    def recipient(self) -> dict[str, str]:
        """The Send API ``recipient``: ``thread_key`` for a Workplace group chat, else ``id``."""
        if self.kind is ConversationKind.GROUP_CHAT:
            return {"thread_key": self.id}
        return {"id": self.id}


def target_of(conversation: ConversationAccount | None) -> Target | None:
    """The reply route stored in the conversation of the turn (or of a saved reference)."""
    if conversation is None or not conversation.id:
        return None
    try:
        kind = ConversationKind(conversation.conversation_type or ConversationKind.CHAT.value)
    except ValueError:
        return None
    target = Target(kind, str(conversation.id))
    if not target.is_chat and not OBJECT_ID.fullmatch(target.id):
        return None  # the id goes into a URL path
    return target


@dataclass(slots=True)
class _Parts:
    """An activity taken apart into what every channel shape is built from."""

    text: str = ""
    lines: list[str] = field(default_factory=list)  # extra "title: url" lines
    choices: list[tuple[str, str]] = field(default_factory=list)  # (title, payload)
    cards: list[tuple[str, list[dict[str, str]]]] = field(default_factory=list)


def chat_messages(activity: Activity) -> list[dict[str, Any]]:
    """The Send API ``message`` objects for one activity, in order; quick replies on the last."""
    parts = _parts(activity)
    lines, choices = list(parts.lines), list(parts.choices)
    plain_cards: list[str] = []
    card_messages: list[dict[str, Any]] = []
    for card_text, buttons in parts.cards:
        if not buttons:
            plain_cards.append(card_text)
            continue
        for extra in buttons[TEMPLATE_BUTTON_LIMIT:]:
            if extra["type"] == "web_url":
                lines.append(f"{extra['title']}: {extra['url']}")
            else:
                choices.append((extra["title"], extra["payload"]))
        template_text = card_text
        if not card_text or utf16_len(card_text) > BUTTON_TEXT_LIMIT:
            # Too long for a template: the full text goes first, the buttons under its heading.
            card_messages.extend({"text": c} for c in split_text(card_text, CHAT_TEXT_LIMIT))
            first_line = next((ln for ln in card_text.splitlines() if ln.strip()), "")
            template_text = truncate(first_line, BUTTON_TEXT_LIMIT) or "🔗"
        card_messages.append(
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": template_text,
                        "buttons": buttons[:TEMPLATE_BUTTON_LIMIT],
                    },
                }
            }
        )
    body = "\n\n".join(p for p in (parts.text, *plain_cards, "\n".join(lines)) if p)
    messages = [{"text": chunk} for chunk in split_text(body, CHAT_TEXT_LIMIT)] + card_messages
    quick = [
        {
            "content_type": "text",
            "title": truncate(title, TITLE_LIMIT),
            "payload": payload[:PAYLOAD_LIMIT],
        }
        for title, payload in choices[:QUICK_REPLY_LIMIT]
    ]
    if quick:
        if not messages:
            messages.append({"text": "…"})  # Meta wants text or an attachment with quick replies
        messages[-1]["quick_replies"] = quick
    return messages


def comment_messages(activity: Activity) -> list[str]:
    """Comment texts for one activity: a Workplace comment shows no buttons, so all is text."""
    parts = _parts(activity)
    blocks = [parts.text] if parts.text else []
    for card_text, buttons in parts.cards:
        links = [
            f"{b['title']}: {b['url']}" if b["type"] == "web_url" else f"• {b['title']}"
            for b in buttons
        ]
        blocks.append("\n".join(p for p in (card_text, *links) if p))
    if parts.lines:
        blocks.append("\n".join(parts.lines))
    if parts.choices:
        blocks.append("\n".join(f"• {title}" for title, _ in parts.choices))
    return split_text("\n\n".join(b for b in blocks if b), COMMENT_TEXT_LIMIT)


def _parts(activity: Activity) -> _Parts:
    parts = _Parts()
    text = activity.text or ""
    parts.text = text.strip() if activity.text_format == "plain" else to_plain_text(text)
    actions = activity.suggested_actions.actions if activity.suggested_actions else None
    for action in actions or []:
        title, kind = _action_title(action), _field(action, "type")
        if kind in _URL_ACTIONS:
            url = _text(_field(action, "value"))
            if url:
                parts.lines.append(f"{title}: {url}" if title and title != url else url)
        elif title:
            parts.choices.append((title, _payload(action) or title))
    for attachment in activity.attachments or []:
        content_type = _field(attachment, "content_type") or _field(attachment, "contentType")
        if content_type == HERO_CARD:
            parts.cards.append(_hero_card(_field(attachment, "content")))
            continue
        url = _text(_field(attachment, "content_url") or _field(attachment, "contentUrl"))
        if url:
            name = _text(_field(attachment, "name"))
            parts.lines.append(f"{name}: {url}" if name else url)
        else:
            logger.debug("workplace shows no %s attachment; skipped", content_type)
    return parts


def _hero_card(card: Any) -> tuple[str, list[dict[str, str]]]:
    """A HeroCard's text (title, subtitle, text) and its buttons in Send API shape."""
    heading = [_text(_field(card, name)) for name in ("title", "subtitle")]
    body = _text(_field(card, "text"))
    pieces = [p.strip() for p in heading if p and p.strip()]
    if body:
        pieces.append(to_plain_text(body))
    buttons: list[dict[str, str]] = []
    for action in _field(card, "buttons") or []:
        title = _action_title(action)
        if _field(action, "type") in _URL_ACTIONS:
            url = _text(_field(action, "value"))
            if url:
                buttons.append(
                    {"type": "web_url", "url": url, "title": truncate(title or url, TITLE_LIMIT)}
                )
        elif title:
            buttons.append(
                {
                    "type": "postback",
                    "title": truncate(title, TITLE_LIMIT),
                    "payload": (_payload(action) or title)[:PAYLOAD_LIMIT],
                }
            )
    return "\n".join(pieces), buttons


def _action_title(action: Any) -> str:
    title = _text(_field(action, "title")) or _text(_field(action, "display_text"))
    return (title or _text(_field(action, "value")) or "").strip()


def _payload(action: Any) -> str | None:
    """What the user's tap sends back: the action's value (JSON-encoded if not a string)."""
    value = _field(action, "value")
    if value is None:
        value = _field(action, "text")
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _field(obj: Any, name: str) -> Any:
    """Read a field from a botbuilder model or from the plain dict a bot may have built."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
