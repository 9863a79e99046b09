"""``export-csv`` / ``import-csv``: examples and answers in a spreadsheet, and back.

Translators and many content owners live in Excel, not in YAML and Git. They get a CSV
of every training phrase and answer, edit or translate it, and the owner imports it; only
examples and answers change, everything else in the YAML stays as it was.

Layout: *long*, one row per text, with the columns

    domain, intent, kind, language, n, text

(``kind`` is ``example`` or ``answer``; ``n`` is the example's position, 1, 2, …).
A wide grid (a column per language) looks friendlier at first, but training phrases are
not parallel across languages: nb may have eleven and fi ten, and nb's third phrase is not
a translation of sv's third. A grid would invent that alignment, leave ragged holes, and
make every row as tall as its longest Markdown answer. The long layout stays correct
under Excel's filter and sort (filter ``language`` = fi to translate, or ``intent`` to see
one intent in every language), and a new phrase is simply a new row. To make the
translator's work visible, the export adds an empty *placeholder* row for every language
the folder uses that an intent lacks (``--no-placeholders`` to leave them out); empty
rows are ignored on import.

Import rules, so that a partial sheet can never destroy work:

* only (intent, kind, language) groups that have at least one non-empty row are touched;
  the group is replaced by the sheet's rows (ordered by ``n``; a row without ``n`` stays
  after the row above it). Groups not in the sheet are left alone, so a sheet filtered to
  one language updates one language. Removing a language is done in the YAML.
* unknown intents or domains, an intent under the wrong domain, bad kinds, language codes
  or positions, two answers for one language, control characters and malformed CSV are
  errors with the CSV line number; all are reported and nothing is written.
* the changed YAML is written with ruamel.yaml's round trip (comments, key order, quoting,
  flow lists, block scalars, links, follow_ups … stay), validated with ``load_folder`` on
  a temporary copy of the folder, and only then put in place, each file by an atomic
  rename. Unchanged texts are not rewritten, so importing an unchanged export changes no
  byte.

File format: UTF-8 with a byte order mark (so Excel recognises UTF-8), RFC 4180 quoting
(every field quoted, CRLF between records; line breaks inside a Markdown answer stay
inside its quoted cell). Import also accepts files without the BOM and, since Nordic
Excel saves with its list separator, ``;`` or tab as the delimiter (``--delimiter ";"``
on export gives such a file). A text starting with ``= + - @`` would be read as a formula
by Excel (a Markdown list answer starts with ``-``), so the export puts an apostrophe in
front of texts starting with one of those or with an apostrophe, and the import removes
exactly that apostrophe again; Excel itself hides it and drops it on saving.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from knowledge.loader import knowledge_files, load_folder
from knowledge.models import LANGUAGE_CODE, Knowledge

COLUMNS = ("domain", "intent", "kind", "language", "n", "text")
REQUIRED = ("intent", "kind", "language", "text")
KINDS = {"example": "example", "examples": "example", "answer": "answer", "answers": "answer"}
FORMULA_START = "=+-@'"  # Excel would treat a cell starting with these as a formula
DELIMITERS = (",", ";", "\t")
MAX_CELL_CHARS = 10_000_000  # above the loader's 5 MB file limit, so that one reports it
# (mapping, sequence, offset) indentations tried, most common first; the first that
# reproduces the file unchanged is used for writing it back.
INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (4, 6, 2), (3, 3, 0), (2, 3, 1))
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STR_TAG = "tag:yaml.org,2002:str"


class SpreadsheetError(Exception):
    """The sheet or the folder cannot be used; ``problems`` says where (file:line)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        return "\n".join([self.message, *self.problems])


# --------------------------------------------------------------------------- export


def guard(text: str) -> str:
    """Prefix an apostrophe so Excel shows the text instead of evaluating it."""
    return "'" + text if text[:1] and text[0] in FORMULA_START else text


