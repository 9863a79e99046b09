"""Benchmark the personal-data scrubber against a naive regex baseline on the test corpus.

Run ``python bench/privacy.py`` from the repository root. It prints, for ``bot.privacy`` and
for a plain regex scrubber measured in the same run, recall per kind and overall (a value
counts as found when it no longer appears in the scrubbed sentence), the false-positive rate
on sentences without personal data (any change counts), and throughput in sentences per
second, so the README can quote figures that were measured together on one machine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.privacy import scrub  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "privacy_corpus.jsonl"

# The baseline most projects start with: any address-looking token, any run of six or more
# digits (single spaces, hyphens or dots allowed between them), and IBAN-looking tokens.
_BASELINE = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"
    r"|\+?[0-9](?:[ .-]?[0-9]){5,}"
)


def baseline_scrub(text: str) -> str:
    """Replace every match of the naive pattern with one placeholder."""
    return _BASELINE.sub("[redacted]", text)


def evaluate(rows: list[dict], scrubber: Callable[[str], str], repeat: int) -> dict:
    """Recall per kind, overall recall, false-positive rate and throughput for ``scrubber``."""
    texts = [r["text"] for r in rows]
    started = time.perf_counter()
    for _ in range(repeat):
        outputs = [scrubber(t) for t in texts]
    elapsed = time.perf_counter() - started
    found: dict[str, list[int]] = {}
    clean = changed = 0
    for row, out in zip(rows, outputs, strict=True):
        if not row["pii"]:
            clean += 1
            changed += out != row["text"]
        for item in row["pii"]:
            hit_miss = found.setdefault(item["kind"], [0, 0])
            hit_miss[0 if item["value"] not in out else 1] += 1
    per_kind = {k: hits / (hits + misses) for k, (hits, misses) in sorted(found.items())}
    total_hits = sum(h for h, _ in found.values())
    total = sum(h + m for h, m in found.values())
    return {
        "recall_per_kind": per_kind,
        "values_per_kind": {k: h + m for k, (h, m) in sorted(found.items())},
        "recall": total_hits / total,
        "false_positive_rate": changed / clean,
        "clean_sentences": clean,
        "sentences_per_second": len(texts) * repeat / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=20, help="passes over the corpus")
    parser.add_argument("--json", action="store_true", help="print one JSON object as well")
    args = parser.parse_args(argv)
    with args.corpus.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    results = {
        "bot.privacy": evaluate(rows, scrub, args.repeat),
        "regex baseline": evaluate(rows, baseline_scrub, args.repeat),
    }
    ours, base = results["bot.privacy"], results["regex baseline"]
    print(f"corpus: {len(rows)} sentences, {ours['clean_sentences']} without personal data")
    print(f"{'':28}{'bot.privacy':>14}{'regex baseline':>16}")
    for kind, n in ours["values_per_kind"].items():
        label = f"recall {kind} (n={n})"
        print(
            f"{label:28}{ours['recall_per_kind'][kind]:>14.3f}"
            f"{base['recall_per_kind'][kind]:>16.3f}"
        )
    print(f"{'recall overall':28}{ours['recall']:>14.3f}{base['recall']:>16.3f}")
    print(
        f"{'false positives (clean)':28}{ours['false_positive_rate']:>14.3f}"
        f"{base['false_positive_rate']:>16.3f}"
    )
    print(
        f"{'sentences/s':28}{ours['sentences_per_second']:>14.0f}"
        f"{base['sentences_per_second']:>16.0f}"
    )
    ratio = ours["sentences_per_second"] / base["sentences_per_second"]
    print(f"throughput ratio bot.privacy / baseline: {ratio:.2f}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
