"""The intranet web chat channel: a chat page at ``/``, an embeddable widget, and its API.

One small module per job: ``sessions`` (signed session tokens), ``auth`` (optional Entra ID
sign-in), ``limits`` (rate limits), ``http`` (origins, headers, body limits), ``activities``
(page JSON <-> Activities) and ``adapter`` (the ``BotAdapter`` and its aiohttp handlers).
The page and widget live in ``static/``: plain JavaScript and CSS, no framework, no build.
"""

from .activities import CHANNEL_ID, PRINCIPAL_NAME_KEY
from .adapter import STATIC_DIR, WebChatAdapter
from .auth import EntraIdValidator, InvalidToken
from .sessions import Identity, SessionTokens

__all__ = [
    "CHANNEL_ID",
    "PRINCIPAL_NAME_KEY",
    "STATIC_DIR",
    "EntraIdValidator",
    "Identity",
    "InvalidToken",
    "SessionTokens",
    "WebChatAdapter",
]
