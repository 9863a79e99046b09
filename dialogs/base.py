"""How a conversation that spans turns is written: a ``Dialog`` with ``begin`` and ``resume``.

The router keeps at most one dialog active per conversation. Its state is a plain JSON
dict the turn glue persists through botbuilder's ``Storage`` between turns, so any
replica can take the next turn. A dialog returns ``True`` while it waits for the user's
next message and ``False`` when it is done.

Skills that start from what the user typed ("who is Kari Nordmann", "create a ticket")
also say how they are recognised (``recognise``), so the router asks a list of skills
instead of branching on intent names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dialogs.turn import Message, Reply, TurnResult


@dataclass(slots=True)
class DialogContext:
    """One turn as a dialog sees it.

    ``state`` is the active dialog's own JSON-serialisable dict (empty when it begins).
    ``services`` is the ``dialogs.services.Services`` bundle; typed loosely here to keep
    this module free of import cycles. ``transcript`` holds the conversation's last turns
    ``{"from": "user"|"bot", "text": ...}`` for handing over to a human.
    """

    message: Message
    services: Any
    result: TurnResult = field(default_factory=TurnResult)
    state: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, str]] = field(default_factory=list)
    conversation: dict[str, Any] = field(default_factory=dict)  # conversation-wide memory
    # Asks the channel for the user's principal name (e-mail/UPN) only when a dialog needs
    # it (a ticket, a leave balance): in Teams that is a Bot Connector call, so not per turn.
    principal_lookup: Callable[[], Awaitable[str]] | None = None
    # Shows "typing…" before slow work (a Graph lookup, a ticket); a no-op where unsupported.
    typing_indicator: Callable[[], Awaitable[None]] | None = None
    # Set by an active dialog that finds the message is not for it (a new question instead
    # of a pick): the router then handles the message as if no dialog were active.
    reroute: bool = False
    # Domains this user's audience may see; None means all. Matching and "help" obey it.
    allowed_domains: frozenset[str] | None = None

    async def typing(self) -> None:
        if self.typing_indicator is not None:
            await self.typing_indicator()

    async def principal_name(self) -> str:
        """The user's principal name, or "" where the channel cannot tell."""
        if self.message.user.principal_name:
            return self.message.user.principal_name
        if self.principal_lookup is None:
            return ""
        return await self.principal_lookup()

    @property
    def language(self) -> str:
        return self.message.language

    def say(self, reply: Reply | str) -> Reply:
        return self.result.say(reply)


class Dialog(ABC):
    """A conversation that may span turns. Instances are stateless and shared by all users."""

    name: ClassVar[str]

    @abstractmethod
    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        """Start; return True to stay active and receive the user's next message."""

    async def resume(self, dc: DialogContext) -> bool:
        """The user's next message while this dialog is active; return True to stay active."""
        return False

    def recognise(self, message: Message) -> dict[str, Any] | None:
        """Options to ``begin`` with when the message asks for this skill, else None.

        Most dialogs are only started by other dialogs and keep this default.
        """
        return None
