"""The owners' knowledge tools: ``stats``, ``conflicts``, ``export-csv`` and ``import-csv``.

Each command is run once as owners run it (``python -m knowledge …`` in a subprocess, exit
status and output) and otherwise through its functions. Folders are written into
``tmp_path`` or copied there: the repo's sample knowledge is never modified.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.conflicts import find_conflicts, normalise
from knowledge.loader import load_folder
from knowledge.spreadsheet import (
    COLUMNS,
    SpreadsheetError,
    export_csv,
    export_rows,
    guard,
    import_csv,
    unguard,
    write_csv,
)
from knowledge.stats import compute_stats, render

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "knowledge" / "sample"

IT_YAML = """\
# IT domain for the tools' tests. This comment must survive an import.
domain: it
owner: IT <it@example.org>
review_by: 2020-01-01   # long past: stale
intents:
  - id: it.password
    examples:
      nb: ["glemt passord", "nytt passord"]
      en: ["forgot password"]
    answer:
      nb: "Gå til minside."
      en: "Go to my page."
    links:
      - {title: "Passord", url: "https://example.org/passord"}
    follow_ups: [it.vpn]
  - id: it.vpn
    examples:
      nb: ["vpn virker ikke"]
    answer:
      nb: |
        Start VPN.
        Logg inn.
    valid_until: 2021-01-01
"""

HR_YAML = """\
domain: hr
owner: HR <hr@example.org>
review_by: 2099-01-01
intents:
  - id: hr.leave
    examples:
      nb: ["ferie", "søke ferie"]
      sv: ["semester"]
      en: ["holiday"]
    answer:
      nb: "Søk i portalen."
