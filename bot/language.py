"""Which language to answer in: the message's own, helped by what the conversation already tells.

Employees type short, mixed messages ("vpn funker ikke", "Teams-møte"), and Bokmål and
Danish are close enough that a detector alone flips between them on a few words. So the
detector's confidences are blended with hints: the language of the conversation's earlier
turns, then the client's locale (Teams sends ``nb-NO``), then the configured default.
lingua works offline and knows nb, nn, sv, da and fi apart.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

logger = logging.getLogger(__name__)

_LINGUA_TO_CODE = {
    Language.BOKMAL: "nb",
    Language.NYNORSK: "nn",
    Language.SWEDISH: "sv",
    Language.DANISH: "da",
    Language.FINNISH: "fi",
    Language.ENGLISH: "en",
}
_LOCALE_ALIASES = {"no": "nb", "nob": "nb", "nno": "nn", "swe": "sv", "dan": "da", "fin": "fi"}
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)

# How much a hint weighs against the detector's confidence (which sums to 1 over languages).
PREVIOUS_TURN_BONUS = 0.25
LOCALE_BONUS = 0.12
MIN_LETTERS = 4  # below this ("ok", "ja", "1") the detector is guessing: keep the hints
CONFIDENT = 0.5
# Bokmål, Nynorsk and Danish share most short words: the detector is sure of the family
# long before it is sure of the member, so the family is decided first.
FAMILIES = (("nb", "nn", "da"), ("sv",), ("fi",), ("en",))


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return (
        LanguageDetectorBuilder.from_languages(*_LINGUA_TO_CODE)
        .with_preloaded_language_models()
        .build()
    )


def warm_up() -> None:
    """Load the language models at start-up instead of in the first user's turn."""
    _detector().detect_language_of("hei")


def language_of_locale(locale: str | None, supported: tuple[str, ...]) -> str | None:
    """``nb-NO`` -> ``nb``; None for locales outside the supported languages."""
    if not locale:
        return None
    primary = locale.replace("_", "-").split("-")[0].strip().lower()
    primary = _LOCALE_ALIASES.get(primary, primary)
    return primary if primary in supported else None


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    language: str
    source: str  # "text", "conversation", "locale" or "default": useful in analytics and tests


class LanguageGuesser:
    """Decides a turn's reply language; stateless, the conversation's last language is passed in."""

    def __init__(self, default: str, supported: tuple[str, ...]) -> None:
        self.default = default
        self.supported = supported

    def choose(
        self, text: str, previous: str | None = None, locale: str | None = None
    ) -> LanguageChoice:
        locale_language = language_of_locale(locale, self.supported)
        if len(_LETTERS.findall(text)) >= MIN_LETTERS:
            scores = {
                _LINGUA_TO_CODE[c.language]: c.value
                for c in _detector().compute_language_confidence_values(text[:500])
            }
            if previous in scores:
                scores[previous] += PREVIOUS_TURN_BONUS
            if locale_language in scores:
                scores[locale_language] += LOCALE_BONUS
            family = max(FAMILIES, key=lambda members: sum(scores.get(m, 0.0) for m in members))
            if sum(scores.get(m, 0.0) for m in family) >= CONFIDENT:
                best = max(family, key=lambda m: scores.get(m, 0.0))
                if best in self.supported:
                    return LanguageChoice(best, "text")
        if previous in self.supported:
            return LanguageChoice(previous, "conversation")
        if locale_language:
            return LanguageChoice(locale_language, "locale")
        return LanguageChoice(self.default, "default")
