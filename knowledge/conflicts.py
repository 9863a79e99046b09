"""``python -m knowledge conflicts``: training phrases that (nearly) repeat across intents.

When two intents share a phrase ("passord" under both password reset and account locked),
the matcher cannot tell them apart and users get the wrong answer or a needless "did you
mean". Owners can only fix what they can find, so every pair comes with both intent ids,
both texts and both file:line positions.

How: each example is normalised (casefold, punctuation removed, whitespace collapsed), so
"Glemt passord?" and "glemt  passord" are exact duplicates; the rest are compared by
cosine similarity of TF-IDF weighted character 3- and 4-grams (of the text padded with a
space, so word starts and ends count), which catches typos, inflections and reordered
words without a language model. Only examples of the same language and of *different*
intents are compared; repeats inside one intent are harmless.

Speed: CLINC150's 15,000 English examples are 112 million pairs; computing them all
(even as one sparse product) takes ten seconds and gigabytes, almost all of it spent on
tiny similarities through common n-grams such as " th". :func:`similar_pairs` finds the
same pairs exactly with the AllPairs bounds (only n-grams that can still lift a pair over
the threshold generate candidates; see there), all in numpy and scipy.sparse, in blocks of
rows so memory stays bounded. About two seconds for CLINC150 on a busy 2-core machine.

Exit status (for CI): 0 when there is no pair at or above the threshold, 1 when there
is, 2 when the folder does not load.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from knowledge.models import Knowledge
from knowledge.stats import locate

DEFAULT_THRESHOLD = 0.8
NGRAM_SIZES = (3, 4)
BLOCK_ROWS = 1024  # rows per block of the similarity product; bounds memory, not results
_SPACES = re.compile(r"\s+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_HASH_PRIME = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime


def normalise(text: str) -> str:
    """Casefold, drop punctuation, collapse whitespace.

    NFKC first so full-width letters and ligatures compare equal to their plain forms.
    "Punctuation" is everything that is neither a word character nor a space (so symbols
    such as € and + go too, and "_"): a regular expression is five times faster than
    asking ``unicodedata`` about every character, which matters at 15,000 examples.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", folded)).strip()


@dataclass(frozen=True, slots=True)
class Example:
    """One training phrase and where it is written."""

    intent: str
    text: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two examples of different intents that are (nearly) the same phrase."""

    language: str
    similarity: float
    exact: bool  # equal after normalisation
    a: Example
    b: Example

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_examples(knowledge: Knowledge, folder: Path | str) -> dict[str, list[Example]]:
    """Language -> every example in it, in file order, each with its file and line."""
    sources = locate(folder)
    by_language: dict[str, list[Example]] = defaultdict(list)
    for name, domain in knowledge.domains.items():
        source = sources.get(name)
        for index, intent in enumerate(domain.intents):
            for lang, phrases in intent.examples.items():
                lines = source.item_lines("intents", index, "examples", lang) if source else []
                if len(lines) != len(phrases):  # cannot happen for a folder that loaded
                    lines = [source.intent_line(index) if source else 1] * len(phrases)
                file = source.file if source else str(folder)
                for text, line in zip(phrases, lines, strict=True):
                    by_language[lang].append(Example(intent.id, text, file, line))
    return by_language


def _row_ids(matrix: sparse.csr_matrix) -> np.ndarray:
    """The row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


