"""The knowledge loader: every kind of error names its file and line in plain words."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.loader import load_folder
from knowledge.provider import KnowledgeProvider
from tests.conftest import SAMPLE_KNOWLEDGE

GOOD = """\
domain: it
owner: IT-servicedesk <servicedesk@example.org>
review_by: 2099-01-01
intents:
  - id: it.password_reset
    examples:
      nb: ["Jeg har glemt passordet mitt", "bytte passord"]
      en: ["I forgot my password"]
    answer:
      nb: "Gå til **minside**."
      en: "Open **My page**."
    links:
      - {title: "Passordhjelp", url: "https://intranett.example.org/passord"}
    follow_ups: [it.mfa_setup]
  - id: it.mfa_setup
    examples:
      nb: ["sette opp authenticator"]
    answer:
      nb: "Last ned **Authenticator**."
"""


def write(folder: Path, name: str, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


def only_error(folder: Path) -> tuple[str, int, str]:
    result = load_folder(folder)
    assert not result.ok and result.knowledge is None
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    problem = result.errors[0]
    return Path(problem.file).name, problem.line, problem.message


def error_with(folder: Path, words: str) -> tuple[str, int, str]:
    """The error that says ``words`` (a typo in a key also leaves a required key missing)."""
    result = load_folder(folder)
    assert not result.ok and result.knowledge is None
    problem = next((e for e in result.errors if words in e.message), None)
    assert problem is not None, [str(e) for e in result.errors]
    return Path(problem.file).name, problem.line, problem.message


def test_a_good_folder_loads(tmp_path: Path) -> None:
    write(tmp_path, "it.yaml", GOOD)
    result = load_folder(tmp_path)
    assert result.ok and not result.warnings
    assert set(result.knowledge.intents) == {"it.password_reset", "it.mfa_setup"}
    assert result.knowledge.domain_of("it.mfa_setup").owner.startswith("IT-servicedesk")


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (
            ('    examples:\n      nb: ["Jeg', '    exampels:\n      nb: ["Jeg'),
            6,
            "unknown key 'exampels'",
        ),
        (("  - id: it.mfa_setup", "  - id: it.password_reset"), 15, "already used at"),
        (("follow_ups: [it.mfa_setup]", "follow_ups: [it.nowhere]"), 14, "points to no intent"),
        (('      nb: ["sette opp authenticator"]', "      nb: []"), 16, "examples are empty"),
        (("https://intranett.example.org/passord", "intranett passord"), 13, "not a valid link"),
        (("review_by: 2099-01-01", "review_by: someday"), 3, "must be a date"),
        (('      en: "Open **My page**."\n', ""), 7, None),  # valid: answer missing in en
        (("owner: IT-servicedesk <servicedesk@example.org>\n", ""), 1, "missing 'owner'"),
        (('    answer:\n      nb: "Last', '    answr:\n      nb: "Last'), 18, "unknown key"),
        (("  - id: it.mfa_setup", "  - id: it mfa setup"), 15, "may only hold letters"),
        (('      nb: ["Jeg har', '      xx_1: ["Jeg har'), 6, "language code"),
        (("domain: it", "domain: it\ndomain: hr"), 2, "appears twice"),
        (('    answer:\n      nb: "Gå', '    answer:\n      nb: ["Gå'), 11, "YAML syntax error"),
    ],
)
def test_each_error_names_file_line_and_problem(
    tmp_path: Path, change: tuple[str, str], line: int, words: str | None
) -> None:
    old, new = change
    assert old in GOOD
    write(tmp_path, "it.yaml", GOOD.replace(old, new, 1))
    if words is None:
        result = load_folder(tmp_path)
        assert result.ok
        assert any("no answer in en" in w.message for w in result.warnings)
        return
    name, found_line, message = error_with(tmp_path, words)
    assert name == "it.yaml"
    assert words in message, message
    assert found_line == line, message


def test_duplicate_ids_across_files_and_domains(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD.replace("domain: it", "domain: other"))
    result = load_folder(tmp_path)
    assert not result.ok
    messages = [str(e) for e in result.errors]
    assert any("b.yaml:5:" in m and "already used at" in m and "a.yaml:5" in m for m in messages)
    write(tmp_path, "b.yaml", GOOD.replace("it.", "x."))
    result = load_folder(tmp_path)
    assert any("domain 'it' is already defined" in str(e) for e in result.errors)


def test_stale_review_and_expired_intents_are_warnings(tmp_path: Path) -> None:
    content = GOOD.replace("review_by: 2099-01-01", "review_by: 2020-01-01").replace(
        "    follow_ups: [it.mfa_setup]",
        "    follow_ups: [it.mfa_setup]\n    valid_until: 2021-01-01",
    )
    write(tmp_path, "it.yaml", content)
    result = load_folder(tmp_path, today=date(2026, 11, 23))
    assert result.ok
    warnings = [str(w) for w in result.warnings]
    assert any(":3:" in w and "review_by 2020-01-01 has passed" in w for w in warnings)
    assert any("expired" in w for w in warnings)


def test_empty_folder_missing_folder_and_not_a_mapping(tmp_path: Path) -> None:
    assert "no .yaml" in load_folder(tmp_path).errors[0].message
    assert "not a folder" in load_folder(tmp_path / "nope").errors[0].message
    write(tmp_path, "x.yaml", "- just\n- a list\n")
    assert "must be a mapping" in only_error(tmp_path)[2]
    (tmp_path / "x.yaml").write_bytes(b"domain: it\nowner: \xff\xfe\n")
    name, line, message = only_error(tmp_path)
    assert (name, line, message) == ("x.yaml", 2, "is not UTF-8 text")


def test_the_sample_knowledge_is_complete_in_five_languages() -> None:
    result = load_folder(SAMPLE_KNOWLEDGE)
    assert result.ok, [str(e) for e in result.errors]
    knowledge = result.knowledge
    assert len(knowledge.intents) >= 25
    assert {"it", "hr", "payroll", "travel"} <= set(knowledge.domains)
    for intent in knowledge.intents.values():
        for language in ("nb", "sv", "da", "fi", "en"):
            assert intent.examples.get(language), (intent.id, language)
            assert intent.answer.get(language), (intent.id, language)


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "knowledge", "validate", str(SAMPLE_KNOWLEDGE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "ok:" in ok.stdout
    write(tmp_path, "it.yaml", GOOD.replace("    examples:", "    exempels:", 1))
    bad = subprocess.run(
        [sys.executable, "-m", "knowledge", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "it.yaml:6: unknown key 'exempels'" in bad.stderr


async def test_a_broken_reload_keeps_the_last_good_knowledge(tmp_path: Path) -> None:
    path = write(tmp_path, "it.yaml", GOOD)
    provider = KnowledgeProvider(tmp_path)
    assert (await provider.reload()).ok
    first = provider.current
    path.write_text(GOOD.replace("domain: it", "domain: [it"), encoding="utf-8")
    result = await provider.reload()
    assert not result.ok and provider.current is first
    assert provider.last_errors and provider.last_errors[0].line == 2
    assert "YAML syntax error" in provider.last_errors[0].message
    path.write_text(GOOD.replace("Gå til **minside**.", "Ny tekst."), encoding="utf-8")
    assert (await provider.reload()).ok
    assert provider.current.intents["it.password_reset"].answer["nb"] == "Ny tekst."
    assert provider.version == 2


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.text(max_size=400) | st.binary(max_size=400))
def test_any_file_content_gives_errors_not_exceptions(tmp_path_factory, content) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "x.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    result = load_folder(folder)
    for problem in result.errors:
        assert problem.file.endswith("x.yaml") and problem.line >= 1 and problem.message
