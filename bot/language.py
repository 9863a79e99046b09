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

from knowledge.language_profile import LanguageProfile

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
_WORDS = re.compile(r"[^\W\d_]+", re.UNICODE)
# Markup, links, addresses and code say nothing about the writer's language, and their
# English-looking words ("src", "onerror", "window") outvoted "hva er html" after a tag.
_NOT_PROSE = re.compile(r"<[^<>]{0,300}>|https?://\S+|\S+@\S+|`[^`]{0,300}`")

# Short function words that belong to one language only. The detector needs a sentence to
# tell Swedish "vad kan du" from Danish "hvad kan du"; a person needs one word.
MARKER_WORDS = {
    "sv": frozenset(
        [
            "vad",
            "jag",
            "är",
            "och",
            "inte",
            "hur",
            "varför",
            "någon",
            "något",
            "mina",
            "också",
            "hjälp",
            "ärende",
            "lösenord",
            "fungerar",
        ]
    ),
    "da": frozenset(
        [
            "hvad",
            "mig",
            "dig",
            "nej",
            "gerne",
            "hvorfor",
            "også",
            "hjælp",
            "adgangskode",
            "virker",
            "kodeord",
        ]
    ),
    "nb": frozenset(["hva", "meg", "deg", "hvorfor", "også", "hjelp", "passord", "funker"]),
    "nn": frozenset(["kva", "eg", "ikkje", "korleis", "kvifor", "òg"]),
    "fi": frozenset(
        [
            "mitä",
            "miten",
            "kuinka",
            "minun",
            "en",
            "ei",
            "ja",
            "salasana",
            "apua",
            "moi",
            "moikka",
            "terve",
            "huomenta",
        ]
    ),
    "en": frozenset(
        ["what", "how", "the", "my", "is", "and", "not", "help", "password", "hello", "hi"]
    ),
}
MARKER_BONUS = 0.3
# Share of the knowledge folder's own language profile (knowledge.language_profile) in
# the blend with the general detector, where the folder has several languages; swept on
# the sample and nordic test questions (bench/README.md), per detector model.
PROFILE_WEIGHT = {"compact": 0.5, "accurate": 0.3}

# How much a hint weighs against the detector's confidence (which sums to 1 over languages).
PREVIOUS_TURN_BONUS = 0.25
LOCALE_BONUS = 0.12
MIN_LETTERS = 4  # below this ("ok", "ja", "1") the detector is guessing: keep the hints
CLEAR_LEAD = 0.1  # over the best language of another family
SINGLE_WORD_LEAD = 0.3
# Inside one family, the conversation's or client's language wins unless clearly beaten.
FAMILY_HINT_LEAD = 0.3
# Bokmål, Nynorsk and Danish share most short words: the detector is sure of the family
# long before it is sure of the member, so the lead is measured against other families.
FAMILIES = (("nb", "nn", "da"), ("sv",), ("fi",), ("en",))


@lru_cache(maxsize=2)
def _detector(compact: bool = False) -> LanguageDetector:
    # Compact (trigram-only) models take 15 MB instead of 233 MB. Alone they pick the right
    # language less often (0.926 against 0.996 on the sample and nordic test phrases with
    # the client's locale as hint); blended with the folder's own profile they reach 0.988
    # and beat accurate alone when the locale is missing or wrong (0.963 vs 0.940). So
    # compact is the default; accurate (+ profile: 0.996) is for ops with memory to spare.
    builder = LanguageDetectorBuilder.from_languages(*_LINGUA_TO_CODE)
    if compact:
        builder = builder.with_low_accuracy_mode()
    return builder.with_preloaded_language_models().build()


def warm_up(compact: bool = False) -> None:
    """Load the language models at start-up instead of in the first user's turn."""
    _detector(compact).detect_language_of("hei")


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

    def __init__(self, default: str, supported: tuple[str, ...], compact: bool = False) -> None:
        self.default = default
        self.supported = supported
        self.compact = compact

    @staticmethod
    def _within_family(
        best: str,
        family: tuple[str, ...],
        scores: dict[str, float],
        hints: list[str],
        marked: dict[str, int],
    ) -> str:
        """Bokmål or Danish? A short text often reads as both: then the hint decides,
        unless the text has a word only the other language uses ("hvad", "kva")."""
        for hint in hints:
            if (
                hint in family
                and scores[best] - scores[hint] < FAMILY_HINT_LEAD
                and marked.get(best, 0) <= marked.get(hint, 0)
            ):
                return hint
        return best

    def choose(
        self,
        text: str,
        previous: str | None = None,
        locale: str | None = None,
        profile: LanguageProfile | None = None,
    ) -> LanguageChoice:
        locale_language = language_of_locale(locale, self.supported)
        text = _NOT_PROSE.sub(" ", text[:2000])
        words = _WORDS.findall(text[:500].casefold())
        # A conversation's first word ("moi", "hej") that only one language uses says it all;
        # later, one English IT word ("password") must not switch a Norwegian conversation.
        if len(words) == 1 and previous is None:
            owners = [lang for lang, markers in MARKER_WORDS.items() if words[0] in markers]
            if len(owners) == 1 and owners[0] in self.supported:
                return LanguageChoice(owners[0], "text")
        if len(_LETTERS.findall(text)) >= MIN_LETTERS:
            scores = {
                _LINGUA_TO_CODE[c.language]: c.value
                for c in _detector(self.compact).compute_language_confidence_values(text[:500])
            }
            if profile is not None:
                folder = profile.posterior(text)
                weight = PROFILE_WEIGHT["compact" if self.compact else "accurate"]
                scores = {
                    language: (1 - weight) * value + weight * folder.get(language, 0.0)
                    for language, value in scores.items()
                }
            marked: dict[str, int] = {}
            for word in set(words):
                for language, markers in MARKER_WORDS.items():
                    if word in markers and language in scores:
                        scores[language] += MARKER_BONUS
                        marked[language] = marked.get(language, 0) + 1
            hints = [h for h in (previous, locale_language) if h in scores]
            if previous in scores:
                scores[previous] += PREVIOUS_TURN_BONUS
            if locale_language in scores:
                scores[locale_language] += LOCALE_BONUS
            best = max(scores, key=scores.__getitem__)
            family = next(members for members in FAMILIES if best in members)
            rival = max((v for k, v in scores.items() if k not in family), default=0.0)
            # One word ("Teams", "VPN") says little about the writer's language.
            lead = SINGLE_WORD_LEAD if previous and len(_WORDS.findall(text)) < 2 else CLEAR_LEAD
            if scores[best] - rival >= lead and best in self.supported:
                return LanguageChoice(
                    self._within_family(best, family, scores, hints, marked), "text"
                )
        if previous in self.supported:
            return LanguageChoice(previous, "conversation")
        if locale_language:
            return LanguageChoice(locale_language, "locale")
        return LanguageChoice(self.default, "default")
