"""The outside world as dialogs see it: knowledge, people directory, tickets, HR.

Built once in ``app.py`` and handed to every turn. A service that is not configured is
``None``, and the dialog that needs it says so to the user instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Services:
    knowledge: Any  # knowledge.provider.KnowledgeProvider: the current knowledge and matcher
    directory: Any | None = None  # adapters.graph.GraphClient (people, managers, groups)
    tickets: Any | None = None  # adapters.tickets.TicketSystem
    leave: Any | None = None  # adapters.leave.LeaveBalanceClient
    switchboard: str = ""
