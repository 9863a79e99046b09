"""A small lexical matcher the bot uses until the measured one in ``knowledge.matching`` lands.

Character n-grams carry over inflections and compound words across the Nordic languages
without any language-specific stemming, which is enough for an honest first answer.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Example:
    intent_id: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Candidate:
    intent_id: str
    score: float


@dataclass(frozen=True, slots=True)
class MatchResult:
    candidates: tuple[Candidate, ...]
    confidence: float
    decision: str  # "answer" | "choose" | "fallback"


ANSWER_AT = 0.55
CHOOSE_AT = 0.38
CLOSE_CALL = 0.06
_WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def _features(text: str) -> Counter[str]:
    padded = f" {normalise(text)} "
    grams: Counter[str] = Counter()
    for n in (3, 4, 5):
        grams.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    grams.update(f"w:{w}" for w in padded.split())
    return grams


class InterimMatcher:
    def __init__(self, examples: Sequence[Example]) -> None:
        docs = [_features(e.text) for e in examples]
        df: Counter[str] = Counter()
        for doc in docs:
            df.update(doc.keys())
        self._vocab = {term: i for i, term in enumerate(df)}
        n = len(docs) + 1
        self._idf = np.array([math.log(n / (1 + df[t])) + 1.0 for t in self._vocab])
        self._intents = sorted({e.intent_id for e in examples})
        intent_index = {intent: i for i, intent in enumerate(self._intents)}
        self._owner = np.array([intent_index[e.intent_id] for e in examples], dtype=np.int32)
        self._matrix = np.zeros((len(docs), len(self._vocab)), dtype=np.float32)
        for row, doc in enumerate(docs):
            self._matrix[row] = self._vector(doc)

    def _vector(self, doc: Counter[str]) -> np.ndarray:
        vec = np.zeros(len(self._vocab), dtype=np.float32)
        for term, count in doc.items():
            index = self._vocab.get(term)
            if index is not None:
                vec[index] = (1 + math.log(count)) * self._idf[index]
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def match(
        self, text: str, language: str | None = None, allowed: frozenset[str] | None = None
    ) -> MatchResult:
        query = self._vector(_features(text))
        sims = self._matrix @ query
        best = np.full(len(self._intents), -1.0, dtype=np.float32)
        np.maximum.at(best, self._owner, sims)
        if allowed is not None:
            mask = np.array([i not in allowed for i in self._intents])
            best[mask] = -1.0
        order = np.argsort(-best)[:5]
        candidates = tuple(
            Candidate(self._intents[i], float(max(best[i], 0.0))) for i in order if best[i] > 0
        )
        if not candidates:
            return MatchResult((), 0.0, "fallback")
        top = candidates[0].score
        second = candidates[1].score if len(candidates) > 1 else 0.0
        if top >= ANSWER_AT and top - second >= CLOSE_CALL:
            decision = "answer"
        elif top >= CHOOSE_AT:
            decision = "choose" if len(candidates) > 1 else "answer"
        else:
            decision = "fallback"
        return MatchResult(candidates, top, decision)


def build_matcher(examples: Sequence[Example], **_: object) -> InterimMatcher:
    return InterimMatcher(examples)
