"""Workplace from Meta (and Messenger Platform) channel: webhooks in, Graph API out.

One small module per job: ``webhook`` (handshake, body limit, signature), ``inbound``
(payload -> Activities), ``dedupe`` (repeated deliveries), ``outbound`` (Activity -> Send API
messages and comments), ``markdown`` (plain text and splitting), ``graph`` (HTTP with
retries) and ``adapter`` (the ``BotAdapter`` tying them together).
"""

from .adapter import DEFAULT_GRAPH_URL, WorkplaceAdapter
from .graph import RetryPolicy
from .webhook import SIGNATURE_HEADER, sign

__all__ = ["DEFAULT_GRAPH_URL", "SIGNATURE_HEADER", "RetryPolicy", "WorkplaceAdapter", "sign"]
