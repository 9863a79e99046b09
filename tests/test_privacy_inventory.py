"""docs/privacy.md keeps up with the database: every table and column is in its inventory.

A data protection officer reads docs/privacy.md to assess what kollega stores. A column
added without a line there would make that document quietly wrong, so this test imports
every module that declares a table (found by looking for ``Table(`` in the source, not by
a list someone must remember to extend), collects the columns of ``bot.db.metadata`` and
compares them with the rows of the machine-checked section, both ways.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from bot.db import metadata

ROOT = Path(__file__).resolve().parent.parent
PRIVACY = ROOT / "docs" / "privacy.md"
PACKAGES = ("bot", "adapters", "dialogs", "knowledge")
SECTION = "## Database inventory (machine-checked)"
# Tables in the database that are not kollega's models.
OUTSIDE_METADATA = frozenset({"alembic_version"})
_TABLE_CALL = re.compile(r"\bTable\(\s*\n?\s*[\"']")
_ROW = re.compile(
    r"^\|\s*`(?P<table>[a-z_][a-z0-9_]*)\.(?P<column>[a-z_][a-z0-9_]*)`\s*\|(?P<rest>.*)$"
)
_PATH = re.compile(
    r"`((?:bot|adapters|dialogs|knowledge|tests|docs|deploy)/[\w./-]+\.(?:py|md|yaml))`"
)


def modules_declaring_tables() -> list[str]:
    """Every module of kollega's packages whose source declares a SQLAlchemy ``Table``."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if _TABLE_CALL.search(path.read_text(encoding="utf-8")):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def model_columns() -> set[tuple[str, str]]:
    importlib.import_module("bot.schema")
    for module in modules_declaring_tables():
        importlib.import_module(module)
    return {
        (table.name, column.name) for table in metadata.tables.values() for column in table.columns
    }


def documented_rows() -> dict[tuple[str, str], list[str]]:
    text = PRIVACY.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/privacy.md lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], list[str]] = {}
    for line in section.splitlines():
        match = _ROW.match(line.strip())
        if match:
            key = (match["table"], match["column"])
            assert key not in rows, f"{key[0]}.{key[1]} is listed twice"
            rows[key] = [cell.strip() for cell in match["rest"].strip().strip("|").split("|")]
    return rows


def test_tables_are_found_by_looking_not_by_a_list() -> None:
    modules = modules_declaring_tables()
    for expected in ("bot.analytics", "bot.storage", "bot.ticket_registry", "bot.audit"):
        assert expected in modules


def test_every_table_and_column_is_in_the_inventory() -> None:
    missing = sorted(model_columns() - set(documented_rows()))
    assert not missing, (
        "docs/privacy.md does not list these columns; add a row for each to its "
        f"'{SECTION[3:]}' section (what it holds, personal?, retention, enforced by): "
        + ", ".join(f"{t}.{c}" for t, c in missing)
    )


def test_the_inventory_lists_nothing_that_does_not_exist() -> None:
    models = model_columns()
    stale = sorted(
        key for key in documented_rows() if key not in models and key[0] not in OUTSIDE_METADATA
    )
    assert not stale, "docs/privacy.md lists columns no model has: " + ", ".join(
        f"{t}.{c}" for t, c in stale
    )


def test_every_row_says_what_personal_how_long_and_which_code() -> None:
    for (table, column), cells in documented_rows().items():
        assert len(cells) == 4, f"{table}.{column}: expected 4 cells after the column"
        holds, personal, retention, enforced = cells
        assert holds and retention, f"{table}.{column}: say what it holds and how long"
        assert personal in {"–", "-", "E", "A"} or personal.startswith(("E ", "A ", "– ")), (
            f"{table}.{column}: 'personal?' must be –, E or A"
        )
        assert _PATH.search(enforced), f"{table}.{column}: name the code that enforces it"


@pytest.mark.parametrize("path", sorted(set(_PATH.findall(PRIVACY.read_text(encoding="utf-8")))))
def test_cited_code_exists(path: str) -> None:
    assert (ROOT / path).is_file(), f"docs/privacy.md cites {path}, which does not exist"
