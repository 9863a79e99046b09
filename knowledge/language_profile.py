"""Which of the folder's languages a question is written in, learnt from the folder itself.

Why: a general language detector has to tell 75 languages apart and has never seen a
municipality's help desk. This folder's own examples and answers say, per language, how
its employees write about exactly these things ("passord" and "trenger" are Bokmål,
"adgangskode" and "har brug for" Danish). A character n-gram naive Bayes over that text
is tiny (a few MB), needs no download, and alone told the languages of the sample and
nordic test questions apart at 0.945 and 0.968 without any hint, against 0.893 for the
compact general detector (bench/README.md). The bot blends it with the general detector.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from knowledge.models import Knowledge

GRAMS = (1, 2, 3, 4)
SMOOTHING = 0.5
MAX_CHARS = 500  # of a question; the start says enough
SHARPNESS = 20.0  # swept 5-40 with the blend weights on the test phrases (bench/README.md)
_MARKUP = re.compile(r"https?://\S+|[*_#>\[\]()`|]")
_SPACE = re.compile(r"\s+")


def _grams(text: str) -> Iterable[str]:
    padded = f" {_SPACE.sub(' ', text.casefold()).strip()} "
    for n in GRAMS:
        for i in range(len(padded) - n + 1):
            yield padded[i : i + n]


class LanguageProfile:
    """Log-probabilities of character n-grams per language; read-only once built."""

    def __init__(self, languages: tuple[str, ...], index: dict[str, int], logp: np.ndarray):
        self.languages = languages
        self._index = index
        self._logp = logp  # (n-grams + 1 unseen row) x languages
        self._unseen = logp.shape[0] - 1

    @classmethod
    def build(cls, knowledge: Knowledge) -> LanguageProfile | None:
        """None when the folder has fewer than two languages: then there is nothing to tell."""
        counts: dict[str, Counter[str]] = {}
        for intent in knowledge.intents.values():
            for language, phrases in intent.examples.items():
                counter = counts.setdefault(language, Counter())
                for phrase in phrases:
                    counter.update(_grams(phrase))
            for language, answer in intent.answer.items():
                counts.setdefault(language, Counter()).update(_grams(_MARKUP.sub(" ", answer)))
        if len(counts) < 2:
            return None
        languages = tuple(sorted(counts))
        vocabulary = sorted(set().union(*counts.values()))
        index = {gram: i for i, gram in enumerate(vocabulary)}
        table = np.zeros((len(vocabulary) + 1, len(languages)), dtype=np.float64)
        for column, language in enumerate(languages):
            for gram, count in counts[language].items():
                table[index[gram], column] = count
        totals = table.sum(axis=0) + SMOOTHING * (len(vocabulary) + 1)
        logp = np.log((table + SMOOTHING) / totals).astype(np.float32)
        return cls(languages, index, logp)

    def posterior(self, text: str) -> dict[str, float]:
        """P(language | text) over the folder's languages; uniform for an empty text."""
        rows = [self._index.get(g, self._unseen) for g in _grams(text[:MAX_CHARS])]
        if not rows:
            return dict.fromkeys(self.languages, 1.0 / len(self.languages))
        # The mean log-probability per n-gram, sharpened by SHARPNESS: naive Bayes's summed
        # log-likelihoods treat overlapping n-grams as independent evidence and so are far
        # too sure of themselves on a short question ("lag en sak": 92 % Swedish).
        scores = SHARPNESS * self._logp[rows].mean(axis=0, dtype=np.float64)
        scores = np.exp(scores - scores.max())
        scores /= scores.sum()
        return {language: float(p) for language, p in zip(self.languages, scores, strict=True)}
