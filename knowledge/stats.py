"""``python -m knowledge stats``: how much knowledge a folder holds, and where its gaps are.

Content owners and translators need one overview: how many intents, training phrases and
answers each domain has per language, which intents lack a translation that the rest of
the folder has, whose review date has passed and which intents have expired. Gaps are the
point of the report, so they never make it fail; only a folder that does not load does
(the caller prints the loader's file:line errors).

The figures come from the validated models (``load_folder``), exactly what the bot would
serve. The models do not remember where they came from, so :func:`locate` re-reads the
YAML nodes (the loader's own parser and line map) to give every finding a file and line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from knowledge.loader import _Lines, _parse_yaml, knowledge_files
from knowledge.models import Knowledge


@dataclass(frozen=True, slots=True)
class Source:
    """Where a domain lives: the file (as the loader names it) and its line map."""

    file: str
    lines: _Lines

    def intent_line(self, index: int, *rest: Any) -> int:
        """Line of ``intents[index]`` (or of a key/item below it, e.g. ``"examples", "nb", 2``)."""
        return self.lines.line(("intents", index, *rest) if rest else ("intents", index, "id"))

    def item_lines(self, *path: Any) -> list[int]:
        """Lines of every item of the sequence at ``path`` (empty when there is none).

        One walk per list instead of one per item: ``_Lines.line`` scans mappings
        linearly, which adds up to a noticeable share of a 15,000-example report.
        """
        node = self.lines.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                return []
        if not isinstance(node, yaml.SequenceNode):
            return []
        return [item.start_mark.line + 1 for item in node.value]


def locate(folder: Path | str) -> dict[str, Source]:
    """Domain name -> its file and line map, for a folder that ``load_folder`` accepted.

    Parsing again costs a fraction of loading (libyaml, no validation) and keeps the loader
    and the models free of bookkeeping only the owners' tools need.
    """
    sources: dict[str, Source] = {}
    for path in knowledge_files(Path(folder)):
        node, data = _parse_yaml(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "domain" in data:
            sources[str(data["domain"]).strip()] = Source(str(path), _Lines(node))
    return sources


@dataclass(slots=True)
class LanguageFigures:
    """Per language: intents that can be matched (have examples), examples, answers."""

    intents: int = 0
    examples: int = 0
    answers: int = 0


@dataclass(slots=True)
class DomainFigures:
    domain: str
    file: str
    owner: str
    review_by: str | None
    intents: int
    languages: dict[str, LanguageFigures] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MissingTranslation:
    """An intent without examples and/or an answer in languages the folder otherwise uses."""

    intent: str
    domain: str
    file: str
    line: int
    examples: list[str]
    answer: list[str]


@dataclass(frozen=True, slots=True)
class StaleReview:
    domain: str
    owner: str
    file: str
    line: int
    review_by: str
    days_overdue: int


@dataclass(frozen=True, slots=True)
class ExpiredIntent:
    intent: str
    domain: str
    file: str
    line: int
    valid_until: str
    days_ago: int


@dataclass(slots=True)
class Stats:
    """The whole report; ``to_dict`` is the ``--json`` shape."""

    folder: str
    today: str
    languages: list[str]
    domains: list[DomainFigures]
    totals: dict[str, LanguageFigures]
    intents: int
    examples: int
    missing_translations: list[MissingTranslation]
    stale_reviews: list[StaleReview]
    expired_intents: list[ExpiredIntent]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_stats(knowledge: Knowledge, folder: Path | str, today: date | None = None) -> Stats:
    """Count everything per domain and language and list the gaps, each with file:line.

    "Languages the folder uses" are all languages that appear in any intent's examples or
    answers: a language one owner has started on is a language every intent should have.
    """
    today = today or date.today()
    sources = locate(folder)
    languages = sorted(
        {lang for i in knowledge.intents.values() for lang in (*i.examples, *i.answer)}
    )
    domains: list[DomainFigures] = []
    totals: dict[str, LanguageFigures] = {lang: LanguageFigures() for lang in languages}
    missing: list[MissingTranslation] = []
    stale: list[StaleReview] = []
    expired: list[ExpiredIntent] = []
    for name in sorted(knowledge.domains):
        domain = knowledge.domains[name]
        source = sources.get(name) or Source(str(folder), _Lines(None))
        per_language: dict[str, LanguageFigures] = defaultdict(LanguageFigures)
        for index, intent in enumerate(domain.intents):
            for lang, phrases in intent.examples.items():
                per_language[lang].intents += 1
                per_language[lang].examples += len(phrases)
            for lang in intent.answer:
                per_language[lang].answers += 1
            lacks_examples = [lang for lang in languages if lang not in intent.examples]
            lacks_answer = [lang for lang in languages if lang not in intent.answer]
            if lacks_examples or lacks_answer:
                missing.append(
                    MissingTranslation(
                        intent.id,
                        name,
                        source.file,
                        source.intent_line(index),
                        lacks_examples,
                        lacks_answer,
                    )
                )
            if intent.valid_until is not None and intent.valid_until < today:
                expired.append(
                    ExpiredIntent(
                        intent.id,
                        name,
                        source.file,
                        source.intent_line(index, "valid_until"),
                        intent.valid_until.isoformat(),
                        (today - intent.valid_until).days,
                    )
                )
        for lang, figures in per_language.items():
            totals[lang].intents += figures.intents
            totals[lang].examples += figures.examples
            totals[lang].answers += figures.answers
        if domain.review_by is not None and domain.review_by < today:
            stale.append(
                StaleReview(
                    name,
                    domain.owner,
                    source.file,
                    source.lines.line(("review_by",)),
                    domain.review_by.isoformat(),
                    (today - domain.review_by).days,
                )
            )
        domains.append(
            DomainFigures(
                domain=name,
                file=source.file,
                owner=domain.owner,
                review_by=domain.review_by.isoformat() if domain.review_by else None,
                intents=len(domain.intents),
                languages={lang: per_language[lang] for lang in languages if lang in per_language},
            )
        )
    return Stats(
        folder=str(folder),
        today=today.isoformat(),
        languages=languages,
        domains=domains,
        totals=totals,
        intents=len(knowledge.intents),
        examples=sum(f.examples for f in totals.values()),
        missing_translations=missing,
        stale_reviews=stale,
        expired_intents=expired,
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A plain-text table: first column left-aligned, figures right-aligned."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]


def render(stats: Stats) -> str:
    """The human report: one table (a row per domain and language), then the gap lists.

    One row per (domain, language) rather than a column per language keeps the table
    narrow enough for a terminal however many languages a folder has.
    """
    out: list[str] = [f"Knowledge in {stats.folder} (as of {stats.today})", ""]
    rows: list[list[str]] = []
    for d in stats.domains:
        first = True
        for lang in stats.languages:
            f = d.languages.get(lang, LanguageFigures())
            label = f"{d.domain} ({d.intents})" if first else ""
            rows.append([label, lang, str(f.intents), str(f.examples), str(f.answers)])
            first = False
    for index, lang in enumerate(stats.languages):
        t = stats.totals[lang]
        label = f"all ({stats.intents})" if index == 0 else ""
        rows.append([label, lang, str(t.intents), str(t.examples), str(t.answers)])
    out += _table(["domain (intents)", "lang", "intents", "examples", "answers"], rows)
    out += [
        "",
        f"{len(stats.domains)} domains, {stats.intents} intents, {stats.examples} examples, "
        f"languages {', '.join(stats.languages)}",
    ]

    out += ["", f"Missing translations: {len(stats.missing_translations)} intent(s)"]
    for m in stats.missing_translations:
        gaps = []
        if m.examples:
            gaps.append(f"no examples in {', '.join(m.examples)}")
        if m.answer:
            gaps.append(f"no answer in {', '.join(m.answer)}")
        out.append(f"  {m.intent}: {'; '.join(gaps)}  ({m.file}:{m.line})")

    out += ["", f"Stale review dates: {len(stats.stale_reviews)} domain(s)"]
    for s in stats.stale_reviews:
        out.append(
            f"  {s.domain}: review_by {s.review_by} passed {s.days_overdue} day(s) ago; "
            f"owner {s.owner}  ({s.file}:{s.line})"
        )

    out += ["", f"Expired intents (not answered): {len(stats.expired_intents)}"]
    for e in stats.expired_intents:
        out.append(
            f"  {e.intent}: valid_until {e.valid_until}, {e.days_ago} day(s) ago  "
            f"({e.file}:{e.line})"
        )
    return "\n".join(out)
