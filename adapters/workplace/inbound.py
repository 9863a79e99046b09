"""Webhook JSON from Meta turned into botbuilder Activities; nothing else leaves this module.

Two envelopes arrive at the same URL:

* Chat (Messenger Platform, also Work Chat): ``object: "page"`` with ``entry[].messaging[]``
  (or ``entry[].standby[]`` under the handover protocol). Each item has ``sender.id`` and one
  of ``message`` (text, ``quick_reply.payload``, attachments), ``postback`` or something the
  bot has no use for (``read``, ``delivery``, ``referral``, ``pass_thread_control`` …).
* Workplace only: ``entry[].changes[]`` with ``field: "mention"`` when someone @mentions the
  bot in a group post or comment. Meta's own sample subscribes to it on the page (bot)
  topic; it is accepted under ``object: "group"`` too. Other group fields (``posts``,
  ``comments``) are ignored: answering every comment in a group would be spam.

The payload is untrusted even after its signature checks out (a future field, a type we
never saw), so every lookup here tolerates any JSON shape and unknown events are skipped.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botbuilder.schema import (
    Activity,
    ActivityTypes,
    Attachment,
    ChannelAccount,
    ConversationAccount,
    RoleTypes,
)

logger = logging.getLogger(__name__)


class ConversationKind(StrEnum):
    """Where a turn came from (``conversation.conversation_type``); it decides the reply route."""

    CHAT = "personal"  # one-to-one chat: reply to recipient.id
    GROUP_CHAT = "groupChat"  # Workplace group chat: reply to recipient.thread_key
    POST = "post"  # Workplace mention in a group post: reply as a comment on the post
    COMMENT = "comment"  # Workplace mention in a comment: reply under that comment


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One event worth a bot turn: its Activity, a key to drop repeats, and its ordering key."""

    activity: Activity
    dedupe_key: tuple[str, ...] | None
    conversation_key: str


_DIGITS = re.compile(r"[0-9]{1,18}")
# Post and comment ids end up in a Graph URL path; Workplace ids are digits and underscores,
# so anything else (a slash, "..") is refused rather than sent somewhere unexpected.
OBJECT_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
_ATTACHMENT_TYPES = {
    "image": "image/*",
    "video": "video/*",
    "audio": "audio/*",
    "file": "application/octet-stream",
}


def parse_webhook(
    payload: dict[str, Any],
    *,
    channel_id: str,
    service_url: str,
    page_id: str | None = None,
    bot_name: str | None = None,
) -> list[InboundEvent]:
    """Every event in one webhook delivery that should reach the bot, in delivery order.

    ``page_id`` is the bot's own page id when known: messages from it are the bot's own and
    are dropped, as are mentions made by it. ``bot_name`` helps strip the bot's name from a
    mention when Meta sends no ``message_tags``.
    """
    obj = payload.get("object")
    if obj not in ("page", "group"):
        logger.debug("ignoring webhook for object %r", obj)
        return []
    events: list[InboundEvent] = []
    for entry in _dicts(payload.get("entry")):
        entry_id = _id(entry.get("id"))
        for field in ("messaging", "standby"):
            for item in _dicts(entry.get(field)):
                event = _chat_event(item, entry, channel_id, service_url, page_id)
                if event is not None:
                    events.append(event)
        for change in _dicts(entry.get("changes")):
            if change.get("field") != "mention":
                logger.debug("ignoring %s change %r", obj, change.get("field"))
                continue
            bot_ids = {i for i in (page_id, entry_id if obj == "page" else None) if i}
            event = _group_mention_event(
                change.get("value"), entry, bot_ids, bot_name, channel_id, service_url
            )
            if event is not None:
                events.append(event)
    return events


def _chat_event(
    item: dict[str, Any],
    entry: dict[str, Any],
    channel_id: str,
    service_url: str,
    page_id: str | None,
) -> InboundEvent | None:
    sender = _id(_get(item, "sender", "id"))
    if sender is None:
        return None
    message, postback = item.get("message"), item.get("postback")
    if isinstance(message, dict):
        if message.get("is_echo") is True or (page_id and sender == page_id):
            return None  # the bot's own message, echoed back
        mid = _id(message.get("mid"))
        text = _text(message.get("text"))
        payload = _text(_get(message, "quick_reply", "payload"))
        dedupe = ("mid", mid) if mid else None
        attachments = list(_attachments(message.get("attachments")))
    elif isinstance(postback, dict):
        if page_id and sender == page_id:
            return None
        mid = _id(postback.get("mid"))
        text = _text(postback.get("title"))
        payload = _text(postback.get("payload"))
        stamp = _id(item.get("timestamp"))
        if mid:
            dedupe = ("mid", mid)
        elif stamp:
            dedupe = ("postback", sender, stamp, payload or "")
        else:
            dedupe = None
        attachments = []
    else:
        # read, delivery, referral, optin, reaction, pass/take_thread_control …: no turn.
        logger.debug("ignoring messaging event with keys %s", sorted(item)[:8])
        return None

    value = None
    if payload is not None:
        value = {"payload": payload}
        if _is_plain(payload):
            text = payload
    thread_key = _thread_key(item)
    kind = ConversationKind.GROUP_CHAT if thread_key else ConversationKind.CHAT
    conversation_id = thread_key or sender
    activity = Activity(
        type=ActivityTypes.message,
        id=mid,
        timestamp=_timestamp(item.get("timestamp")) or _timestamp(entry.get("time")),
        channel_id=channel_id,
        service_url=service_url,
        from_property=ChannelAccount(id=sender, role=RoleTypes.user),
        recipient=ChannelAccount(
            id=_id(_get(item, "recipient", "id")) or _id(entry.get("id")) or "",
            role=RoleTypes.bot,
        ),
        conversation=ConversationAccount(
            id=conversation_id, conversation_type=kind.value, is_group=bool(thread_key)
        ),
        text=text or "",
        text_format="plain",
        value=value,
        attachments=attachments or None,
        locale=None,
        channel_data={"kind": kind.value},
    )
    return InboundEvent(activity, dedupe, f"{kind.value}:{conversation_id}")


