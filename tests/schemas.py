"""Check that a card we build is a valid Adaptive Card 1.5, the version Teams renders.

The schema is a byte-for-byte copy of microsoft/AdaptiveCards ``schemas/1.5.0/adaptive-card.json``
(MIT) kept in ``tests/schemas/`` so a CI clone without ``../shared`` can run the tests. It
does not require ``type`` or pin ``version``, so those are checked here in code.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator, FormatChecker

SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "adaptive-card-1.5.schema.json"


@lru_cache(maxsize=1)
def _validator() -> Draft6Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema, format_checker=FormatChecker())


def assert_valid_adaptive_card(card: dict[str, Any]) -> None:
    """Fail with every schema error listed, or if ``card`` is not an AdaptiveCard 1.5."""
    assert card.get("type") == "AdaptiveCard", f"type is {card.get('type')!r}"
    assert card.get("version") == "1.5", f"version is {card.get('version')!r}"
    errors = sorted(_validator().iter_errors(card), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<card>'}: {e.message}" for e in errors
    )
