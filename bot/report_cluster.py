"""Groups unanswered questions that say the same thing, so owners see gaps, not a long list.

"skriveren virker ikke", "Skriveren min virker ikke!" and "skrivern virker ikke" are one
gap. Character trigrams inside word boundaries survive typos, inflection and compounds
(common in Nordic languages) where word matching would not, and need no language model.

The grouping is greedy and deterministic: distinct questions, most frequent first, join the
group whose centroid is most similar (cosine of hashed trigram counts) if it is similar
enough, else start a new one. That is O(questions × groups) with small dense vectors, fast
for the few thousand unanswered questions of even a busy day, and the same input always
gives the same groups (a report must not reshuffle when re-run).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

DIMENSIONS = 4096
DEFAULT_THRESHOLD = 0.5
MAX_DISTINCT = 5000  # beyond this, the rarest distinct questions are left out of the grouping
MAX_VARIANTS = 5
_NON_WORD = re.compile(r"[^\w\[\]]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Asked:
    """One unanswered question as stored (already scrubbed), with what the event knew."""

    text: str
    language: str
    intent: str | None = None  # the closest intent, when the matcher had one
    kind: str = "fallback"  # "fallback" or "offered_choices"


@dataclass(slots=True)
class Cluster:
    """A group of similar questions: the most asked wording labels it."""

    label: str
    count: int
    language: str
    variants: list[tuple[str, int]] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)
    suggested_intent: str | None = None
    kinds: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "count": self.count,
            "language": self.language,
            "variants": [{"text": t, "count": c} for t, c in self.variants],
            "languages": self.languages,
            "suggested_intent": self.suggested_intent,
            "kinds": self.kinds,
        }


def normalise(text: str) -> str:
    """Case, punctuation and spacing folded; placeholders such as ``[phone]`` kept."""
    return " ".join(_NON_WORD.sub(" ", text.casefold()).split())


def trigram_vector(text: str) -> np.ndarray:
    """L2-normalised hashed counts of the word-bounded character trigrams of ``text``."""
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    for word in text.split():
        padded = f" {word} "
        for i in range(max(1, len(padded) - 2)):
            gram = padded[i : i + 3]
            vector[zlib.crc32(gram.encode()) % DIMENSIONS] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' trigram vectors (1.0 = same trigrams)."""
    return float(trigram_vector(normalise(a)) @ trigram_vector(normalise(b)))


def cluster_questions(asked: list[Asked], threshold: float = DEFAULT_THRESHOLD) -> list[Cluster]:
    """Group ``asked`` into clusters, largest first (ties: alphabetical label)."""
    counts: Counter[str] = Counter()
    wording: dict[str, Counter[str]] = {}
    languages: dict[str, Counter[str]] = {}
    intents: dict[str, Counter[str]] = {}
    kinds: dict[str, Counter[str]] = {}
    for item in asked:
        key = normalise(item.text)
        if not key:
            continue
        counts[key] += 1
        wording.setdefault(key, Counter())[item.text.strip()] += 1
        languages.setdefault(key, Counter())[item.language] += 1
        kinds.setdefault(key, Counter())[item.kind] += 1
        if item.intent:
            intents.setdefault(key, Counter())[item.intent] += 1
    distinct = sorted(counts, key=lambda k: (-counts[k], k))
    if len(distinct) > MAX_DISTINCT:
        logger.info(
            "grouping the %d most asked of %d distinct questions", MAX_DISTINCT, len(distinct)
        )
        distinct = distinct[:MAX_DISTINCT]

    sums = np.zeros((0, DIMENSIONS), dtype=np.float32)
    centroids = np.zeros((0, DIMENSIONS), dtype=np.float32)
    members: list[list[str]] = []
    for key in distinct:
        vector = trigram_vector(key)
        best = -1
        if len(members):
            scores = centroids @ vector
            best = int(np.argmax(scores))
            if float(scores[best]) < threshold:
                best = -1
        if best < 0:
            sums = np.vstack([sums, vector])
            centroids = np.vstack([centroids, vector])
            members.append([key])
        else:
            sums[best] += vector
            norm = float(np.linalg.norm(sums[best]))
            centroids[best] = sums[best] / norm if norm else sums[best]
            members[best].append(key)

    clusters = []
    for keys in members:
        texts: Counter[str] = Counter()
        langs: Counter[str] = Counter()
        suggested: Counter[str] = Counter()
        kind_counts: Counter[str] = Counter()
        for key in keys:
            texts.update(wording[key])
            langs.update(languages[key])
            suggested.update(intents.get(key, Counter()))
            kind_counts.update(kinds[key])
        ranked = sorted(texts.items(), key=lambda tc: (-tc[1], tc[0]))
        clusters.append(
            Cluster(
                label=ranked[0][0],
                count=sum(counts[k] for k in keys),
                language=sorted(langs.items(), key=lambda lc: (-lc[1], lc[0]))[0][0],
                variants=ranked[:MAX_VARIANTS],
                languages=dict(langs),
                suggested_intent=(
                    sorted(suggested.items(), key=lambda ic: (-ic[1], ic[0]))[0][0]
                    if suggested
                    else None
                ),
                kinds=dict(kind_counts),
            )
        )
    clusters.sort(key=lambda c: (-c.count, c.label))
    return clusters
