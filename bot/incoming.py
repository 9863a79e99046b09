"""Reads what a user said out of a Bot Framework Activity, with the channels' quirks handled.

The quirks come from real captures (tests/payloads/README.md): a Teams mention may or may
not appear as ``<at>…</at>`` in the text, so mentions are stripped by their entities; the
tenant sits in ``conversation.tenantId``, ``channelData.tenant.id`` or both; conversation
types differ in case between sources.
"""

from __future__ import annotations

import html
import re
from typing import Any

from botbuilder.schema import Activity

from bot.audience import role_is_guest
from dialogs.turn import User

GROUP_TYPES = frozenset({"channel", "groupchat"})
_SPACES = re.compile(r"\s+")
_AT_TAG = re.compile(r"</?at>", re.IGNORECASE)


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if obj is None:
            return None
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def is_group_conversation(activity: Activity) -> bool:
    conversation = activity.conversation
    kind = str(getattr(conversation, "conversation_type", "") or "").lower()
    return kind in GROUP_TYPES or bool(getattr(conversation, "is_group", False))


def mentions_of(activity: Activity) -> list[tuple[str, str]]:
    """(mentioned id, mention text) for each mention entity."""
    found = []
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if (getattr(entity, "type", None) or props.get("type")) != "mention":
            continue
        mentioned = props.get("mentioned") or {}
        found.append((str(mentioned.get("id", "")), str(props.get("text", "") or "")))
    return found


def bot_is_mentioned(activity: Activity) -> bool:
    bot_id = getattr(activity.recipient, "id", None)
    return any(mentioned == bot_id for mentioned, _ in mentions_of(activity))


def clean_text(activity: Activity) -> str:
    """The user's words: the bot's mention removed (tagged or not), whitespace folded."""
    text = activity.text or ""
    bot_id = getattr(activity.recipient, "id", None)
    bot_name = getattr(activity.recipient, "name", None) or ""
    for mentioned, mention_text in mentions_of(activity):
        if mentioned != bot_id:
            continue
        if mention_text and mention_text in text:
            text = text.replace(mention_text, " ")
        else:
            name = _AT_TAG.sub("", mention_text) or bot_name
            if name and text.lstrip().startswith(name):
                text = text.lstrip()[len(name) :]
    return _SPACES.sub(" ", html.unescape(text)).strip()


def locale_of(activity: Activity) -> str:
    if activity.locale:
        return str(activity.locale)
    for entity in activity.entities or []:
        props = getattr(entity, "additional_properties", {}) or {}
        if getattr(entity, "type", None) == "clientInfo" and props.get("locale"):
            return str(props["locale"])
    return ""


def tenant_of(activity: Activity) -> str:
    # botbuilder maps ConversationAccount.tenant_id to "tenantID", so Teams' "tenantId" lands
    # in additional_properties.
    conversation = activity.conversation
    extra = getattr(conversation, "additional_properties", None) or {}
    return str(
        getattr(conversation, "tenant_id", None)
        or extra.get("tenantId")
        or _get(activity.channel_data, "tenant", "id")
        or ""
    )


# Only kollega's own web chat adapter vouches for a user's identity on channel "webchat"
# (Direct Line clients also call themselves "webchat" and set ``from`` as they like).
KOLLEGA_WEBCHAT_SERVICE_URL = "urn:kollega:webchat"


def _principal_name(activity: Activity) -> str:
    if activity.service_url != KOLLEGA_WEBCHAT_SERVICE_URL:
        return ""
    props = getattr(activity.from_property, "properties", None)
    return str(props.get("userPrincipalName", "")) if isinstance(props, dict) else ""


def user_of(activity: Activity) -> User:
    sender = activity.from_property
    return User(
        principal_name=_principal_name(activity),
        channel=str(activity.channel_id or ""),
        id=str(getattr(sender, "id", "") or ""),
        aad_object_id=str(getattr(sender, "aad_object_id", "") or ""),
        tenant_id=tenant_of(activity),
        is_guest=role_is_guest(sender),
        name=str(getattr(sender, "name", "") or ""),
    )


def button_action(activity: Activity) -> str:
    """An action code sent as a card's data instead of text (Action.Submit without messageBack)."""
    value = activity.value
    if isinstance(value, dict):
        code = value.get("kollega") or _get(value, "msteams", "text")
        if isinstance(code, str):
            return code
    return ""
