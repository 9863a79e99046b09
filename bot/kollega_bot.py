"""The turn glue: a botbuilder ``ActivityHandler`` that runs kollega's channel-free dialogs.

Everything botbuilder-specific about a turn happens here and in ``bot/incoming.py`` and
``bot/rendering.py``: reading the Activity, memory in a ``Storage``, sending replies, the
analytics event. A move to the Microsoft 365 Agents SDK replaces these files, not the
dialogs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount

from bot.analytics import AnalyticsRecorder, ConversationCounter, make_event
from bot.audience import EVERYTHING, AudienceResolver, note_degraded, refusal_text, refuse
from bot.incoming import (
    bot_is_mentioned,
    button_action,
    clean_text,
    is_group_conversation,
    locale_of,
    user_of,
)
from bot.language import LanguageGuesser, language_of_locale
from bot.limits import TurnLimiter
from bot.memory import ConversationMemory
from bot.privacy import scrub
from bot.rendering import TEAMS, render
from bot.report_targets import reference_of, remember_report_target
from bot.settings import SUPPORTED_LANGUAGES
from dialogs.base import DialogContext
from dialogs.help import topics_sentence
from dialogs.router import Router, is_action_code
from dialogs.services import Services
from dialogs.texts import text
from dialogs.turn import Message, Outcome, Reply, TurnResult

logger = logging.getLogger(__name__)

TRANSCRIPT_TURNS = 10
ANSWERS_REMEMBERED = 20
# Teams reactions that say something about an answer; the rest (laugh, surprised) do not.
REACTION_VOTES = {"like": 1, "heart": 1, "sad": -1, "angry": -1}
# Outcomes whose question text is personal (a name looked up, a ticket described): analytics
# keeps that the turn happened, never what was typed.
PRIVATE_OUTCOMES = frozenset(
    {Outcome.CONTACT, Outcome.PERSONAL, Outcome.HANDOFF, Outcome.NOT_ALLOWED}
)


@dataclass(slots=True)
class TurnTimings:
    """Where a turn's time went, for the load benchmark and /metrics."""

    state: float = 0.0
    dialogs: float = 0.0
    reply: float = 0.0
    analytics: float = 0.0