def unguard(text: str) -> str:
    """Undo :func:`guard`: exactly one apostrophe before a guarded character goes."""
    if len(text) >= 2 and text[0] == "'" and text[1] in FORMULA_START:
        return text[1:]
    return text


def _load(folder: Path) -> Knowledge:
    result = load_folder(folder)
    if not result.ok or result.knowledge is None:
        raise SpreadsheetError(
            f"{folder} does not load; fix these first:", [str(p) for p in result.errors]
        )
    return result.knowledge


def export_rows(
    knowledge: Knowledge, placeholders: bool = True, languages: set[str] | None = None
) -> list[list[str]]:
    """The sheet's rows (without header), in file order: per intent its examples language by
    language, then its answers; texts as the bot sees them (the model's stripped text)."""
    used = sorted({lang for i in knowledge.intents.values() for lang in (*i.examples, *i.answer)})
    wanted = [lang for lang in used if languages is None or lang in languages]
    extra = sorted((languages or set()) - set(used))  # a new language asked for explicitly
    wanted += extra
    rows: list[list[str]] = []
    for domain in knowledge.domains.values():
        for intent in domain.intents:
            order = [lang for lang in intent.examples if lang in wanted]
            if placeholders:
                order += [lang for lang in wanted if lang not in intent.examples]
            for lang in order:
                phrases = intent.examples.get(lang)
                if phrases is None:
                    rows.append([domain.domain, intent.id, "example", lang, "", ""])
                    continue
                for n, text in enumerate(phrases, 1):
                    rows.append([domain.domain, intent.id, "example", lang, str(n), guard(text)])
            order = [lang for lang in intent.answer if lang in wanted]
            if placeholders:
                order += [lang for lang in wanted if lang not in intent.answer]
            for lang in order:
                answer = intent.answer.get(lang, "")
                rows.append([domain.domain, intent.id, "answer", lang, "", guard(answer)])
    return rows


def write_csv(rows: list[list[str]], out: Path, delimiter: str = ",") -> None:
    """UTF-8 with BOM, every field quoted, CRLF records; written atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    atomic_write(out, buffer.getvalue().encode("utf-8-sig"))


def export_csv(
    folder: Path,
    out: Path,
    placeholders: bool = True,
    languages: set[str] | None = None,
    delimiter: str = ",",
) -> int:
    """Write the folder's examples and answers to ``out``; returns the number of rows."""
    rows = export_rows(_load(Path(folder)), placeholders, languages)
    write_csv(rows, Path(out), delimiter)
    return len(rows)


# --------------------------------------------------------------------------- read the sheet


@dataclass(frozen=True, slots=True)
class Cell:
    """One non-empty text of the sheet with the CSV line its row starts on."""

    line: int
    text: str
    key: tuple[float, int, int]  # order within its group: (n, after-n, line)


@dataclass(slots=True)
class Sheet:
    """The sheet's texts, grouped: (intent, language) -> examples / answer."""

    name: str
    examples: dict[tuple[str, str], list[Cell]] = field(default_factory=dict)
    answers: dict[tuple[str, str], Cell] = field(default_factory=dict)


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpreadsheetError(
            f"{name}:{line}: is not UTF-8 text; in Excel save it as 'CSV UTF-8'"
        ) from exc


def _delimiter(text: str) -> str:
    """The delimiter that splits the header into known column names."""
    header = text.split("\n", 1)[0]
    best = max(
        DELIMITERS,
        key=lambda d: sum(c.strip().strip('"').lower() in COLUMNS for c in header.split(d)),
    )
    return best


def _clean_text(raw: str) -> str:
    return unguard(raw.replace("\r\n", "\n").replace("\r", "\n").strip()).strip()


