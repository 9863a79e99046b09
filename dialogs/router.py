"""Where each message goes: a button's action, the active dialog, a skill, or the knowledge.

Order matters and is the whole policy:

1. a button's action (``ask:<intent>``, ``none``, ``feedback:±1:<intent>``) — exact, so it
   never goes through the matcher;
2. the active dialog, unless the user cancels or the dialog hands the message back;
3. a skill that recognises the message (help, contact lookup, handoff, …), in list order;
4. the knowledge matcher: a confident match is answered, a close call offers choices,
   anything else goes to the fallback, which keeps the question for the owners.

Routing never branches on intent names: skills recognise themselves, and intents carry
their own answers and follow-ups.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

from dialogs.answer import answer_reply, choices_reply, domain_name, owner_display
from dialogs.base import Dialog, DialogContext
from dialogs.texts import text
from dialogs.turn import Choice, Outcome, Reply

logger = logging.getLogger(__name__)

CANCEL_WORDS = frozenset(
    {
        "avbryt",
        "avslutt",
        "glem det",
        "cancel",
        "stop",
        "stopp",
        "afbryd",
        "annuller",
        "peruuta",
        "lopeta",
        "quit",
        "exit",
        "nevermind",
        "never mind",
    }
)
_ACTION = re.compile(
    r"^(?:ask:(?P<intent>[\w.\-]+)"
    r"|(?P<none>none)"
    r"|feedback:(?P<vote>[+-]1):(?P<fb_intent>[\w.\-]+)"
    r"|(?P<handoff>handoff))$"
)


def is_action_code(text_: str) -> bool:
    """A button's code: it says nothing about the user's language or question."""
    return _ACTION.match(text_.strip()) is not None


class Router:
    """Runs one turn. Stateless: all memory is in ``dc.conversation``, saved by the caller."""

    def __init__(self, skills: Sequence[Dialog], slow: frozenset[str] = frozenset()) -> None:
        self.skills = list(skills)
        self.by_name = {d.name: d for d in self.skills}
        self.slow = slow  # dialogs that call outside systems: show "typing…" first

    async def on_message(self, dc: DialogContext) -> None:
        message_text = dc.message.text.strip()
        action = _ACTION.match(message_text)
        if action:
            await self._act(dc, action)
            return
        active = dc.conversation.get("active")
        if active and active.get("name") in self.by_name:
            if message_text.casefold().strip(" .!") in CANCEL_WORDS:
                dc.conversation.pop("active", None)
                dc.say(text("core.cancelled", dc.language))
                dc.result.outcome = Outcome.CANCELLED
                return
            dialog = self.by_name[active["name"]]
            dc.state = active.setdefault("state", {})
            if dialog.name in self.slow:
                await dc.typing()
            stay = await dialog.resume(dc)
            self._keep(dc, dialog, stay)
            if not dc.reroute:
                return
            dc.reroute = False
        for skill in self.skills:
            options = skill.recognise(dc.message)
            if options is not None:
                await self.begin(dc, skill.name, options)
                return
        await self.answer_from_knowledge(dc, message_text)

    async def begin(self, dc: DialogContext, name: str, options: dict[str, Any]) -> None:
        dialog = self.by_name[name]
        dc.state = {}
        if dialog.name in self.slow:
            await dc.typing()
        stay = await dialog.begin(dc, options)
        self._keep(dc, dialog, stay)

    def _keep(self, dc: DialogContext, dialog: Dialog, stay: bool) -> None:
        if stay:
            dc.conversation["active"] = {"name": dialog.name, "state": dc.state}
        elif dc.conversation.get("active", {}).get("name") == dialog.name:
            dc.conversation.pop("active", None)

    async def answer_from_knowledge(self, dc: DialogContext, question: str) -> None:
        knowledge = dc.services.knowledge.current
        allowed = None
        if dc.allowed_domains is not None:
            allowed = frozenset(
                i.id
                for d in dc.allowed_domains
                if d in knowledge.domains
                for i in knowledge.domains[d].intents
            )
        # Matching is CPU work (an embedding for a new question): off the event loop, so
        # other conversations' replies keep flowing meanwhile.
        match = await asyncio.to_thread(knowledge.matcher.match, question, dc.language, allowed)
        top = match.candidates[0] if match.candidates else None
        dc.result.score = match.confidence
        if match.decision == "answer" and top is not None:
            self.answer(dc, top.intent_id, top.score)
        elif match.decision == "choose" and len(match.candidates) > 1:
            ids = [c.intent_id for c in match.candidates[:3]]
            dc.say(choices_reply(knowledge, ids, dc.language))
            dc.conversation["last_question"] = question
            dc.result.outcome = Outcome.CHOICES
            dc.result.intent = top.intent_id if top else None
        else:
            self.fallback(dc, top.intent_id if top else None)

    @staticmethod
    def _visible(dc: DialogContext, intent_id: str) -> bool:
        knowledge = dc.services.knowledge.current
        if intent_id not in knowledge.intents:
            return False
        allowed = dc.allowed_domains
        return allowed is None or knowledge.domain_of(intent_id).domain in allowed

    def answer(self, dc: DialogContext, intent_id: str, score: float | None) -> None:
        knowledge = dc.services.knowledge.current
        dc.say(answer_reply(knowledge, intent_id, dc.language, dc.allowed_domains))
        dc.result.outcome = Outcome.ANSWERED
        dc.result.intent = intent_id
        dc.result.domain = knowledge.domain_of(intent_id).domain
        if score is not None:
            dc.result.score = score
        dc.conversation["last_intent"] = intent_id

    def fallback(self, dc: DialogContext, closest_intent: str | None) -> None:
        knowledge = dc.services.knowledge.current
        lines = [text("core.fallback", dc.language)]
        if closest_intent is not None:
            domain = knowledge.domain_of(closest_intent)
            dc.result.domain = domain.domain
            lines.append(
                text(
                    "core.fallback.owner",
                    dc.language,
                    domain=domain_name(domain.domain, dc.language),
                    owner=owner_display(domain.owner),
                )
            )
        lines.append(text("core.fallback.rephrase", dc.language))
        choices = []
        if "handoff" in self.by_name:
            choices.append(Choice(text("core.offer.handoff", dc.language), "handoff"))
        dc.say(Reply("\n\n".join(lines), choices=choices))
        dc.result.outcome = Outcome.FALLBACK
        dc.conversation["last_question"] = dc.message.text

    async def _act(self, dc: DialogContext, action: re.Match[str]) -> None:
        dc.conversation.pop("active", None)  # a button press ends whatever was going on
        if action["intent"]:
            if self._visible(dc, action["intent"]):
                self.answer(dc, action["intent"], None)
            else:  # an old button after a knowledge change, or outside the user's audience
                self.fallback(dc, None)
        elif action["none"]:
            self.fallback(dc, None)
            dc.result.intent = None
        elif action["vote"]:
            await self.feedback(dc, action["fb_intent"], int(action["vote"]))
        elif action["handoff"] and "handoff" in self.by_name:
            await self.begin(dc, "handoff", self._handoff_options(dc, "fallback"))
        else:
            self.fallback(dc, None)

    async def feedback(self, dc: DialogContext, intent_id: str, vote: int) -> None:
        dc.result.outcome = Outcome.FEEDBACK
        dc.result.intent = intent_id
        dc.result.feedback = vote
        knowledge = dc.services.knowledge.current
        if intent_id in knowledge.intents:
            dc.result.domain = knowledge.domain_of(intent_id).domain
        if vote > 0:
            dc.say(text("core.feedback.thanks", dc.language))
            return
        choices = []
        if "handoff" in self.by_name:
            choices.append(Choice(text("core.offer.handoff", dc.language), "handoff"))
        dc.say(Reply(text("core.feedback.sorry", dc.language), choices=choices))

    def _handoff_options(self, dc: DialogContext, reason: str) -> dict[str, Any]:
        options: dict[str, Any] = {"reason": reason}
        question = dc.conversation.get("last_question")
        if question:
            options["question"] = question
        return options
