"""What the page sends, as Bot Framework Activities, and what the bot sends, as page events.

In: a JSON object ``{"text": "...", "locale": "nb-NO"}`` (``text`` may be an action code from
a button, e.g. ``ask:it.vpn``; the bot reads it like typed text). Text is cleaned of what no
person types and what breaks storage later — control characters, lone surrogates — but is
not otherwise changed: the bot answers over-long messages itself.

Out: a small, page-shaped JSON per activity rather than the whole Activity, so nothing meant
for other channels (channel data, card payloads, ids of the bot's accounts) reaches a
browser. Message text stays Markdown: the page renders it, as text, never as HTML.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationAccount,
    RoleTypes,
)

from .sessions import Session

CHANNEL_ID = "webchat"
SERVICE_URL = "urn:kollega:webchat"
BOT_ACCOUNT = ChannelAccount(id="kollega", name="kollega", role=RoleTypes.bot)
# The key under which a signed-in user's UPN rides on ``from_property.properties``; the name
# Graph and Teams use for the same thing.
PRINCIPAL_NAME_KEY = "userPrincipalName"

_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}")
# C0 controls but tab and newline, DEL, C1 controls, lone surrogates.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_MAX_ACTIONS = 20
_MAX_LABEL = 200


class BadMessage(ValueError):
    """The body is not a message the web chat accepts; the text says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    text: str
    locale: str


def clean_locale(value: Any) -> str:
    """A BCP 47-looking tag, or '' for anything else."""
    if isinstance(value, str) and len(value) <= 35 and _LOCALE.fullmatch(value):
        return value
    return ""


def clean_text(value: str) -> str:
    return _UNWANTED.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))


def parse_message(body: bytes) -> IncomingMessage:
    """The page's message, or ``BadMessage``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadMessage("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadMessage("the body must be a JSON object")
    text = data.get("text")
    if not isinstance(text, str):
        raise BadMessage("'text' (a string) is required")
    return IncomingMessage(clean_text(text), clean_locale(data.get("locale")))


def parse_session_request(body: bytes) -> str:
    """The locale from a session request body (which may be empty), or ``BadMessage``."""
    if not body.strip():
        return ""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadMessage("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadMessage("the body must be a JSON object")
    return clean_locale(data.get("locale"))


def _user_account(session: Session) -> ChannelAccount:
    who = session.identity
    if not who.signed_in:
        return ChannelAccount(id=session.user_id, role=RoleTypes.user)
    return ChannelAccount(
        id=session.user_id,
        name=who.name or None,
        aad_object_id=who.object_id,
        role="guest" if who.is_guest else RoleTypes.user,
        properties={PRINCIPAL_NAME_KEY: who.principal_name} if who.principal_name else None,
    )


def _base(session: Session, kind: str, locale: str) -> Activity:
    return Activity(
        type=kind,
        id=uuid.uuid4().hex,
        timestamp=datetime.now(UTC),
        channel_id=CHANNEL_ID,
        service_url=SERVICE_URL,
        conversation=ConversationAccount(
            id=session.id,
            conversation_type="personal",
            is_group=False,
            tenant_id=session.identity.tenant_id or None,
        ),
        from_property=_user_account(session),
        recipient=BOT_ACCOUNT,
        locale=locale or session.locale or None,
    )


def message_activity(session: Session, message: IncomingMessage) -> Activity:
    activity = _base(session, ActivityTypes.message, message.locale)
    activity.text = message.text
    return activity


def session_started_activity(session: Session) -> Activity:
    """The conversationUpdate a new session begins with: the bot answers it with a welcome."""
    activity = _base(session, ActivityTypes.conversation_update, "")
    activity.members_added = [activity.from_property]
    return activity


def _label(value: Any) -> str:
    return str(value or "")[:_MAX_LABEL]


def _actions(activity: Activity) -> list[dict[str, str]]:
    suggested = activity.suggested_actions
    actions = []
    for action in (getattr(suggested, "actions", None) or [])[:_MAX_ACTIONS]:
        kind = str(action.type or "")
        title = _label(action.title)
        if kind == "messageBack":
            code = action.text if isinstance(action.text, str) else action.value
            label = _label(action.display_text) or title
        elif kind in ("imBack", "postBack"):
            code, label = action.value, title
        elif kind == "openUrl" and isinstance(action.value, str):
            actions.append({"type": "openUrl", "label": title, "url": action.value})
            continue
        else:
            continue
        if isinstance(code, str) and code and (label or code):
            actions.append({"type": "message", "label": label or _label(code), "code": code})
    return actions


def for_page(activity: Activity) -> dict[str, Any] | None:
    """The page event for one outgoing activity, or None for what the page has no use for."""
    if activity.type == ActivityTypes.typing:
        return {"type": "typing"}
    if activity.type != ActivityTypes.message:
        return None
    text = activity.text if isinstance(activity.text, str) else ""
    if not text and isinstance(activity.summary, str):
        text = activity.summary  # a card-only reply: its summary is the text version
    actions = _actions(activity)
    if not text and not actions:
        return None
    event: dict[str, Any] = {"type": "message", "id": activity.id or uuid.uuid4().hex}
    event["text"] = text
    if activity.locale:
        event["locale"] = str(activity.locale)
    if actions:
        event["actions"] = actions
    return event