class KollegaBot(ActivityHandler):
    def __init__(
        self,
        *,
        services: Services,
        router: Router,
        memory: ConversationMemory,
        analytics: AnalyticsRecorder,
        languages: LanguageGuesser,
        counter: ConversationCounter,
        max_message_chars: int = 4000,
        on_turn_done: Callable[[str, TurnResult, TurnTimings], None] | None = None,
        limiter: TurnLimiter | None = None,
        audiences: AudienceResolver | None = None,
    ) -> None:
        self.services = services
        self.router = router
        self.memory = memory
        self.analytics = analytics
        self.languages = languages
        self.counter = counter
        self.max_message_chars = max_message_chars
        self.on_turn_done = on_turn_done
        self.limiter = limiter
        self.audiences = audiences

    def _client_language(self, activity: Activity) -> str:
        """The client's locale as a reply language, where there are no words to go by."""
        return language_of_locale(locale_of(activity), self.languages.supported) or (
            self.languages.default
        )

    # -- messages -------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if is_group_conversation(activity) and not bot_is_mentioned(activity):
            return  # in channels and group chats kollega speaks only when spoken to
        key = _memory_key(activity)
        if self.limiter is not None and not self.limiter.allow(str(activity.channel_id), key):
            await self._slow_down(turn_context, key)
            return
        async with self.memory.lock(key):
            await self._handle_message(turn_context, key)

    async def _slow_down(self, turn_context: TurnContext, key: str) -> None:
        """Tell a flooding user once per quiet period; drop the rest without a reply."""
        activity = turn_context.activity
        language = self._client_language(activity)
        if self.limiter is not None and self.limiter.warn(key):
            await turn_context.send_activity(
                render(Reply(text("core.slow_down", language)), str(activity.channel_id), language)
            )
        self.analytics.record(
            make_event(
                channel=str(activity.channel_id or "unknown"),
                language=language,
                outcome=str(Outcome.RATE_LIMITED),
                question=None,
            )
        )

    async def _handle_message(self, turn_context: TurnContext, key: str) -> None:
        activity = turn_context.activity
        timings = TurnTimings()
        started = time.perf_counter()
        memory, original, etag = await self.memory.load(key)
        timings.state = time.perf_counter() - started

        words = button_action(activity) or clean_text(activity)
        locale = locale_of(activity)
        # A button's code is not the user's words: keep the conversation's language.
        knowledge = self.services.knowledge
        choice = self.languages.choose(
            "" if is_action_code(words) else words,
            memory.get("language"),
            locale,
            knowledge.current.language_profile if knowledge.ready else None,
        )
        language = choice.language
        user = user_of(activity)
        access = await self.audiences.resolve(user) if self.audiences else EVERYTHING
        message = Message(
            words,
            language,
            user,
            locale,
            activity.value if isinstance(activity.value, dict) else None,
        )
        dc = DialogContext(
            message=message,
            services=self.services,
            conversation=memory,
            transcript=memory.get("transcript", []),
            principal_lookup=_principal_lookup(turn_context),
            typing_indicator=_typing(turn_context),
            allowed_domains=access.domains,
        )

        t0 = time.perf_counter()
        if not words:
            dc.say(text("core.empty", language))
        elif not access.allowed:
            refuse(dc, access)
            memory.pop("active", None)
        elif len(words) > self.max_message_chars:
            dc.say(text("core.too_long", language))
        else:
            await self.router.on_message(dc)
            note_degraded(dc, access)
        timings.dialogs = time.perf_counter() - t0

        t0 = time.perf_counter()
        channel = str(activity.channel_id or "")
        if dc.result.replies:
            sent = await turn_context.send_activities(
                [render(reply, channel, language) for reply in dc.result.replies]
            )
            _remember_answers(memory, dc.result.replies, sent)
        timings.reply = time.perf_counter() - t0

        memory["language"] = language
        if dc.result.outcome != Outcome.NOT_ALLOWED:
            _remember_turn(memory, words, dc.result)
        t0 = time.perf_counter()
        await self.memory.save(key, memory, original, etag)
        timings.state += time.perf_counter() - t0

        t0 = time.perf_counter()
        self._record(activity, language, words, dc.result)
        timings.analytics = time.perf_counter() - t0
        if self.on_turn_done is not None:
            self.on_turn_done(channel, dc.result, timings)

    def _record(self, activity: Activity, language: str, words: str, result: TurnResult) -> None:
        question = None if result.outcome in PRIVATE_OUTCOMES or result.feedback else words
        self.analytics.record(
            make_event(
                channel=str(activity.channel_id or "unknown"),
                language=language,
                outcome=str(result.outcome),
                question=question,
                intent=result.intent,
                domain=result.domain,
                score=result.score,
                feedback=result.feedback,
                conversation_hash=self.counter.hash(_memory_key(activity)),
            )
        )

    # -- Teams feedback, reactions and edits ----------------------------------------------

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        if activity.name == "message/submitAction" and value.get("actionName") == "feedback":
            await self._teams_feedback(turn_context, value.get("actionValue") or {})
            return InvokeResponse(status=200)  # Teams wants 200 and an empty body
        return await super().on_invoke_activity(turn_context)

    async def _teams_feedback(self, turn_context: TurnContext, action: dict[str, Any]) -> None:
        vote = {"like": 1, "dislike": -1}.get(str(action.get("reaction", "")).lower())
        if vote is None:
            return
        comment = _feedback_text(action.get("feedback"))
        await self._record_vote(turn_context, vote, comment)

    async def on_message_reaction_activity(self, turn_context: TurnContext) -> None:
        for reaction in turn_context.activity.reactions_added or []:
            vote = REACTION_VOTES.get(str(getattr(reaction, "type", "")).lower())
            if vote is not None:
                await self._record_vote(turn_context, vote, None)
                return
        # Removed reactions are not un-counted: votes are anonymous and cannot be traced back.

    async def _record_vote(self, turn_context: TurnContext, vote: int, comment: str | None) -> None:
        activity = turn_context.activity
        key = _memory_key(activity)
        async with self.memory.lock(key):
            memory, _, _ = await self.memory.load(key)
        intent = memory.get("answered", {}).get(str(activity.reply_to_id or "")) or memory.get(
            "last_intent"
        )
        if intent is None:
            return
        knowledge = self.services.knowledge.current
        domain = knowledge.domain_of(intent).domain if intent in knowledge.intents else None
        self.analytics.record(
            make_event(
                channel=str(activity.channel_id or "unknown"),
                language=str(memory.get("language") or self.languages.default),
                outcome=str(Outcome.FEEDBACK),
                question=comment,  # "what were you looking for?", scrubbed like any question
                intent=intent,
                domain=domain,
                feedback=vote,
            )
        )

    async def on_message_update_activity(self, turn_context: TurnContext) -> None:
        # An edited question deserves the answer to its new wording; Teams' documented edit
        # event carries no text, and then there is nothing to answer.
        activity = turn_context.activity
        event = str((activity.channel_data or {}).get("eventType", "")).lower()
        if event == "editmessage" and (activity.text or "").strip():
            await self.on_message_activity(turn_context)

    # -- conversation updates --------------------------------------------------------------

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        activity = turn_context.activity
        bot_id = getattr(activity.recipient, "id", None)
        people_added = any(m.id != bot_id for m in members_added)
        bot_added_to_group = is_group_conversation(activity) and any(
            m.id == bot_id for m in members_added
        )
        if bot_added_to_group:
            # A channel the daily report may be posted to (ops choose which); no user data.
            try:
                await remember_report_target(self.analytics.engine, reference_of(activity))
            except Exception as exc:
                logger.warning("could not remember the report channel: %s", type(exc).__name__)
        if not (people_added or bot_added_to_group):
            return
        key = _memory_key(activity)
        async with self.memory.lock(key):
            memory, original, etag = await self.memory.load(key)
            if memory.get("welcomed"):
                return
            language = self._client_language(activity)
            knowledge = self.services.knowledge.current
            access = (
                await self.audiences.resolve(user_of(activity)) if self.audiences else EVERYTHING
            )
            if access.allowed:
                welcome = text(
                    "core.welcome",
                    language,
                    topics=topics_sentence(knowledge, language, access.domains),
                )
            else:
                welcome = refusal_text(access, language)
            await turn_context.send_activity(
                render(Reply(welcome), str(activity.channel_id or ""), language)
            )
            memory["welcomed"] = True
            memory["language"] = language
            await self.memory.save(key, memory, original, etag)
            self.analytics.record(
                make_event(
                    channel=str(activity.channel_id or "unknown"),
                    language=language,
                    outcome=str(Outcome.WELCOME),
                    question=None,
                )
            )


