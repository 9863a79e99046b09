"""The matcher's public value types (re-exported by `knowledge.matching`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Decision = Literal["answer", "choose", "fallback"]


@dataclass(frozen=True, slots=True)
class Example:
    """One training phrase of an intent, in one language."""

    intent_id: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """An intent and its in-scope score in [0, 1] (higher is better)."""

    intent_id: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What the dialog layer needs to answer, offer choices, or fall back.

    decision: "answer" (one confident intent), "choose" (a close call: offer the top
    candidates), "fallback" (out of scope). confidence is the top candidate's score.
    """

    candidates: tuple[Candidate, ...]
    confidence: float
    decision: Decision


class Matcher(Protocol):
    """A built matcher; `match` is safe to call from many threads at once."""

    def match(
        self, text: str, language: str | None = None, allowed: frozenset[str] | None = None
    ) -> MatchResult: ...