def read_sheet(text: str, name: str, knowledge: Knowledge) -> Sheet:
    """Parse and check the whole sheet; raises with every problem (CSV line numbers)."""
    problems: list[str] = []
    sheet = Sheet(name)
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARS))  # default is 128 KiB
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    domains = set(knowledge.domains)
    last_n: dict[tuple[str, str, str], float] = {}
    line_before = 0
    header: list[str] | None = None
    answer_lines: dict[tuple[str, str], int] = {}
    while True:
        start = line_before + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"{name}:{start}: not valid CSV ({exc}); check the quotes")
            break
        line_before = reader.line_num
        if header is None:
            header = [cell.strip().lower() for cell in row]
            missing = [c for c in REQUIRED if c not in header]
            twice = sorted({c for c in header if c and header.count(c) > 1})
            if missing or twice:
                problems.append(
                    f"{name}:{start}: the header must name the columns {', '.join(COLUMNS)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; twice: {', '.join(twice)}" if twice else "")
                )
                break
            continue
        if not any(cell.strip() for cell in row):
            continue  # an empty line, e.g. at the end
        if len(row) > len(header):
            problems.append(
                f"{name}:{start}: {len(row)} cells but the header has {len(header)}; "
                "a text with a comma or line break must be in double quotes"
            )
            continue
        cells = dict(zip(header, [*row, *[""] * (len(header) - len(row))], strict=True))
        intent_id = cells["intent"].strip()
        domain = cells.get("domain", "").strip()
        kind = KINDS.get(cells["kind"].strip().lower())
        language = cells["language"].strip().lower()
        position = cells.get("n", "").strip()
        body = _clean_text(cells["text"])
        where = f"{name}:{start}:"
        if domain and domain not in domains:
            problems.append(f"{where} unknown domain {domain!r}")
            continue
        if intent_id not in knowledge.intents:
            problems.append(
                f"{where} unknown intent id {intent_id!r}; import-csv only updates existing "
                "intents (add new ones in the YAML)"
            )
            continue
        home = knowledge.domain_of(intent_id).domain
        if domain and domain != home:
            problems.append(f"{where} intent {intent_id!r} is in domain {home!r}, not {domain!r}")
            continue
        if kind is None:
            problems.append(f"{where} kind must be 'example' or 'answer', not {cells['kind']!r}")
            continue
        if not LANGUAGE_CODE.match(language):
            problems.append(
                f"{where} {cells['language']!r} is not an ISO 639-1 language code "
                "such as nb, sv or en"
            )
            continue
        if position and not (position.isdigit() and int(position) > 0):
            problems.append(f"{where} n must be a position 1, 2, … or empty, not {position!r}")
            continue
        if not body:
            continue  # a placeholder nobody filled in
        if _CONTROL.search(body):
            char = _CONTROL.search(body)
            code = f"U+{ord(char.group()):04X}" if char else "?"
            problems.append(f"{where} the text contains a control character ({code}); remove it")
            continue
        group = (intent_id, language)
        if kind == "answer":
            if group in answer_lines:
                problems.append(
                    f"{where} a second {language} answer for {intent_id} "
                    f"(the first is on line {answer_lines[group]}); keep one"
                )
                continue
            answer_lines[group] = start
            sheet.answers[group] = Cell(start, body, (0, 0, start))
            continue
        counter_key = (intent_id, language, kind)
        if position:
            last_n[counter_key] = float(position)
            key = (float(position), 0, start)
        else:
            key = (last_n.get(counter_key, 0.0), 1, start)
        sheet.examples.setdefault(group, []).append(Cell(start, body, key))
    if header is None and not problems:
        problems.append(f"{name}:1: the file is empty; expected the header {', '.join(COLUMNS)}")
    if problems:
        raise SpreadsheetError(f"{name}: nothing was imported.", problems)
    for cells_of_group in sheet.examples.values():
        cells_of_group.sort(key=lambda c: c.key)
    return sheet


# --------------------------------------------------------------------------- write the YAML