def _thread_key(item: dict[str, Any]) -> str | None:
    """Workplace only: the group chat a message was sent in, if any.

    Replies go to ``recipient: {"thread_key": …}``. Meta has shown the key as ``thread.id``
    and as ``thread_key``; both are read.
    """
    for candidate in (
        _get(item, "thread", "id"),
        item.get("thread_key"),
        _get(item, "recipient", "thread_key"),
        _get(item, "message", "thread_key"),
    ):
        key = _id(candidate)
        if key:
            return key
    return None


def _group_mention_event(
    value: Any,
    entry: dict[str, Any],
    bot_ids: set[str],
    bot_name: str | None,
    channel_id: str,
    service_url: str,
) -> InboundEvent | None:
    """Workplace only: the bot was @mentioned in a group post or comment; reply by comment."""
    if not isinstance(value, dict):
        return None
    verb = value.get("verb")
    if verb is not None and verb != "add":
        return None  # an edit or removal of a mention must not be answered again
    comment_id, post_id = _id(value.get("comment_id")), _id(value.get("post_id"))
    item = value.get("item")
    if item == "comment" or (item is None and comment_id):
        kind, target = ConversationKind.COMMENT, comment_id
    else:
        kind, target = ConversationKind.POST, post_id
    if not target or not OBJECT_ID.fullmatch(target):
        return None
    sender = _id(_get(value, "from", "id")) or _id(value.get("sender_id"))
    if sender and sender in bot_ids:
        return None
    name = _text(_get(value, "from", "name"))
    text = strip_bot_mention(
        _text(value.get("message")) or "", value.get("message_tags"), bot_ids, bot_name
    )
    activity = Activity(
        type=ActivityTypes.message,
        id=target,
        timestamp=_timestamp(value.get("created_time")) or _timestamp(entry.get("time")),
        channel_id=channel_id,
        service_url=service_url,
        from_property=ChannelAccount(id=sender or "", name=name, role=RoleTypes.user),
        recipient=ChannelAccount(id=next(iter(sorted(bot_ids)), ""), role=RoleTypes.bot),
        conversation=ConversationAccount(id=target, conversation_type=kind.value, is_group=True),
        text=text,
        text_format="plain",
        locale=None,
        channel_data={"kind": kind.value},
    )
    return InboundEvent(activity, (kind.value, target), f"{kind.value}:{target}")


def strip_bot_mention(text: str, tags: Any, bot_ids: set[str], bot_name: str | None = None) -> str:
    """Remove the bot's @mention from a post or comment, by its tags rather than by guessing.

    Tags naming one of ``bot_ids`` are removed; when the bot's id is unknown, page tags are
    (a mention webhook goes to the mentioned bot only, and bots are pages).
    """
    tag_list = [t for t in _dicts(tags) if _text(t.get("name"))]
    mine = [t for t in tag_list if _id(t.get("id")) in bot_ids]
    if not mine and not bot_ids:
        mine = [t for t in tag_list if t.get("type") == "page"]
    for tag in sorted(mine, key=lambda t: _int(t.get("offset")) or 0, reverse=True):
        name = _text(tag.get("name")) or ""
        offset, length = _int(tag.get("offset")), _int(tag.get("length"))
        if offset is not None and length and text[offset : offset + length] == name:
            text = text[:offset] + text[offset + length :]
        elif name in text:
            text = text.replace(name, "", 1)
    if bot_name and not mine:
        text = re.sub(rf"^\s*@?{re.escape(bot_name)}\b", "", text, flags=re.IGNORECASE)
    text = re.sub(r"@(?=\s|$)", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip().lstrip(",:;").strip()


def _attachments(items: Any) -> Iterator[Attachment]:
    for item in _dicts(items):
        content_type = _ATTACHMENT_TYPES.get(item.get("type"))  # type: ignore[arg-type]
        url = _text(_get(item, "payload", "url"))
        if content_type and url:
            yield Attachment(content_type=content_type, content_url=url)


def _is_plain(payload: str) -> bool:
    """A payload is plain text unless it is a JSON object or list (structured button data)."""
    stripped = payload.strip()
    if not stripped or stripped[0] not in "[{":
        return bool(stripped)
    try:
        return not isinstance(json.loads(stripped), dict | list)
    except (ValueError, RecursionError):
        return True


def _timestamp(value: Any) -> datetime | None:
    """Meta sends milliseconds (chat), seconds (group entries) or ISO strings (group values)."""
    try:
        if isinstance(value, str) and not _DIGITS.fullmatch(value.strip()):
            for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
                try:
                    return datetime.strptime(value, fmt).astimezone(UTC)
                except ValueError:
                    continue
            return None
        number = _int(value)
        if number is None or number <= 0:
            return None
        seconds = number / 1000 if number > 100_000_000_000 else number
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _id(value: Any) -> str | None:
    """Ids arrive as strings, sometimes as numbers; anything else is no id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
