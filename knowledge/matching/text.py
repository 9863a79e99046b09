"""Text normalisation and TF-IDF features for the lexical matcher.

Employees type short, misspelt, inflected Nordic sentences with English IT words in
them, often on keyboards without æ/ø/å/ä/ö. Character n-grams inside word boundaries
carry most of that (an inflected or compound word shares most of its n-grams with its
stem; one typo breaks only a few), and word uni- and bigrams add the exact-phrase
signal. Everything here is plain Python and numpy so the bot needs no scikit-learn.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Letters that NFKD does not decompose but that people replace when their keyboard
# lacks them ("losenord", "paaske", "passord").
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "ð": "d", "þ": "th", "ł": "l"})
_TOKEN = re.compile(r"\w+", re.UNICODE)

CHAR_NGRAMS = (2, 3, 4, 5)


def normalize(text: str) -> str:
    """Lower-case, fold diacritics and Nordic letters, and keep only word characters.

    Folding "å"->"a", "ø"->"o" costs almost nothing in discrimination but makes a
    query typed without Nordic letters match the examples that have them.
    """
    text = unicodedata.normalize("NFKD", text.casefold()).translate(_FOLD)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_TOKEN.findall(text.replace("_", " ")))


def terms(text: str) -> list[str]:
    """Every feature string of an already normalised text (with repetitions)."""
    words = text.split()
    out: list[str] = []
    for w in words:
        padded = f" {w} "
        n_chars = len(padded)
        for n in CHAR_NGRAMS:
            if n > n_chars:
                break
            out.extend(padded[i : i + n] for i in range(n_chars - n + 1))
        out.append("w:" + w)
    out.extend(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    return out


@dataclass(frozen=True, slots=True)
class SparseRows:
    """A CSR-like batch of L2-normalised sparse rows (indices into a vocabulary)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b], self.data[a:b]

    def __len__(self) -> int:
        return len(self.indptr) - 1


class Vectorizer:
    """Sublinear TF-IDF over `terms`, with a vocabulary capped by document frequency.

    The cap keeps the dense class-weight matrix (features x intents) bounded for very
    large folders: the rarest n-grams go first, they matter least.
    """

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray) -> None:
        self.vocabulary = vocabulary
        self.idf = idf

    @classmethod
    def fit(
        cls, texts: Sequence[str], max_features: int, min_df: int = 1
    ) -> tuple[Vectorizer, SparseRows]:
        """Learn the vocabulary and idf from normalised texts; return them with the rows.

        One pass with provisional term ids kept in compact arrays (not Python lists of
        floats: for 15,000 phrases those cost ~100 MB that the process never returns).
        """
        provisional: dict[str, int] = {}
        ids = array("i")
        counts = array("f")
        indptr = array("q", [0])
        for text in texts:
            for t, c in Counter(terms(text)).items():
                j = provisional.get(t)
                if j is None:
                    j = provisional[t] = len(provisional)
                ids.append(j)
                counts.append(c)
            indptr.append(len(ids))
        prov_ids = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32)
        df = np.bincount(prov_ids, minlength=len(provisional))
        names = list(provisional)
        del provisional
        candidates = np.flatnonzero(df >= min_df) if min_df > 1 else np.arange(len(df))
        if len(candidates) > max_features:
            # deterministic: by document frequency, then alphabetically
            order = sorted(candidates.tolist(), key=lambda j: (-df[j], names[j]))
            candidates = np.array(order[:max_features], dtype=np.int64)
        kept = sorted(candidates.tolist(), key=lambda j: names[j])
        remap = np.full(len(df), -1, dtype=np.int32)
        remap[kept] = np.arange(len(kept), dtype=np.int32)
        vocabulary = {names[j]: i for i, j in enumerate(kept)}
        n_docs = len(texts)
        idf = (np.log((1 + n_docs) / (1 + df[kept].astype(np.float64))) + 1.0).astype(np.float32)
        vec = cls(vocabulary, idf)
        new_ids = remap[prov_ids]
        keep = new_ids >= 0
        ptr = np.frombuffer(indptr, dtype=np.int64)
        row_of = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))[keep]
        ptr = np.concatenate([[0], np.cumsum(np.bincount(row_of, minlength=len(ptr) - 1))])
        tf = np.frombuffer(counts, dtype=np.float32)[keep]
        return vec, vec._weigh(ptr.astype(np.int64), new_ids[keep], tf)

    def transform(self, texts: Iterable[str]) -> SparseRows:
        """Rows for normalised texts; n-grams never seen in training are ignored."""
        return self._rows([Counter(terms(text)) for text in texts])

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The (indices, values) of one normalised text, L2-normalised."""
        rows = self.transform([text])
        return rows.indices, rows.data

    def _rows(self, counted: list[dict[str, int]]) -> SparseRows:
        vocab = self.vocabulary
        ids = array("i")
        counts = array("f")
        indptr = array("q", [0])
        for tf in counted:
            for t, c in tf.items():
                j = vocab.get(t)
                if j is not None:
                    ids.append(j)
                    counts.append(c)
            indptr.append(len(ids))
        return self._weigh(
            np.frombuffer(indptr, dtype=np.int64),
            np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32),
            np.frombuffer(counts, dtype=np.float32) if len(counts) else np.zeros(0, np.float32),
        )

    def _weigh(self, ptr: np.ndarray, ind: np.ndarray, tf: np.ndarray) -> SparseRows:
        """Sublinear tf times idf, each row L2-normalised (bincount copes with empty rows)."""
        val = (1.0 + np.log(tf)) * self.idf[ind] if len(ind) else tf.copy()
        val = val.astype(np.float32)
        lengths = np.diff(ptr)
        row_of = np.repeat(np.arange(len(lengths)), lengths)
        norms = np.sqrt(np.bincount(row_of, weights=val * val, minlength=len(lengths)))
        norms[norms == 0] = 1.0
        val /= np.repeat(norms.astype(np.float32), lengths)
        return SparseRows(np.asarray(ptr, np.int64), np.asarray(ind, np.int32), val)