def _remember_answers(memory: dict[str, Any], replies: list[Reply], sent: Any) -> None:
    """Which sent message answered which intent, so a 👍 on it counts for that intent."""
    answered = dict(memory.get("answered", {}))
    for reply, response in zip(replies, sent or [], strict=False):
        if reply.feedback_for and response is not None and getattr(response, "id", None):
            answered[str(response.id)] = reply.feedback_for
    memory["answered"] = dict(list(answered.items())[-ANSWERS_REMEMBERED:])


def _memory_key(activity: Activity) -> str:
    return f"{activity.channel_id}/conversations/{activity.conversation.id}"


def _remember_turn(memory: dict[str, Any], words: str, result: TurnResult) -> None:
    """Keep the last turns for a handoff transcript, scrubbed: state is stored, too."""
    transcript = list(memory.get("transcript", []))
    if words:
        transcript.append({"from": "user", "text": scrub(words[:1000])})
    for reply in result.replies:
        transcript.append({"from": "bot", "text": reply.markdown[:1000]})
    memory["transcript"] = transcript[-TRANSCRIPT_TURNS:]
    if memory.get("last_question"):
        memory["last_question"] = scrub(str(memory["last_question"])[:1000])


def _feedback_text(raw: Any) -> str | None:
    """Teams sends the optional comment as a JSON string ``{"feedbackText": …}`` or plain text."""
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            raw = json.loads(raw).get("feedbackText")
        except (ValueError, AttributeError):
            return None
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    return None


def _typing(turn_context: TurnContext) -> Callable[[], Any]:
    sent = False

    async def indicate() -> None:
        nonlocal sent
        if not sent:
            sent = True
            await turn_context.send_activity(Activity(type=ActivityTypes.typing))

    return indicate


def _principal_lookup(turn_context: TurnContext) -> Callable[[], Any]:
    async def lookup() -> str:
        activity = turn_context.activity
        if activity.channel_id != TEAMS:
            return ""
        try:
            member = await TeamsInfo.get_member(turn_context, activity.from_property.id)
        except Exception as exc:
            logger.warning("could not read the Teams member's UPN: %s", type(exc).__name__)
            return ""
        return str(getattr(member, "user_principal_name", "") or getattr(member, "email", "") or "")

    return lookup


def turn_error_handler(default_language: str) -> Callable[[TurnContext, Exception], Any]:
    """Answers the user politely when a turn fails, and logs what failed (never the text)."""

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        logger.error("turn failed: %s", type(error).__name__, exc_info=error)
        activity = turn_context.activity
        if activity.type != ActivityTypes.message:
            return
        language = language_of_locale(locale_of(activity), SUPPORTED_LANGUAGES)
        try:
            await turn_context.send_activity(text("core.error", language or default_language))
        except Exception as exc:
            logger.warning("could not tell the user about the failure: %s", type(exc).__name__)

    return on_turn_error
