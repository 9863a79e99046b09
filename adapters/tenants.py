"""Which Microsoft 365 tenants may talk to kollega (``KOLLEGA_ALLOWED_TENANTS``).

A multi-tenant Azure Bot can be added to Teams in any organisation that finds its app id;
an activity's valid token proves only that Microsoft's channel sent it, not from which
organisation. So ``adapters.bot_framework`` refuses, after authentication and before the
bot runs, every activity whose tenant is not listed: ``403`` (authenticated, but not
served here), never a turn.

Teams puts the tenant in ``conversation.tenantId``, in ``channelData.tenant.id`` or in
both (tests/payloads/README.md). Every tenant id the activity names must be allowed: an
activity that names two different tenants is refused, not judged by the friendlier one.
Note that botbuilder-python maps ``ConversationAccount.tenant_id`` to the JSON key
``tenantID``, so Teams' ``tenantId`` lands in ``additional_properties``; both are read.

Channels that never carry a tenant (Direct Line web chat through Azure, the Emulator) are
refused while a tenant list is set, unless listed in ``tenantless_channels``.

Pure functions, no botbuilder import: they take a deserialized ``Activity`` or the raw
JSON dict alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

REFUSED_STATUS = 403
TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_tenants(value: str | Iterable[str]) -> frozenset[str]:
    """``KOLLEGA_ALLOWED_TENANTS`` (comma- or space-separated GUIDs) as a lower-case set.

    Raises ``ValueError`` naming the bad entry, so a typo stops the bot at start-up instead
    of silently refusing a whole organisation.
    """
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    tenants = set()
    for item in items:
        tenant = item.strip().lower()
        if not tenant:
            continue
        if not TENANT_ID.match(tenant):
            raise ValueError(f"{item!r} is not a tenant id (a GUID such as 72f988bf-…)")
        tenants.add(tenant)
    return frozenset(tenants)


def _get(obj: Any, *names: str) -> Any:
    """The first of ``names`` present on a dict or an object (or its additional_properties)."""
    if obj is None:
        return None
    for name in names:
        if isinstance(obj, dict):
            value = obj.get(name)
        else:
            value = getattr(obj, name, None)
            if value is None:
                value = (getattr(obj, "additional_properties", None) or {}).get(name)
        if value is not None:
            return value
    return None


def tenants_of(activity: Any) -> set[str]:
    """Every tenant id the activity names (lower case); empty when it names none."""
    found: set[str] = set()
    conversation = _get(activity, "conversation")
    for value in (
        _get(conversation, "tenant_id", "tenantId", "tenantID"),
        _get(_get(_get(activity, "channel_data", "channelData"), "tenant"), "id"),
    ):
        if isinstance(value, str) and value.strip():
            found.add(value.strip().lower())
    return found


def tenant_allowed(
    activity: Any,
    allowed: frozenset[str],
    tenantless_channels: frozenset[str] = frozenset(),
) -> bool:
    """Whether kollega serves this activity's tenant. An empty ``allowed`` serves everyone.

    ``allowed`` must be lower case (``parse_tenants`` makes it so).
    """
    if not allowed:
        return True
    tenants = tenants_of(activity)
    if not tenants:
        channel = str(_get(activity, "channel_id", "channelId") or "").lower()
        return channel in tenantless_channels
    return tenants <= allowed