"""


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knowledge", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def models(folder: Path) -> dict[str, object]:
    result = load_folder(folder)
    assert result.ok and result.knowledge is not None, result.errors
    return {name: d.model_dump() for name, d in result.knowledge.domains.items()}


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "tiny", {"it.yaml": IT_YAML, "hr.yaml": HR_YAML})


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "sample"))


# --------------------------------------------------------------------------- stats


def test_stats_counts_gaps_and_dates_on_a_tiny_folder(tiny: Path) -> None:
    result = load_folder(tiny, today=date(2026, 1, 1))
    assert result.knowledge is not None
    stats = compute_stats(result.knowledge, tiny, date(2026, 1, 1))

    assert stats.languages == ["en", "nb", "sv"]
    assert stats.intents == 3 and stats.examples == 8
    it = next(d for d in stats.domains if d.domain == "it")
    assert it.intents == 2
    assert (it.languages["nb"].intents, it.languages["nb"].examples) == (2, 3)
    assert it.languages["nb"].answers == 2
    assert (it.languages["en"].intents, it.languages["en"].answers) == (1, 1)
    assert "sv" not in it.languages
    assert stats.totals["sv"].examples == 1 and stats.totals["sv"].answers == 0
    assert stats.totals["nb"].examples == 5

    missing = {m.intent: (m.examples, m.answer) for m in stats.missing_translations}
    assert missing == {
        "hr.leave": ([], ["en", "sv"]),
        "it.password": (["sv"], ["sv"]),
        "it.vpn": (["en", "sv"], ["en", "sv"]),
    }
    vpn = next(m for m in stats.missing_translations if m.intent == "it.vpn")
    assert vpn.file == str(tiny / "it.yaml")
    assert vpn.line == line_of(tiny / "it.yaml", "id: it.vpn")

    assert [(s.domain, s.review_by, s.line) for s in stats.stale_reviews] == [
        ("it", "2020-01-01", 4)
    ]
    assert stats.stale_reviews[0].days_overdue == (date(2026, 1, 1) - date(2020, 1, 1)).days
    [expired] = stats.expired_intents
    assert (expired.intent, expired.valid_until) == ("it.vpn", "2021-01-01")
    assert expired.line == line_of(tiny / "it.yaml", "valid_until")

    text = render(stats)
    assert "it.vpn: no examples in en, sv; no answer in en, sv" in text
    assert f"{tiny / 'it.yaml'}:4" in text
    json.dumps(stats.to_dict())  # the --json shape is serialisable


def test_stats_on_the_sample_agrees_with_the_loader() -> None:
    result = load_folder(SAMPLE)
    assert result.knowledge is not None
    stats = compute_stats(result.knowledge, SAMPLE, date(2026, 1, 1))
    k = result.knowledge
    assert stats.intents == len(k.intents) == sum(d.intents for d in stats.domains)
    assert stats.examples == sum(len(p) for i in k.intents.values() for p in i.examples.values())
    assert set(stats.languages) == {"nb", "sv", "da", "fi", "en"}
    for lang in stats.languages:
        assert stats.totals[lang].answers == sum(lang in i.answer for i in k.intents.values())
    assert not stats.stale_reviews and not stats.expired_intents


def test_stats_cli_json_on_the_sample_and_exit_codes(tmp_path: Path) -> None:
    done = run_cli("stats", str(SAMPLE), "--json", "--today", "2030-01-01")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["intents"] == 33 and report["examples"] == 1757
    assert {d["domain"] for d in report["domains"]} == {"hr", "it", "payroll", "travel"}
    assert len(report["stale_reviews"]) == 4  # every sample domain is due by 2030
    assert report["totals"]["nb"]["answers"] == 33

    human = run_cli("stats", str(SAMPLE))
    assert human.returncode == 0 and "Missing translations" in human.stdout

    broken = write_folder(tmp_path / "broken", {"it.yaml": "domain: it\nowner: x\nintents: []\n"})
    failed = run_cli("stats", str(broken))
    assert failed.returncode == 1
    assert f"{broken / 'it.yaml'}:3:" in failed.stderr


# --------------------------------------------------------------------------- conflicts

CONFLICT_A = """\
domain: a
owner: A <a@example.org>
intents:
  - id: a.reset
    examples:
      en:
        - "How do I reset my password?"
        - "i forgot my password please help me"
        - "printer is out of paper"
        - "Printer is out of paper!"
      nb:
        - "vpn"
    answer:
      en: "Reset."
  - id: a.canteen
    examples:
      en:
        - "where is the canteen"
    answer:
      en: "Ground floor."
"""
CONFLICT_B = """\
domain: b
owner: B <b@example.org>
intents:
  - id: b.locked
    examples:
      en:
        - "how do i reset my password"
        - "I forgot my passwords, please help me!"
        - "my account is locked"
      sv:
        - "vpn"
    answer:
      en: "Unlock."
