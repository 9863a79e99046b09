"""How matcher build time, query time and memory grow with the knowledge folder.

    python bench/synthetic.py --intents 2000 --languages 5 --examples 10 [--embedding none]

Builds a synthetic folder in memory (made-up words from a fixed seed, so every run is
the same), builds the matcher, and times `match` on held-out paraphrases and on
nonsense. Prints one JSON line: intents, phrases, load_seconds, p50/p99 ms, RSS MB, and
the ratio of p99 to a baseline measured in the same run (the lexical path alone), so
a busy machine shows up in both figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.matching import memory_mb
from knowledge.matching import Example, build_matcher

LANGS = ("nb", "sv", "da", "fi", "en")
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "su",
    "ta",
    "vi",
    "ro",
    "pe",
    "ja",
    "ko",
    "li",
    "sa",
    "mu",
    "te",
    "fo",
    "ri",
    "va",
    "ne",
    "de",
]


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def synthetic(n_intents: int, n_langs: int, n_examples: int, seed: int = 7):
    """Phrases that share a per-intent topic vocabulary and a common filler vocabulary."""
    rng = random.Random(seed)
    filler = {lang: [word(rng) for _ in range(200)] for lang in LANGS}
    examples, queries = [], []
    for i in range(n_intents):
        for lang in LANGS[:n_langs]:
            topic = [word(rng) for _ in range(4)]

            def phrase(topic=topic, lang=lang):
                words = rng.sample(topic, 2) + rng.sample(filler[lang], rng.randint(1, 4))
                rng.shuffle(words)
                return " ".join(words)

            examples.extend(Example(f"d.intent_{i}", lang, phrase()) for _ in range(n_examples))
            if i % max(1, n_intents // 200) == 0:
                queries.append(phrase())
    return examples, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=2000)
    parser.add_argument("--languages", type=int, default=5)
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--embedding", default="auto")
    args = parser.parse_args()
    examples, queries = synthetic(args.intents, args.languages, args.examples)
    rng = random.Random(1)
    queries += [" ".join(word(rng) for _ in range(4)) for _ in range(len(queries) // 4)]
    rss0, _ = memory_mb()
    start = time.perf_counter()
    matcher = build_matcher(examples, embedding=args.embedding)
    load = time.perf_counter() - start
    rss_loaded, _ = memory_mb()
    times = []
    for q in queries:
        t = time.perf_counter()
        matcher.match(q)
        times.append((time.perf_counter() - t) * 1000)
    base = []
    for q in queries:  # baseline in the same run: the lexical scoring alone
        t = time.perf_counter()
        idx, val = matcher._vectorizer.transform_one(q)
        val @ matcher._weights[idx]
        base.append((time.perf_counter() - t) * 1000)
    _, peak = memory_mb()
    p99, b99 = float(np.percentile(times, 99)), float(np.percentile(base, 99))
    print(
        json.dumps(
            {
                "intents": args.intents,
                "phrases": len(examples),
                "embedding": matcher.uses_embedding,
                "embedded": matcher.embedded,
                "load_seconds": round(load, 2),
                "ms_p50": round(float(np.percentile(times, 50)), 2),
                "ms_p99": round(p99, 2),
                "lexical_baseline_ms_p99": round(b99, 2),
                "p99_ratio_to_baseline": round(p99 / b99, 1) if b99 else None,
                "rss_mb_added_by_matcher": round(rss_loaded - rss0, 1),
                "rss_mb_peak": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
