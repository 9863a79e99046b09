"""The README is the ops interface: every setting the code reads is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        names = list(field.validation_alias.choices) if field.validation_alias else [name]
        if not any(f"`{n}`" in README for n in names):
            missing.append(names[0])
    assert not missing, f"document these in README.md's configuration table: {missing}"


def test_the_readme_starts_with_the_run_and_test_commands() -> None:
    blocks = re.findall(r"^```bash\n(.*?)^```", README, re.S | re.M)
    assert "python app.py" in blocks[0]
    assert "tests/run.sh" in blocks[1]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "tests/run.sh" in ci