def round_trip_yaml(indent: tuple[int, int, int]) -> YAML:
    """A ruamel round-trip dumper that keeps an owner's quoting and long lines."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1_000_000  # never re-wrap an owner's long lines
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    return yaml


def dump_yaml(yaml: YAML, data: Any) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def load_round_trip(text: str) -> tuple[YAML, Any]:
    """The file's data and the YAML settings that write it back (closest to) unchanged.

    The same approach as the dashboard's "copy to intent" (bot/admin/examples.py), which
    this package may not import.
    """
    best: tuple[int, YAML, Any] | None = None
    for indent in INDENTS:
        yaml = round_trip_yaml(indent)
        data = yaml.load(text)
        dumped = dump_yaml(yaml, data)
        if dumped == text:
            return yaml, data
        old, new = text.splitlines(), dumped.splitlines()
        changed = sum(a != b for a, b in zip(old, new, strict=False)) + abs(len(old) - len(new))
        if best is None or changed < best[0]:
            best = (changed, yaml, data)
    assert best is not None
    return best[1], best[2]


def _plain_is_string(text: str) -> bool:
    """Would the loader (PyYAML, YAML 1.1) read ``text`` unquoted as a string?

    ruamel writes YAML 1.2, where ``no``, ``on`` or ``2027-01-01`` are plain strings; the
    loader would read them as a boolean or a date and refuse the file.
    """
    resolved = pyyaml.resolver.Resolver().resolve(pyyaml.ScalarNode, text, (True, False))
    return resolved == _STR_TAG


def _scalar_like(reference: Any, text: str) -> Any:
    """``text`` as a one-line scalar quoted the way ``reference`` (a neighbour) is."""
    if isinstance(reference, SingleQuotedScalarString) and "\n" not in text:
        return SingleQuotedScalarString(text)
    if isinstance(reference, DoubleQuotedScalarString) or "\n" in text:
        return DoubleQuotedScalarString(text)
    if isinstance(reference, str) and _plain_is_string(text):
        return text  # plain like its neighbour; the emitter quotes it if it must
    return DoubleQuotedScalarString(text)


def _answer_like(reference: Any, text: str) -> Any:
    """An answer in the style of the old one (or a neighbour's): Markdown with line breaks
    becomes a ``|`` block (the emitter falls back to double quotes when a text cannot be a
    block, e.g. trailing spaces); one-line answers keep the neighbour's quoting."""
    if "\n" in text or isinstance(reference, LiteralScalarString | FoldedScalarString):
        return LiteralScalarString(text + "\n")
    return _scalar_like(reference, text)


@dataclass(frozen=True, slots=True)
class Change:
    """One group the import changed, for the report."""

    file: str
    intent: str
    kind: str
    language: str
    what: str

    def __str__(self) -> str:
        return f"{self.intent} {self.language} {self.kind}: {self.what}  ({self.file})"


@dataclass(slots=True)
class ImportResult:
    changes: list[Change]
    files: list[str]  # files rewritten (or that would be, on a dry run)
    dry_run: bool = False


def _describe(old: list[str], new: list[str]) -> str:
    if not old:
        return f"added (new language, {len(new)} example(s))"
    changed = sum(a != b for a, b in zip(old, new, strict=False))
    parts = [f"{len(old)} -> {len(new)} example(s)"]
    if changed:
        parts.append(f"{changed} changed")
    if len(new) > len(old):
        parts.append(f"{len(new) - len(old)} added")
    if len(new) < len(old):
        parts.append(f"{len(old) - len(new)} removed")
    return ", ".join(parts)


def _slot(container: CommentedMap | CommentedSeq) -> int:
    """Where ruamel keeps the comment *after* an entry: index 2 for a key, 0 for an item."""
    return 2 if isinstance(container, CommentedMap) else 0


def _take_trailing(container: CommentedMap | CommentedSeq, key: Any) -> CommentToken | None:
    """Detach what follows the entry ``key`` on later lines (blank lines, full-line comments).

    ruamel hangs the blank line and the comment *before the next intent* on the last entry
    above them. When an entry is appended after it, they must move to the new last entry,
    or the comment ends up in the middle ("# about b" above a's new language). A comment
    on the entry's own line stays where it is.
    """
    entry = container.ca.items.get(key)
    token = entry[_slot(container)] if entry else None
    if token is None or not token.value:
        return None
    value: str = token.value
    if value.startswith("#"):
        own, _, rest = value.partition("\n")
        if not rest:
            return None
        moved = copy.copy(token)
        moved.value = "\n" + rest  # the first break ends the new entry's own line
        token.value = own + "\n"
        return moved
    entry[_slot(container)] = None
    return token


def _give_trailing(
    container: CommentedMap | CommentedSeq, key: Any, token: CommentToken | None
) -> None:
    """Attach ``token`` (from :func:`_take_trailing`) after the entry ``key``."""
    if token is None:
        return
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    while len(entry) < 4:
        entry.append(None)
    present = entry[_slot(container)]
    if present is None:
        entry[_slot(container)] = token
    else:
        present.value = (present.value or "") + token.value


def _last_key(container: CommentedMap | CommentedSeq) -> Any:
    if isinstance(container, CommentedMap):
        return next(reversed(container), None) if len(container) else None
    return len(container) - 1 if len(container) else None


def _last_entries(container: CommentedMap | CommentedSeq) -> list[tuple[Any, Any]]:
    """(container, key) from ``container``'s last entry down to the innermost last entry of
    block collections below it: ruamel hangs trailing lines on the innermost one."""
    chain: list[tuple[Any, Any]] = []
    while isinstance(container, CommentedMap | CommentedSeq):
        key = _last_key(container)
        if key is None:
            break
        chain.append((container, key))
        value = container[key]
        if not isinstance(value, CommentedMap | CommentedSeq) or value.fa.flow_style():
            break
        container = value
    return chain


def _keeping_trailing(container: CommentedMap | CommentedSeq, change: Any) -> None:
    """Run ``change()`` on ``container`` and keep its trailing lines after the last entry."""
    trailing = None
    for inner, key in reversed(_last_entries(container)):
        trailing = _take_trailing(inner, key)
        if trailing is not None:
            break
    change()
    chain = _last_entries(container)
    if chain:
        _give_trailing(*chain[-1], trailing)


def _apply_examples(entry: CommentedMap, language: str, new: list[str]) -> None:
    examples = entry.get("examples")
    if not isinstance(examples, CommentedMap):
        raise SpreadsheetError(f"{entry.get('id')}: examples is not a mapping")
    phrases = examples.get(language)
    if isinstance(phrases, CommentedSeq):

        def update() -> None:
            for k, text in enumerate(new):
                if k < len(phrases):
                    if str(phrases[k]).strip() != text:
                        phrases[k] = _scalar_like(phrases[k], text)
                else:
                    phrases.append(_scalar_like(phrases[-1] if len(phrases) else None, text))
            del phrases[len(new) :]

        if len(phrases) == len(new):
            update()  # same length: items replaced in place, comments stay with them
        else:
            _keeping_trailing(phrases, update)
        return
    siblings = [v for v in examples.values() if isinstance(v, CommentedSeq) and len(v)]
    reference = siblings[0][0] if siblings else None
    seq = CommentedSeq([_scalar_like(reference, text) for text in new])
    if siblings and siblings[0].fa.flow_style():
        seq.fa.set_flow_style()

    def add() -> None:
        examples[language] = seq

    _keeping_trailing(examples, add)


def _apply_answer(entry: CommentedMap, language: str, text: str) -> None:
    answers = entry.get("answer")
    if not isinstance(answers, CommentedMap):
        raise SpreadsheetError(f"{entry.get('id')}: answer is not a mapping")
    old = answers.get(language)
    reference = old if old is not None else next(iter(answers.values()), None)
    if old is not None:
        answers[language] = _answer_like(reference, text)
        return

    def add() -> None:
        answers[language] = _answer_like(reference, text)

    _keeping_trailing(answers, add)


def atomic_write(path: Path, data: bytes) -> None:
    """Write beside ``path`` and rename over it (same file system: atomic), mode kept."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _validate_copy(folder: Path, new_texts: dict[Path, str]) -> list[str]:
    """Errors of the folder as it would be with ``new_texts`` written, on a temporary copy."""
    with tempfile.TemporaryDirectory(prefix="kollega-import-") as temp_name:
        copy = Path(temp_name) / folder.name
        shutil.copytree(folder, copy, symlinks=True)
        for path, text in new_texts.items():
            (copy / path.name).write_text(text, encoding="utf-8")
        result = load_folder(copy)
        return [str(p).replace(str(copy), str(folder)) for p in result.errors]


def import_csv(folder: Path, sheet_path: Path, dry_run: bool = False) -> ImportResult:
    """Update examples and answers of existing intents from the sheet; all or nothing."""
    folder, sheet_path = Path(folder), Path(sheet_path)
    knowledge = _load(folder)
    try:
        raw_sheet = sheet_path.read_bytes()
    except OSError as exc:
        raise SpreadsheetError(f"{sheet_path}: cannot be read: {exc.strerror}") from exc
    sheet = read_sheet(_decode(raw_sheet, str(sheet_path)), str(sheet_path), knowledge)

    # What differs from the folder, per intent.
    wanted: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)
    for (intent_id, lang), cells in sheet.examples.items():
        new = [c.text for c in cells]
        old = knowledge.intents[intent_id].examples.get(lang, [])
        if new != old:
            wanted[intent_id].append(("example", lang, (old, new)))
    for (intent_id, lang), cell in sheet.answers.items():
        old_answer = knowledge.intents[intent_id].answer.get(lang)
        if cell.text != old_answer:
            wanted[intent_id].append(("answer", lang, (old_answer, cell.text)))

    changes: list[Change] = []
    originals: dict[Path, bytes] = {}
    new_texts: dict[Path, str] = {}
    for path in knowledge_files(folder):
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        # Cheap filter: the file must at least mention an intent that changes.
        if not any(intent_id in text for intent_id in wanted):
            continue
        try:
            yaml, data = load_round_trip(text)
        except YAMLError as exc:  # the folder loaded a moment ago; someone is editing
            raise SpreadsheetError(f"{path}: cannot be read for writing: {exc}") from exc
        touched = False
        for entry in (data or {}).get("intents") or []:
            intent_id = str(entry.get("id", "")).strip() if isinstance(entry, CommentedMap) else ""
            for kind, lang, (old, new) in wanted.pop(intent_id, []):
                touched = True
                if kind == "example":
                    _apply_examples(entry, lang, new)
                    what = _describe(old, new)
                else:
                    _apply_answer(entry, lang, new)
                    what = "changed" if old is not None else "added (new language)"
                changes.append(Change(str(path), intent_id, kind, lang, what))
        if touched:
            dumped = dump_yaml(yaml, data)
            if dumped != text:
                originals[path] = raw
                new_texts[path] = dumped
    if wanted:  # an intent the models know but the round-trip reading did not find
        raise SpreadsheetError(f"could not find {', '.join(sorted(wanted))} in {folder}")

    if new_texts:
        problems = _validate_copy(folder, new_texts)
        if problems:
            raise SpreadsheetError(
                "the knowledge would not load after this import; nothing was written:", problems
            )
    if not dry_run:
        for path, raw in originals.items():
            if path.read_bytes() != raw:
                raise SpreadsheetError(f"{path} changed while importing; nothing was written")
        for path, text in new_texts.items():
            atomic_write(path, text.encode("utf-8"))
    return ImportResult(changes, [str(p) for p in new_texts], dry_run)
