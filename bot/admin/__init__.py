"""The admin surface for content owners: dashboard pages, JSON API, knowledge edits.

``add_admin_routes(app, kollega)`` is all the composition root calls; see ``routes``.
"""

from __future__ import annotations

import logging

from bot.admin.routes import add_admin_routes

__all__ = ["add_admin_routes"]

logger = logging.getLogger(__name__)
