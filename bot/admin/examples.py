"""Adds a training phrase to an intent's YAML file in place, keeping the owner's formatting.

Owners edit these files by hand and review them in Git, so the dashboard's "copy to
intent" must change one line, not reformat the file: ruamel.yaml's round-trip mode keeps
comments, key order, quoting, flow lists and block scalars, and the indentation is the one
that reproduces the file unchanged (tried before anything is added).

Nothing invalid ever reaches the live folder: the new text is validated with the bot's own
loader in a shadow folder (symlinks to the other files) first, then written to a temporary
file beside the original and renamed over it, which is atomic, so the knowledge watcher
and other replicas see the old file or the new one, never half of one.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from bot.privacy import scrub
from knowledge.loader import knowledge_files, load_folder
from knowledge.models import INTENT_ID, LANGUAGE_CODE
from knowledge.spreadsheet import atomic_write, dump_yaml, round_trip_yaml

logger = logging.getLogger(__name__)

MAX_EXAMPLE_CHARS = 500
# (mapping, sequence, offset) indentations tried, most common first.
INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (4, 6, 2), (3, 3, 0), (2, 3, 1))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ExampleRefused(Exception):
    """The example cannot be added; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


@dataclass(slots=True)
class AddedExample:
    intent: str
    language: str
    text: str
    file: str  # name inside the knowledge folder
    line: int
    previous: bytes = field(repr=False, default=b"")  # the file before, to restore it

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "language": self.language,
            "text": self.text,
            "file": self.file,
            "line": self.line,
        }


def clean_example(intent: str, language: str, text: str) -> tuple[str, str, str]:
    """Checked and normalised input; refuses personal data outright."""
    intent, language = str(intent or "").strip(), str(language or "").strip().lower()
    text = " ".join(str(text or "").split())
    if not INTENT_ID.match(intent):
        raise ExampleRefused(400, "intent must be an intent id such as it.password_reset")
    if not LANGUAGE_CODE.match(language):
        raise ExampleRefused(400, "language must be an ISO 639-1 code such as nb, sv or en")
    if not text or len(text) > MAX_EXAMPLE_CHARS or _CONTROL.search(text):
        raise ExampleRefused(400, f"text must be 1 to {MAX_EXAMPLE_CHARS} printable characters")
    if scrub(text) != text:
        raise ExampleRefused(
            422,
            "the text looks like it holds personal data (a phone number, an e-mail address, "
            "an identity number …); remove it first",
        )
    return intent, language, text


def _changed_lines(a: str, b: str) -> int:
    return sum(1 for x, y in zip(a.splitlines(), b.splitlines(), strict=False) if x != y) + abs(
        a.count("\n") - b.count("\n")
    )


def load_round_trip(text: str) -> tuple[YAML, Any]:
    """The file's data and the YAML settings that write it back (closest to) unchanged."""
    best: tuple[int, YAML, Any] | None = None
    for indent in INDENTS:
        yaml = round_trip_yaml(indent)
        data = yaml.load(text)
        changed = _changed_lines(text, dump_yaml(yaml, data))
        if changed == 0:
            return yaml, data
        if best is None or changed < best[0]:
            best = (changed, yaml, data)
    assert best is not None
    logger.info("no indentation reproduces the file exactly; %d lines may change", best[0])
    return best[1], best[2]


def _find_intent(folder: Path, intent: str) -> tuple[Path, bytes, YAML, Any, CommentedMap]:
    for path in knowledge_files(folder):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if intent not in text:
            continue  # cheap filter before parsing
        try:
            yaml, data = load_round_trip(text)
        except YAMLError:
            continue  # a broken file is reported by the validation, not here
        for entry in (data or {}).get("intents") or []:
            if isinstance(entry, CommentedMap) and str(entry.get("id", "")).strip() == intent:
                return path, raw, yaml, data, entry
    raise ExampleRefused(404, f"no intent {intent!r} in the knowledge folder")


def _quoted_like(sibling: Any, text: str) -> Any:
    """The new item quoted the way its neighbours are."""
    if isinstance(sibling, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(text)
    if isinstance(sibling, SingleQuotedScalarString):
        return SingleQuotedScalarString(text)
    return text


def _append(entry: CommentedMap, language: str, text: str) -> None:
    examples = entry.get("examples")
    if not isinstance(examples, CommentedMap):
        raise ExampleRefused(422, f"{entry.get('id')}: examples is not a mapping")
    phrases = examples.get(language)
    if phrases is None:
        siblings = [v for v in examples.values() if isinstance(v, CommentedSeq)]
        new = CommentedSeq(
            [_quoted_like(siblings[0][0] if siblings and siblings[0] else None, text)]
        )
        if siblings and siblings[0].fa.flow_style():
            new.fa.set_flow_style()
        examples[language] = new
        return
    if not isinstance(phrases, CommentedSeq):
        raise ExampleRefused(422, f"{entry.get('id')}: the {language} examples are not a list")
    folded = text.casefold()
    if any(str(p).strip().casefold() == folded for p in phrases):
        raise ExampleRefused(409, f"{entry.get('id')} already has this {language} example")
    phrases.append(_quoted_like(phrases[-1] if len(phrases) else None, text))


def _validate_shadow(folder: Path, target: Path, new_text: str) -> list[str]:
    """Problems of the folder as it would be with ``new_text`` in ``target``."""
    with tempfile.TemporaryDirectory(prefix="kollega-validate-") as shadow_name:
        shadow = Path(shadow_name)
        for item in folder.iterdir():
            if item.name != target.name and not item.name.startswith("."):
                (shadow / item.name).symlink_to(item.resolve())
        (shadow / target.name).write_text(new_text, encoding="utf-8")
        result = load_folder(shadow)
        prefix = str(shadow)
        return [str(p).replace(prefix, str(folder)) for p in result.errors]


def add_example(folder: Path, intent: str, language: str, text: str) -> AddedExample:
    """Append ``text`` to ``intent``'s ``language`` examples; raises ``ExampleRefused``."""
    intent, language, text = clean_example(intent, language, text)
    path, raw, yaml, data, entry = _find_intent(folder, intent)
    original = raw.decode("utf-8")
    _append(entry, language, text)
    new_text = dump_yaml(yaml, data)
    problems = _validate_shadow(folder, path, new_text)
    if problems:
        raise ExampleRefused(422, "the knowledge would not load with this example", problems)
    old_lines, new_lines = original.splitlines(), new_text.splitlines()
    line = next(
        (i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)) if a != b),
        min(len(old_lines), len(new_lines)) + 1,
    )
    if path.read_bytes() != raw:
        raise ExampleRefused(409, f"{path.name} changed meanwhile; try again")
    atomic_write(path, new_text.encode("utf-8"))
    logger.info("added a %s example to %s (%s:%d)", language, intent, path.name, line)
    return AddedExample(intent, language, text, path.name, line, raw)


def restore(folder: Path, added: AddedExample) -> None:
    """Put the file back as it was before ``added`` (the reload refused the new folder)."""
    atomic_write(folder / added.file, added.previous)
    logger.warning("restored %s after the reload refused the new example", added.file)