"""


def test_normalise_folds_case_punctuation_and_spaces() -> None:
    assert normalise("  How do I  reset\tmy PASSWORD?! ") == "how do i reset my password"
    assert normalise("Glemt «passord» …") == "glemt passord"


def test_conflicts_finds_planted_duplicates_with_files_and_lines(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "k", {"a.yaml": CONFLICT_A, "b.yaml": CONFLICT_B})
    result = load_folder(folder)
    assert result.knowledge is not None, result.errors

    found = find_conflicts(result.knowledge, folder, 0.8)
    # exactly two pairs: the exact duplicate first, then the near one. Not reported: the
    # repeat inside a.reset, and "vpn" in nb (a) and sv (b), which are different languages.
    assert [(c.a.intent, c.b.intent, c.exact, c.language) for c in found] == [
        ("a.reset", "b.locked", True, "en"),
        ("a.reset", "b.locked", False, "en"),
    ]

    near = found[-1]
    assert 0.8 <= near.similarity < 1.0
    assert near.a.text == "i forgot my password please help me"
    assert near.a.file == str(folder / "a.yaml")
    assert near.a.line == line_of(folder / "a.yaml", "i forgot my password please")
    assert near.b.text == "I forgot my passwords, please help me!"
    assert near.b.file == str(folder / "b.yaml")
    assert near.b.line == line_of(folder / "b.yaml", "I forgot my passwords")
    exact = found[0]
    assert exact.similarity == 1.0
    assert exact.a.line == line_of(folder / "a.yaml", "How do I reset my password?")
    assert exact.b.line == line_of(folder / "b.yaml", "how do i reset my password")

    # a higher threshold keeps only the exact duplicate
    assert [c.exact for c in find_conflicts(result.knowledge, folder, 0.99)] == [True]

    done = run_cli("conflicts", str(folder), "--json")
    assert done.returncode == 1, done.stderr
    payload = json.loads(done.stdout)
    assert payload["count"] == 2 and payload["exact"] == 1
    assert payload["conflicts"][1]["b"]["line"] == near.b.line
    human = run_cli("conflicts", str(folder))
    assert f"{folder / 'b.yaml'}:{near.b.line}:" in human.stdout


def test_conflicts_finds_nothing_on_a_clean_folder(tiny: Path) -> None:
    result = load_folder(tiny)
    assert result.knowledge is not None
    assert find_conflicts(result.knowledge, tiny) == []
    done = run_cli("conflicts", str(tiny))
    assert done.returncode == 0, done.stderr
    assert "No examples" in done.stdout
    missing = run_cli("conflicts", str(tiny / "nowhere"))
    assert missing.returncode == 2


# --------------------------------------------------------------------------- CSV


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))


def test_export_import_round_trip_changes_no_byte(sample_copy: Path, tmp_path: Path) -> None:
    before = snapshot(sample_copy)
    sheet = tmp_path / "sample.csv"
    done = run_cli("export-csv", str(sample_copy), str(sheet))
    assert done.returncode == 0, done.stderr
    rows = read_csv(sheet)
    assert tuple(rows[0]) == COLUMNS
    assert b"\r\n" in sheet.read_bytes()
    multi = [r for r in rows if r[2] == "answer" and "\n" in r[5]]
    assert multi, "the sample's Markdown answers span lines"

    done = run_cli("import-csv", str(sample_copy), str(sheet))
    assert done.returncode == 0, done.stderr
    assert "no changes" in done.stdout
    assert snapshot(sample_copy) == before


def test_editing_one_translation_changes_exactly_that(sample_copy: Path, tmp_path: Path) -> None:
    before_models = models(sample_copy)
    before = snapshot(sample_copy)
    sheet = tmp_path / "sample.csv"
    export_csv(sample_copy, sheet)
    rows = read_csv(sheet)
    new_answer = '**Ny tekst** for VPN:\n1. Koble til.\n2. Ferdig, "sitat" og # tegn: ok'
    for row in rows:
        if row[1:4] == ["it.vpn", "answer", "fi"]:
            row[5] = new_answer
        if row[1:5] == ["it.vpn", "example", "sv", "2"]:
            row[5] = "min bärbara, kommer inte åt vpn: #hjälp"
    write_rows(sheet, rows)

    result = import_csv(sample_copy, sheet)
    assert [(c.intent, c.kind, c.language) for c in result.changes] == [
        ("it.vpn", "example", "sv"),
        ("it.vpn", "answer", "fi"),
    ]
    assert result.files == [str(sample_copy / "it.yaml")]
    after = snapshot(sample_copy)
    assert {n for n in after if after[n] != before[n]} == {"it.yaml"}

    after_models = models(sample_copy)
    vpn = next(i for i in after_models["it"]["intents"] if i["id"] == "it.vpn")
    old_vpn = next(i for i in before_models["it"]["intents"] if i["id"] == "it.vpn")
    assert vpn["answer"]["fi"] == new_answer
    assert vpn["examples"]["sv"][1] == "min bärbara, kommer inte åt vpn: #hjälp"
    # put the two old texts back: everything else must be exactly as before
    vpn["answer"]["fi"] = old_vpn["answer"]["fi"]
    vpn["examples"]["sv"][1] = old_vpn["examples"]["sv"][1]
    assert after_models == before_models

    # The text diff is those two texts and nothing else (comments, quoting, layout kept).
    old_text, new_text = before["it.yaml"].decode(), after["it.yaml"].decode()
    diff = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(), n=0))
    removed = {line[1:] for line in diff if line.startswith("-") and not line.startswith("---")}
    added = {line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")}
    sv_old = next(line for line in old_text.splitlines() if "min laptop kommer inte åt vpn" in line)
    fi_old = {"        " + line for line in old_vpn["answer"]["fi"].splitlines()}
    assert removed == {sv_old} | fi_old
    sv_new = sv_old.replace(
        "min laptop kommer inte åt vpn", "min bärbara, kommer inte åt vpn: #hjälp"
    )
    assert added == {sv_new} | {"        " + line for line in new_answer.splitlines()}


def test_import_adds_a_new_language_and_keeps_other_keys(tiny: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "nn.csv"
    write_rows(
        sheet,
        [
            list(COLUMNS),
            ["it", "it.password", "example", "nn", "1", "gløymt passord"],
            ["it", "it.password", "example", "nn", "", "nytt passord, takk"],
            ["it", "it.password", "answer", "nn", "", "- Gå til minside.\n- Vel *nytt passord*."],
            ["hr", "hr.leave", "answer", "sv", "", "'=SUM(A1)"],  # guarded formula
        ],
    )
    result = import_csv(tiny, sheet)
    assert {(c.intent, c.kind, c.language) for c in result.changes} == {
        ("it.password", "example", "nn"),
        ("it.password", "answer", "nn"),
        ("hr.leave", "answer", "sv"),
    }
    k = load_folder(tiny).knowledge
    assert k is not None
    password = k.intents["it.password"]
    assert password.examples["nn"] == ["gløymt passord", "nytt passord, takk"]
    assert password.answer["nn"] == "- Gå til minside.\n- Vel *nytt passord*."
    assert password.links[0].url == "https://example.org/passord"
    assert password.follow_ups == ["it.vpn"]
    assert k.intents["hr.leave"].answer["sv"] == "=SUM(A1)"
    text = (tiny / "it.yaml").read_text(encoding="utf-8")
    assert text.startswith("# IT domain for the tools' tests.")
    assert "review_by: 2020-01-01   # long past: stale" in text
    assert 'nn: ["gløymt passord", "nytt passord, takk"]' in text  # flow list like siblings


def test_export_guards_formulas_and_adds_placeholders(tiny: Path) -> None:
    k = load_folder(tiny).knowledge
    assert k is not None
    rows = export_rows(k)
    placeholders = [r for r in rows if r[5] == ""]
    assert ["it", "it.vpn", "example", "en", "", ""] in placeholders
    assert ["hr", "hr.leave", "answer", "sv", "", ""] in placeholders
    assert not [r for r in export_rows(k, placeholders=False) if r[5] == ""]
    assert {r[3] for r in export_rows(k, languages={"sv"})} == {"sv"}
    for text in ("=1+1", "-list", "+47", "@me", "'quoted", "plain"):
        assert unguard(guard(text)) == text
    assert guard("- item") == "'- item" and guard("plain") == "plain"


def test_import_errors_name_csv_lines_and_write_nothing(tiny: Path, tmp_path: Path) -> None:
    before = snapshot(tiny)
    sheet = tmp_path / "bad.csv"
    write_rows(
        sheet,
        [
            list(COLUMNS),
            ["it", "it.password", "example", "nb", "1", "fine\nover two lines"],  # lines 2-3
            ["it", "it.nowhere", "example", "nb", "1", "x"],  # line 4
            ["xx", "it.password", "answer", "nb", "", "x"],  # line 5
            ["hr", "it.password", "answer", "nb", "", "x"],  # line 6
            ["it", "it.password", "translation", "nb", "", "x"],  # line 7
            ["it", "it.password", "answer", "norsk", "", "x"],  # line 8
            ["it", "it.password", "example", "nb", "first", "x"],  # line 9
            ["it", "it.password", "answer", "en", "", "one"],  # line 10
            ["it", "it.password", "answer", "en", "", "two"],  # line 11
        ],
    )
    with pytest.raises(SpreadsheetError) as caught:
        import_csv(tiny, sheet)
    problems = caught.value.problems
    name = str(sheet)
    assert f"{name}:4: unknown intent id 'it.nowhere'" in problems[0]
    assert problems[1].startswith(f"{name}:5: unknown domain 'xx'")
    assert problems[2].startswith(f"{name}:6: intent 'it.password' is in domain 'it'")
    assert problems[3].startswith(f"{name}:7: kind must be")
    assert problems[4].startswith(f"{name}:8: 'norsk' is not an ISO 639-1")
    assert problems[5].startswith(f"{name}:9: n must be")
    assert problems[6].startswith(f"{name}:11: a second en answer")
    assert len(problems) == 7
    assert snapshot(tiny) == before

    done = run_cli("import-csv", str(tiny), str(sheet))
    assert done.returncode == 1
    assert f"{name}:4: unknown intent id" in done.stderr
    assert snapshot(tiny) == before


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b'"domain","intent","kind","language","n","text"\r\n"it","it.password","ex', 2, "CSV"),
        (b'"domain","intent","kind"\r\n"it","it.password","example"\r\n', 1, "missing"),
        (
            b'"domain","intent","kind","language","n","text"\r\n"it","it.password",'
            b'"example","nb","1","a","b"\r\n',
            2,
            "7 cells",
        ),
        (
            b'"intent","kind","language","text"\r\n"it.password","example","nb","caf\xe9"\r\n',
            2,
            "UTF-8",
        ),
        (b"", 1, "empty"),
    ],
)
def test_malformed_csv_gives_line_numbers(
    tiny: Path, tmp_path: Path, content: bytes, line: int, message: str
) -> None:
    before = snapshot(tiny)
    sheet = tmp_path / "bad.csv"
    sheet.write_bytes(content)
    with pytest.raises(SpreadsheetError) as caught:
        import_csv(tiny, sheet)
    assert f"{sheet}:{line}:" in str(caught.value)
    assert message in str(caught.value)
    assert snapshot(tiny) == before


def test_semicolon_sheet_without_bom_is_read(tiny: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "excel.csv"
    sheet.write_text(
        "domain;intent;kind;language;n;text\r\nit;it.password;example;en;1;lost my password\r\n",
        encoding="utf-8",
    )
    result = import_csv(tiny, sheet)
    assert [c.what for c in result.changes] == ["1 -> 1 example(s), 1 changed"]
    k = load_folder(tiny).knowledge
    assert k is not None and k.intents["it.password"].examples["en"] == ["lost my password"]


def test_result_that_would_not_load_writes_nothing(tiny: Path, tmp_path: Path) -> None:
    before = snapshot(tiny)
    sheet = tmp_path / "huge.csv"
    huge = "x" * 5_100_000  # the loader refuses files over 5 MB
    write_rows(sheet, [list(COLUMNS), ["it", "it.password", "answer", "en", "", huge]])
    with pytest.raises(SpreadsheetError) as caught:
        import_csv(tiny, sheet)
    assert "would not load" in caught.value.message
    assert f"{tiny / 'it.yaml'}:1: is larger than 5 MB" in caught.value.problems[0]
    assert snapshot(tiny) == before


def test_import_into_a_folder_that_does_not_load_is_refused(tiny: Path, tmp_path: Path) -> None:
    (tiny / "zz.yaml").write_text(HR_YAML.replace("domain: hr", "domain: zz"), encoding="utf-8")
    before = snapshot(tiny)  # hr.leave is now defined twice
    sheet = tmp_path / "ok.csv"
    write_rows(sheet, [list(COLUMNS), ["it", "it.password", "answer", "en", "", "New."]])
    with pytest.raises(SpreadsheetError) as caught:
        import_csv(tiny, sheet)
    assert "does not load" in caught.value.message
    assert snapshot(tiny) == before


def test_yaml_look_alikes_stay_strings(tiny: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "tricky.csv"
    tricky = ["no", "yes", "2027-01-01", "1.5", "null", "~", "#hashtag", "key: value", "[x]"]
    rows = [list(COLUMNS)]
    rows += [["hr", "hr.leave", "example", "sv", str(n), t] for n, t in enumerate(tricky, 1)]
    write_rows(sheet, rows)
    import_csv(tiny, sheet)
    k = load_folder(tiny).knowledge
    assert k is not None and k.intents["hr.leave"].examples["sv"] == tricky


TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(list("\"',;#:\n\t-=+@|>*&!%[]{}` ")),
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: bool(s.strip()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=TEXT, answer=TEXT)
def test_any_text_survives_export_and_import(example: str, answer: str) -> None:
    with tempfile.TemporaryDirectory() as temp:
        folder = write_folder(Path(temp) / "k", {"it.yaml": IT_YAML, "hr.yaml": HR_YAML})
        sheet = Path(temp) / "in.csv"
        write_csv(
            [
                ["it", "it.password", "example", "nb", "1", "glemt passord"],
                ["it", "it.password", "example", "nb", "2", guard(example)],
                ["hr", "hr.leave", "answer", "sv", "", guard(answer)],
            ],
            sheet,
        )
        import_csv(folder, sheet)
        k = load_folder(folder).knowledge
        assert k is not None
        assert k.intents["it.password"].examples["nb"] == ["glemt passord", example.strip()]
        assert k.intents["hr.leave"].answer["sv"] == answer.strip()

        exported = Path(temp) / "out.csv"
        export_csv(folder, exported)
        rows = {(r[1], r[2], r[3], r[4]): unguard(r[5]) for r in read_csv(exported)[1:]}
        assert rows[("it.password", "example", "nb", "2")] == example.strip()
        assert rows[("hr.leave", "answer", "sv", "")] == answer.strip()

        before = snapshot(folder)
        assert import_csv(folder, exported).changes == []
        assert snapshot(folder) == before


COMMENTED = """\
domain: x
owner: X <x@example.org>
intents:
  - id: x.a
    examples:
      en: ["alpha"]
    answer:
      en: |
        Line one.
        Line two.

  # a comment about x.b
  - id: x.b
    examples:
      en:
        - beta
        - gamma   # about gamma

    answer:
      en: Plain answer.
"""


def test_appending_keeps_blank_lines_and_comments_in_place(tmp_path: Path) -> None:
    """ruamel hangs the lines before the next intent on the last entry; appending after it
    must not drag "# a comment about x.b" into x.a."""
    folder = write_folder(tmp_path / "k", {"x.yaml": COMMENTED})
    sheet = tmp_path / "in.csv"
    write_rows(
        sheet,
        [
            ["intent", "kind", "language", "text"],
            ["x.a", "answer", "nn", "Linje ein.\nLinje to."],
            ["x.b", "example", "en", "beta"],
            ["x.b", "example", "en", "gamma"],
            ["x.b", "example", "en", "delta"],
            ["x.b", "example", "nn", "beta nn"],
        ],
    )
    import_csv(folder, sheet)
    assert (folder / "x.yaml").read_text(encoding="utf-8") == COMMENTED.replace(
        "        Line two.\n",
        "        Line two.\n      nn: |\n        Linje ein.\n        Linje to.\n",
    ).replace(
        "        - gamma   # about gamma\n",
        "        - gamma   # about gamma\n        - delta\n      nn:\n        - beta nn\n",
    )
