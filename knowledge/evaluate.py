"""Measures a knowledge folder against a JSON Lines test file (design.md, evaluation contract).

Everything goes through ``load_folder`` and ``prepare``, exactly as the bot loads it, and
nothing is learnt from the test file: the figures are what users would get.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.index import prepare
from knowledge.loader import load_folder


class EvaluationError(Exception):
    """The folder or the test file cannot be used; the message says where."""


@dataclass(frozen=True, slots=True)
class TestItem:
    text: str
    intent: str | None
    lang: str | None = None


def read_tests(path: Path) -> list[TestItem]:
    items: list[TestItem] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw: Any = json.loads(line)
                items.append(TestItem(str(raw["text"]), raw.get("intent"), raw.get("lang")))
            except (ValueError, KeyError, TypeError) as exc:
                raise EvaluationError(f"{path}:{number}: not a test line ({exc})") from exc
    if not items:
        raise EvaluationError(f"{path}: holds no test lines")
    return items


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties half)."""
    if not positive or not negative:
        return 0.0
    scores = np.concatenate([np.asarray(positive, float), np.asarray(negative, float)])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=float)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n_pos = len(positive)
    rank_sum = ranks[:n_pos].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * len(negative)))


def evaluate(folder: Path, tests: Iterable[TestItem], **matcher_options: Any) -> dict[str, Any]:
    """``matcher_options`` are ``prepare``'s: the same embedding settings the bot uses."""
    started = time.perf_counter()
    result = load_folder(folder)
    if not result.ok or result.knowledge is None:
        raise EvaluationError("\n".join(str(p) for p in result.errors) or "cannot load")
    knowledge = prepare(result.knowledge, **matcher_options)
    load_seconds = time.perf_counter() - started
    matcher = knowledge.matcher

    in_scope_n = oos_n = correct = oos_fallback = fallbacks = 0
    in_conf: list[float] = []
    oos_conf: list[float] = []
    times: list[float] = []
    for item in tests:
        t0 = time.perf_counter()
        match = matcher.match(item.text, item.lang)
        times.append((time.perf_counter() - t0) * 1000.0)
        sent_to_fallback = match.decision == "fallback"
        fallbacks += sent_to_fallback
        if item.intent is None:
            oos_n += 1
            oos_fallback += sent_to_fallback
            oos_conf.append(match.confidence)
        else:
            in_scope_n += 1
            top = match.candidates[0].intent_id if match.candidates else None
            correct += (top == item.intent) and not sent_to_fallback
            in_conf.append(match.confidence)
    n = in_scope_n + oos_n
    return {
        "n": n,
        "in_scope_n": in_scope_n,
        "oos_n": oos_n,
        "in_scope_accuracy": round(correct / in_scope_n, 4) if in_scope_n else 0.0,
        "oos_recall": round(oos_fallback / oos_n, 4) if oos_n else 0.0,
        "oos_precision": round(oos_fallback / fallbacks, 4) if fallbacks else 0.0,
        # OOS is the positive class, so lower in-scope confidence must rank it higher.
        "oos_auroc": round(auroc([-c for c in oos_conf], [-c for c in in_conf]), 4),
        "ms_per_query_p50": round(float(np.percentile(times, 50)), 3) if times else 0.0,
        "ms_per_query_p99": round(float(np.percentile(times, 99)), 3) if times else 0.0,
        "load_seconds": round(load_seconds, 3),
    }
