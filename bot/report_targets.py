"""Where the daily report is posted: Teams channels captured when kollega was added to them.

A bot can post into a Teams channel only with a conversation reference it received from
Teams (service URL, conversation id, tenant). The turn glue calls
:func:`remember_report_target` when the bot is added to a team; the reference is stored in
``report_targets`` with the user who added the bot stripped out, since only the channel is
needed and the table must hold no personal data.

Capturing is not consent to receive the report: any team may install the app, and the
report is for content owners. ``python -m bot.report`` therefore posts only to channels
listed in ``KOLLEGA_REPORT_TEAMS_CONVERSATION`` (``*`` for every captured one);
``GET /api/admin/report-targets`` shows what was captured so ops can copy the id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, ConversationReference, TextFormatTypes
from sqlalchemy import Column, DateTime, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import metadata

logger = logging.getLogger(__name__)

MAX_TEAMS_TEXT = 20_000  # Teams refuses messages over about 28 KB; stay well below

report_targets = Table(
    "report_targets",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256 of channel id + conversation id
    Column("conversation_id", Text, nullable=False),
    Column("reference", Text, nullable=False),  # ConversationReference JSON, no user
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


class NotAChannel(ValueError):
    """The reference is a personal or group chat: reports go to team channels only."""


def clean_reference(reference: dict[str, Any]) -> dict[str, Any]:
    """The parts of a (serialized, camelCase) reference needed to post, and nothing personal.

    The user who added the bot and the activity id are dropped; a thread's
    ``;messageid=…`` suffix is cut so the report starts a new post in the channel.
    """
    conversation = reference.get("conversation") or {}
    kind = str(conversation.get("conversationType") or "").lower()
    if kind != "channel":
        raise NotAChannel(f"report targets must be Teams channels, not {kind or 'unknown'!r}")
    conversation_id = str(conversation.get("id") or "").split(";", 1)[0]
    service_url = str(reference.get("serviceUrl") or "")
    if not conversation_id or not service_url.startswith(("https://", "http://")):
        raise ValueError("the reference has no conversation id or service URL")
    bot = reference.get("bot") or {}
    cleaned: dict[str, Any] = {
        "channelId": str(reference.get("channelId") or "msteams"),
        "serviceUrl": service_url,
        "conversation": {
            "id": conversation_id,
            "conversationType": "channel",
            "isGroup": True,
        },
        "bot": {"id": str(bot.get("id") or ""), "name": str(bot.get("name") or "")},
    }
    if conversation.get("tenantId"):
        cleaned["conversation"]["tenantId"] = str(conversation["tenantId"])
    if conversation.get("name"):
        cleaned["conversation"]["name"] = str(conversation["name"])
    return cleaned


def reference_of(activity: Activity) -> dict[str, Any]:
    """The serialized conversation reference of an incoming activity (for the turn glue)."""
    return TurnContext.get_conversation_reference(activity).serialize()


def _key(reference: dict[str, Any]) -> str:
    raw = f"{reference['channelId']}\n{reference['conversation']['id']}"
    return hashlib.sha256(raw.encode()).hexdigest()


async def remember_report_target(engine: AsyncEngine, reference: dict[str, Any]) -> bool:
    """Store (or refresh) a channel's reference; False when it is not a channel.

    Called from the turn glue when the bot is added to a team; never raises for a
    personal chat, so the glue needs no checks of its own.
    """
    try:
        cleaned = clean_reference(reference)
    except ValueError as exc:
        logger.info("not remembered as a report target: %s", exc)
        return False
    key = _key(cleaned)
    row = {
        "key": key,
        "conversation_id": cleaned["conversation"]["id"],
        "reference": json.dumps(cleaned, sort_keys=True),
        "updated_at": datetime.now(UTC),
    }
    async with engine.begin() as conn:  # delete + insert: one portable upsert
        await conn.execute(delete(report_targets).where(report_targets.c.key == key))
        await conn.execute(insert(report_targets), [row])
    logger.info("remembered a Teams channel as a possible report target")
    return True


async def load_report_targets(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every captured channel reference, oldest update first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(report_targets.c.reference).order_by(report_targets.c.updated_at)
            )
        ).all()
    return [json.loads(row.reference) for row in rows]


async def forget_report_target(engine: AsyncEngine, conversation_id: str) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            delete(report_targets).where(report_targets.c.conversation_id == conversation_id)
        )
    return int(result.rowcount or 0)


def chosen_targets(targets: list[dict[str, Any]], wanted: str) -> list[dict[str, Any]]:
    """The captured targets named by ``KOLLEGA_REPORT_TEAMS_CONVERSATION`` (comma list, ``*``)."""
    names = {part.strip() for part in wanted.split(",") if part.strip()}
    if "*" in names:
        return targets
    return [t for t in targets if t["conversation"]["id"] in names]


async def post_report_to_teams(
    adapter: Any, app_id: str, reference_dict: dict[str, Any], markdown: str
) -> str | None:
    """Post ``markdown`` as a new message in the channel; returns the message id.

    ``adapter`` is botbuilder's ``CloudAdapter``; ``continue_conversation`` runs a proactive
    turn whose errors would otherwise go to the adapter's error handler and vanish, so a
    failed send is caught in the callback and raised here for the caller to report.
    """
    reference = ConversationReference().deserialize(clean_reference(reference_dict))
    if len(markdown) > MAX_TEAMS_TEXT:
        markdown = markdown[:MAX_TEAMS_TEXT] + "\n\n…"
    sent: dict[str, Any] = {}

    async def send(turn_context: TurnContext) -> None:
        # The continuation activity gets a made-up id, which would make the post a reply
        # to a message that does not exist; without it the report starts a new post.
        turn_context.activity.id = None
        try:
            response = await turn_context.send_activity(
                Activity(
                    type=ActivityTypes.message,
                    text=markdown,
                    text_format=TextFormatTypes.markdown,
                )
            )
            sent["id"] = getattr(response, "id", None)
        except Exception as exc:
            sent["error"] = exc

    await adapter.continue_conversation(reference, send, app_id or None)
    if "error" in sent:
        raise RuntimeError(
            f"posting the report to Teams failed: {type(sent['error']).__name__}"
        ) from sent["error"]
    return sent.get("id")