def tfidf(texts: list[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """L2-normalised TF-IDF rows of character n-grams, and each n-gram's document frequency.

    The n-grams are hashed in numpy (64-bit polynomial hash of the code points, tagged
    with n) instead of sliced into Python strings: all texts are one UTF-32 array, so
    15,000 examples take a fraction of a second. A hash collision would need two of a
    few ten thousand n-grams to share a 64-bit value. The idf is scikit-learn's smoothed
    one, log((1 + N) / (1 + df)) + 1, built by hand so the tools need scipy only.
    """
    padded = [f" {text} " for text in texts]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    rows: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    for n in NGRAM_SIZES:
        count = len(codes) - n + 1
        if count <= 0:
            continue
        inside = owner[:count] == owner[n - 1 : n - 1 + count]  # n-gram within one text
        hashed = np.full(count, n, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for offset in range(n):
                hashed = hashed * _HASH_PRIME + codes[offset : offset + count]
        rows.append(owner[:count][inside])
        hashes.append(hashed[inside])
    all_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    vocabulary, columns = np.unique(
        np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64), return_inverse=True
    )
    matrix = sparse.csr_matrix(
        (np.ones(len(columns), dtype=np.float32), (all_rows, columns.ravel())),
        shape=(len(texts), max(len(vocabulary), 1)),
    )
    matrix.sum_duplicates()  # repeated (row, n-gram) entries become term frequencies
    document_frequency = np.bincount(matrix.indices, minlength=matrix.shape[1])
    idf = np.log((1 + len(texts)) / (1 + document_frequency)) + 1.0
    matrix.data *= idf[matrix.indices].astype(np.float32)
    norms = np.sqrt(
        np.bincount(
            _row_ids(matrix), weights=matrix.data.astype(np.float64) ** 2, minlength=matrix.shape[0]
        )
    )
    norms[norms == 0] = 1.0
    matrix.data /= np.repeat(norms, np.diff(matrix.indptr)).astype(np.float32)
    return matrix, document_frequency


def _segment_cumsum(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting at every CSR row."""
    total = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return total[1:] - np.repeat(total[indptr[:-1]], np.diff(indptr))


def similar_pairs(
    matrix: sparse.csr_matrix,
    document_frequency: np.ndarray,
    groups: np.ndarray,
    threshold: float,
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with i < j, ``groups[i] != groups[j]`` and cosine >= ``threshold``.

    The full product of 15,000 rows is 112 million mostly tiny similarities, dominated by
    common n-grams (" th", "my "): 10 s and gigabytes. This is the AllPairs algorithm
    (Bayardo, Ma and Srikant, WWW 2007), exact, not an approximation:

    1. Order n-grams from most to least common. For every row, the longest run of its
       common n-grams whose best possible contribution to any cosine stays below the
       threshold is its *prefix* (bound: the smaller of sum(x_k * max_k) and the norm of
       the run); the rest is its *suffix*. Two rows can only reach the threshold if one
       row shares an n-gram with the other's suffix.
    2. Candidates are the non-zeros of X @ suffix(X).T: sparse, and small, because
       suffixes hold the rare n-grams.
    3. A candidate's missing part, x_i . prefix(x_j), is at most
       min(prefix bound of j, |x_i on n-grams more common than j's suffix| * |prefix(x_j)|);
       candidates that cannot reach the threshold even so are dropped.
    4. The survivors' cosines are computed exactly.

    Rows are processed in blocks so memory stays bounded on any folder size.
    """
    n_rows, n_features = matrix.shape
    if n_rows < 2 or matrix.nnz == 0:
        return []
    margin = threshold - 1e-4  # prune a little conservatively against float32 rounding
    rank = np.empty(n_features, dtype=np.int64)
    rank[np.argsort(-document_frequency, kind="stable")] = np.arange(n_features)
    ranked = sparse.csr_matrix(
        (matrix.data.copy(), rank[matrix.indices], matrix.indptr.copy()), matrix.shape
    )
    ranked.sort_indices()  # in place, so ``matrix``'s arrays must not be shared
    rows_of = _row_ids(ranked)
    data64 = ranked.data.astype(np.float64)
    best = np.asarray(ranked.max(axis=0).todense()).ravel().astype(np.float64)
    bound = np.minimum(
        _segment_cumsum(data64 * best[ranked.indices], ranked.indptr),
        np.sqrt(_segment_cumsum(data64**2, ranked.indptr)),
    )
    in_prefix = bound < margin
    suffix = sparse.csr_matrix(
        (np.where(in_prefix, 0, ranked.data), ranked.indices.copy(), ranked.indptr.copy()),
        matrix.shape,
    )
    suffix.eliminate_zeros()  # compacts its arrays in place: hence the copies above
    prefix_norm = np.sqrt(
        np.bincount(rows_of, weights=np.where(in_prefix, data64**2, 0), minlength=n_rows)
    )
    prefix_bound = np.zeros(n_rows)
    np.maximum.at(prefix_bound, rows_of, np.where(in_prefix, bound, 0))
    first_suffix = np.full(n_rows, n_features, dtype=np.int64)
    np.minimum.at(first_suffix, rows_of[~in_prefix], ranked.indices[~in_prefix])
    # Entry keys in row-major order, to find "n-grams of row i ranked below r" by bisection.
    keys = rows_of * (n_features + 1) + ranked.indices
    squares = np.concatenate([[0.0], np.cumsum(data64**2)])
    suffix_t = suffix.T.tocsr()

    found: list[tuple[int, int, float]] = []
    for start in range(0, n_rows, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n_rows)
        block = (ranked[start:stop] @ suffix_t).tocoo()
        i = block.row.astype(np.int64) + start
        j = block.col.astype(np.int64)
        partial = block.data.astype(np.float64)
        keep = (j > i) & (groups[i] != groups[j])
        i, j, partial = i[keep], j[keep], partial[keep]
        position = np.searchsorted(keys, i * (n_features + 1) + first_suffix[j])
        above = np.sqrt(np.maximum(squares[position] - squares[ranked.indptr[i]], 0.0))
        keep = partial + np.minimum(prefix_bound[j], above * prefix_norm[j]) >= margin
        i, j = i[keep], j[keep]
        if not len(i):
            continue
        exact = np.asarray(ranked[i].multiply(ranked[j]).sum(axis=1)).ravel()
        keep = exact >= threshold - 1e-6
        found.extend(zip(i[keep].tolist(), j[keep].tolist(), exact[keep].tolist(), strict=True))
    return found


def find_conflicts(
    knowledge: Knowledge,
    folder: Path | str,
    threshold: float = DEFAULT_THRESHOLD,
    languages: set[str] | None = None,
) -> list[Conflict]:
    """Every cross-intent pair at or above ``threshold``: exact duplicates first, then by
    similarity (highest first), then by file position so the output is stable."""
    conflicts: list[Conflict] = []
    for lang, examples in sorted(collect_examples(knowledge, folder).items()):
        if languages and lang not in languages:
            continue
        texts = [normalise(e.text) for e in examples]
        intent_numbers: dict[str, int] = {}
        groups = np.array(
            [intent_numbers.setdefault(e.intent, len(intent_numbers)) for e in examples]
        )
        exact_pairs: set[tuple[int, int]] = set()
        by_text: dict[str, list[int]] = defaultdict(list)
        for index, text in enumerate(texts):
            by_text[text].append(index)
        for indexes in by_text.values():
            for x, i in enumerate(indexes):
                for j in indexes[x + 1 :]:
                    if groups[i] != groups[j]:
                        exact_pairs.add((i, j))
        for i, j in sorted(exact_pairs):
            conflicts.append(Conflict(lang, 1.0, True, examples[i], examples[j]))
        if len(examples) < 2:
            continue
        matrix, document_frequency = tfidf(texts)
        for i, j, score in similar_pairs(matrix, document_frequency, groups, threshold):
            if (i, j) not in exact_pairs:
                similarity = min(1.0, math.floor(score * 1000 + 0.5) / 1000)
                conflicts.append(Conflict(lang, similarity, False, examples[i], examples[j]))
    conflicts.sort(
        key=lambda c: (not c.exact, -c.similarity, c.language, c.a.file, c.a.line, c.b.line)
    )
    return conflicts


def render(conflicts: list[Conflict], threshold: float) -> str:
    """Plain text for owners: one block per pair, both places as file:line."""
    if not conflicts:
        return f"No examples of different intents are at or above similarity {threshold}."
    out: list[str] = []
    for c in conflicts:
        kind = "exact duplicate" if c.exact else f"similarity {c.similarity:.3f}"
        out.append(f"{kind} [{c.language}]: {c.a.intent} <-> {c.b.intent}")
        out.append(f"  {c.a.file}:{c.a.line}: {c.a.text!r} ({c.a.intent})")
        out.append(f"  {c.b.file}:{c.b.line}: {c.b.text!r} ({c.b.intent})")
    exact = sum(c.exact for c in conflicts)
    out.append("")
    out.append(
        f"{len(conflicts)} conflicting pair(s) at or above {threshold} "
        f"({exact} exact duplicate(s)): reword or remove one example of each pair."
    )
    return "\n".join(out)
