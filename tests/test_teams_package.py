"""The Teams app package (deploy/teams/package.py) and the Adaptive Cards Teams is sent.

Teams rejects a package at upload, in the admin center, with a terse message, and renders
nothing for a card outside schema 1.5; both are checked here against offline copies of
Microsoft's schemas, so a broken package or card fails CI instead of an upload. The packager
is run as ops run it (a subprocess, settings from the environment) and in-process for the
finer cases. Icons are checked with Pillow, independently of the packager's own PNG reader.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft7Validator
from PIL import Image

from bot.cards import reply_card
from bot.settings import SUPPORTED_LANGUAGES
from dialogs.contact import ContactDialog
from dialogs.handoff import HandoffDialog
from dialogs.help import is_help_request
from dialogs.ticket_status import TicketStatusDialog
from dialogs.turn import Choice, Link, Message, Reply, User
from tests.schemas import assert_valid_adaptive_card

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "teams" / "package.py"
SCHEMA = REPO / "deploy" / "teams" / "schema" / "teams-manifest-v1.30.schema.json"
BOT_ID = "8c1c2f5e-3b7a-4c1e-9a51-2f0d6a1b9e42"
OTHER_BOT_ID = "0f9e8d7c-6b5a-4321-8fed-cba987654321"
ADDITIONAL = {"sv-SE", "da-DK", "fi-FI", "en-US", "nn-NO"}
# Every setting the packager reads, cleared so a developer's shell cannot change a test.
PACKAGE_VARIABLES = (
    "MicrosoftAppId",
    "APP_ID",
    "KOLLEGA_TEAMS_APP_ID",
    "KOLLEGA_TEAMS_APP_VERSION",
    "KOLLEGA_TEAMS_DEVELOPER_NAME",
    "KOLLEGA_TEAMS_WEBSITE_URL",
    "KOLLEGA_TEAMS_PRIVACY_URL",
    "KOLLEGA_TEAMS_TERMS_URL",
    "KOLLEGA_PUBLIC_URL",
    "KOLLEGA_DEFAULT_LANGUAGE",
)


@pytest.fixture(scope="module")
def package() -> ModuleType:
    """The packager as a module (it is a script in a folder that is not a package)."""
    spec = importlib.util.spec_from_file_location("kollega_teams_package", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment with the bot id set, run from an empty folder (no stray .env)."""
    for name in PACKAGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MicrosoftAppId", BOT_ID)
    yield monkeypatch


@pytest.fixture
def build(package: ModuleType, env: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Path]:
    """Build in-process with the current environment; returns the zip's path."""
    counter = iter(range(1000))

    def run() -> Path:
        out = tmp_path / f"kollega-{next(counter)}.zip"
        assert package.main(["--out", str(out)]) == 0
        return out

    return run


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_of(path: Path) -> dict[str, Any]:
    return json.loads(read_zip(path)["manifest.json"])


def run_script(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``python deploy/teams/package.py`` exactly as ops run it, from outside the repo."""
    environment = {k: v for k, v in os.environ.items() if k not in PACKAGE_VARIABLES}
    environment.update(variables)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "kollega.zip")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def schema_problems(manifest: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema, format_checker=None)
    return [f"{e.json_path}: {e.message}" for e in Draft7Validator(schema).iter_errors(manifest)]


# --- the package ------------------------------------------------------------------------------


def test_the_script_builds_a_package_teams_accepts(tmp_path: Path) -> None:
    done = run_script(tmp_path, MicrosoftAppId=BOT_ID)
    assert done.returncode == 0, done.stderr
    assert "KOLLEGA_TEAMS_WEBSITE_URL is not set" in done.stderr  # placeholders are announced
    files = read_zip(tmp_path / "kollega.zip")
    manifest = json.loads(files["manifest.json"])

    assert schema_problems(manifest) == []
    assert manifest["manifestVersion"] == "1.30"  # the schema's const, unseen by Draft 4
    assert manifest["$schema"].endswith("/teams/v1.30/MicrosoftTeams.schema.json")
    assert set(files) == {"manifest.json", "color.png", "outline.png"} | {
        f"{tag}.json" for tag in ADDITIONAL
    }
    bot = manifest["bots"][0]
    assert bot["botId"] == BOT_ID
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    assert [cl["scopes"] for cl in bot["commandLists"]] == [["personal"], ["team"], ["groupChat"]]
    assert bot["commandLists"][0]["commands"][0]["title"] == "hjelp"
    assert uuid.UUID(manifest["id"]) != uuid.UUID(BOT_ID)
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["validDomains"] == []
    assert manifest["developer"]["name"]
    assert manifest["name"]["short"] == "kollega"


def test_icons_follow_the_teams_rules(build: Callable[..., Path]) -> None:
    files = read_zip(build())
    color = Image.open(io.BytesIO(files["color.png"]))
    assert color.format == "PNG"
    assert color.size == (192, 192)
    assert len(set(color.convert("RGB").get_flattened_data())) > 2  # full colour, not blank

    outline = Image.open(io.BytesIO(files["outline.png"]))
    assert outline.format == "PNG"
    assert outline.size == (32, 32)
    pixels = list(outline.convert("RGBA").get_flattened_data())
    assert outline.mode in ("RGBA", "LA", "P")  # has transparency of its own
    not_white = [p for p in pixels if p[3] and p[:3] != (255, 255, 255)]
    assert not_white == [], "outline icon: only white and transparent pixels are allowed"
    assert any(p[3] == 0 for p in pixels), "outline icon needs a transparent background"
    assert any(p[3] == 255 for p in pixels), "outline icon is empty"


def test_localisation_files_cover_every_language_and_string(build: Callable[..., Path]) -> None:
    files = read_zip(build())
    manifest = json.loads(files["manifest.json"])
    info = manifest["localizationInfo"]
    assert info["defaultLanguageTag"] == "nb-NO"
    assert {entry["languageTag"] for entry in info["additionalLanguages"]} == ADDITIONAL

    commands = [cl["commands"] for cl in manifest["bots"][0]["commandLists"]]
    expected = {"name.short", "name.full", "description.short", "description.full"} | {
        f"bots[0].commandLists[{i}].commands[{j}].{field}"
        for i, listed in enumerate(commands)
        for j in range(len(listed))
        for field in ("title", "description")
    }
    for entry in info["additionalLanguages"]:
        strings = json.loads(files[entry["file"]])
        assert strings.pop("$schema").endswith("/v1.30/MicrosoftTeams.Localization.schema.json")
        assert set(strings) == expected, entry["file"]
        assert all(isinstance(v, str) and v.strip() for v in strings.values()), entry["file"]
        assert len(strings["name.short"]) <= 30
        assert len(strings["description.short"]) <= 80
    swedish = json.loads(files["sv-SE.json"])
    assert swedish["bots[0].commandLists[0].commands[0].title"] == "hjälp"


def test_rebuilding_keeps_the_app_id_and_the_bytes(
    build: Callable[..., Path], env: pytest.MonkeyPatch
) -> None:
    first, second = build(), build()
    assert manifest_of(first)["id"] == manifest_of(second)["id"]
    assert first.read_bytes() == second.read_bytes()

    env.setenv("MicrosoftAppId", OTHER_BOT_ID)
    assert manifest_of(build())["id"] != manifest_of(first)["id"]

    chosen = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    env.setenv("KOLLEGA_TEAMS_APP_ID", chosen)
    assert manifest_of(build())["id"] == chosen


def test_settings_fill_developer_domains_version_and_language(
    build: Callable[..., Path], env: pytest.MonkeyPatch
) -> None:
    env.setenv("KOLLEGA_TEAMS_DEVELOPER_NAME", "Eksempel kommune")
    env.setenv("KOLLEGA_TEAMS_WEBSITE_URL", "https://intranett.kommune.example/kollega")
    env.setenv("KOLLEGA_TEAMS_PRIVACY_URL", "https://kommune.example/personvern")
    env.setenv("KOLLEGA_TEAMS_TERMS_URL", "https://kommune.example/vilkar")
    env.setenv("KOLLEGA_PUBLIC_URL", "https://kollega.kommune.example:8443/")
    env.setenv("KOLLEGA_TEAMS_APP_VERSION", "1.4.0")
    env.setenv("KOLLEGA_DEFAULT_LANGUAGE", "sv")
    files = read_zip(build())
    manifest = json.loads(files["manifest.json"])

    assert schema_problems(manifest) == []
    assert manifest["developer"] == {
        "name": "Eksempel kommune",
        "websiteUrl": "https://intranett.kommune.example/kollega",
        "privacyUrl": "https://kommune.example/personvern",
        "termsOfUseUrl": "https://kommune.example/vilkar",
    }
    assert manifest["validDomains"] == ["kollega.kommune.example"]
    assert manifest["version"] == "1.4.0"
    info = manifest["localizationInfo"]
    assert info["defaultLanguageTag"] == "sv-SE"
    assert {e["languageTag"] for e in info["additionalLanguages"]} == ADDITIONAL - {"sv-SE"} | {
        "nb-NO"
    }
    assert "nb-NO.json" in files and "sv-SE.json" not in files
    assert manifest["bots"][0]["commandLists"][0]["commands"][0]["title"] == "hjälp"


def test_an_empty_app_id_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    done = run_script(tmp_path, MicrosoftAppId="")
    assert done.returncode == 1
    assert "MicrosoftAppId is empty" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "kollega.zip").exists()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MicrosoftAppId", "kollega-bot", "MicrosoftAppId must be a GUID"),
        ("KOLLEGA_TEAMS_APP_ID", "not-a-guid", "KOLLEGA_TEAMS_APP_ID must be a GUID"),
        ("KOLLEGA_TEAMS_APP_VERSION", "1.0", "KOLLEGA_TEAMS_APP_VERSION must look like"),
        ("KOLLEGA_TEAMS_PRIVACY_URL", "http://kommune.example", "must be an https:// URL"),
        ("KOLLEGA_PUBLIC_URL", "kollega.kommune.example", "KOLLEGA_PUBLIC_URL must be an https"),
        ("KOLLEGA_TEAMS_DEVELOPER_NAME", "x" * 33, "at most 32"),
        ("KOLLEGA_DEFAULT_LANGUAGE", "de", "invalid settings"),
    ],
)
def test_bad_settings_stop_the_build(
    package: ModuleType,
    env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    env.setenv(variable, value)
    out = tmp_path / "kollega.zip"
    assert package.main(["--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_schema_check_catches_what_teams_would_refuse(
    package: ModuleType, env: pytest.MonkeyPatch
) -> None:
    manifest = package.build(package.PackageSettings()).manifest
    assert package.schema_errors(manifest) == []

    wrong_version = {**manifest, "manifestVersion": "1.29"}
    assert any("manifestVersion" in p for p in package.schema_errors(wrong_version))
    too_long = {**manifest, "name": {"short": "k" * 31}}
    assert any("name.short" in p for p in package.schema_errors(too_long))
    extra = {**manifest, "botId": BOT_ID}
    assert any("botId" in p for p in package.schema_errors(extra))


def test_localisation_check_names_each_problem(package: ModuleType) -> None:
    assert set(package.LANGUAGE_TAGS) == set(SUPPORTED_LANGUAGES)
    expected = {"name.short", "description.short", "description.full", "name.full"}
    broken = {
        "name.short": "k" * 31,
        "description.short": "",
        "description.full": "Full.",
        "bots[0].commandLists[0].commands[12].title": "too far",
        "bots[0].commandLists[0].commands[0].title": "not in the template",
    }
    assert package.check_locale("xx-XX", broken, expected) == [
        "locales/xx-XX.json: name.short: 31 characters, at most 30",
        "locales/xx-XX.json: description.short: must be a non-empty string",
        "locales/xx-XX.json: bots[0].commandLists[0].commands[12].title: "
        "not a key the Teams localisation schema allows",
        "locales/xx-XX.json: bots[0].commandLists[0].commands[0].title: "
        "no such string in manifest.template.json",
        "locales/xx-XX.json: name.full: missing",
    ]


def test_icon_check_refuses_a_coloured_outline_and_wrong_sizes(package: ModuleType) -> None:
    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    blue_on_clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    blue_on_clear.paste((0, 90, 200, 255), (8, 8, 24, 24))
    assert any("neither white" in p for p in package.icon_errors("outline.png", png(blue_on_clear)))
    white_square = Image.new("RGB", (32, 32), (255, 255, 255))
    assert any("transparent" in p for p in package.icon_errors("outline.png", png(white_square)))
    assert package.icon_errors("color.png", png(Image.new("RGB", (96, 96), (31, 111, 139)))) == [
        "color.png: is 96x96, must be 192x192"
    ]
    assert package.icon_errors("outline.png", b"GIF89a") == [
        "outline.png: cannot read the PNG (not a PNG file)"
    ]


def test_the_png_reader_agrees_with_pillow(package: ModuleType) -> None:
    """The packager reads icons without Pillow; it must see what Pillow sees."""
    for name in ("color.png", "outline.png"):
        data = (SCRIPT.parent / name).read_bytes()
        pillow = list(Image.open(io.BytesIO(data)).convert("RGBA").get_flattened_data())
        assert package.read_png(data).pixels == pillow, name
    source = Image.open(SCRIPT.parent / "color.png")
    for mode in ("P", "L", "LA", "RGBA"):
        buffer = io.BytesIO()
        source.convert(mode).save(buffer, "PNG")
        expected = list(Image.open(buffer).convert("RGBA").get_flattened_data())
        assert package.read_png(buffer.getvalue()).pixels == expected, mode


def said(text: str) -> Message:
    """A command as Teams sends it when the user picks it: its title as the message text."""
    return Message(text=text, language="", user=User(channel="msteams"))


def test_every_command_in_every_language_is_understood_by_the_bot(
    build: Callable[..., Path],
) -> None:
    """A command Teams offers but the bot does not recognise would answer "I don't know"."""
    files = read_zip(build())
    manifest = json.loads(files["manifest.json"])
    default = {  # the manifest's own (nb-NO) titles, by the keys localisation files use
        f"bots[0].commandLists[{i}].commands[{j}].title": command["title"]
        for i, listed in enumerate(manifest["bots"][0]["commandLists"])
        for j, command in enumerate(listed["commands"])
    }
    languages = {"nb-NO": default} | {
        entry["languageTag"]: default | json.loads(files[entry["file"]])
        for entry in manifest["localizationInfo"]["additionalLanguages"]
    }
    for tag, strings in languages.items():
        titles = [
            [strings[f"bots[0].commandLists[{i}].commands[{j}].title"] for j in range(count)]
            for i, count in enumerate((6, 3, 3))
        ]
        help_, question, manager, owner, ticket, status = titles[0]
        assert is_help_request(help_), tag
        assert ContactDialog().recognise(said(manager)) == {"kind": "manager"}, tag
        assert (ContactDialog().recognise(said(owner)) or {}).get("kind") == "owner", tag
        assert HandoffDialog().recognise(said(ticket)) is not None, tag
        assert TicketStatusDialog().recognise(said(status)) is not None, tag
        # Team and group chat offer only what is fine to answer in front of others.
        assert titles[1] == titles[2] == [help_, question, owner], tag


# --- Adaptive Cards -----------------------------------------------------------------------------


def full_reply() -> Reply:
    """A reply using everything a card can carry: title, Markdown, links, choices, 👍/👎."""
    return Reply(
        markdown="**Glemt passord?**\n1. Åpne *selvbetjening*\n2. Velg nytt passord\n\nFerdig.",
        title="Passord",
        links=[
            Link("Selvbetjening", "https://passord.kommune.example"),
            Link("Brukerveiledning", "https://intranett.kommune.example/passord?lang=nb&v=2"),
        ],
        choices=[Choice("Sette opp MFA", "it.mfa_setup"), Choice("Noe annet", "other")],
        feedback_for="it.password_reset",
    )


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_answer_cards_are_valid_adaptive_cards_1_5(language: str) -> None:
    card = reply_card(full_reply(), language)
    assert_valid_adaptive_card(card)
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    titles = [action["title"] for action in card["actions"]]
    assert titles[:4] == ["Selvbetjening", "Brukerveiledning", "Sette opp MFA", "Noe annet"]
    assert len(titles) == 6 and all(titles)  # 👍/👎 in this language, never cut
    assert card["body"][0]["text"] == "Passord"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_cards_without_title_feedback_or_buttons_and_with_too_many_stay_valid(
    language: str,
) -> None:
    plain = reply_card(Reply("Bare tekst"), language)
    assert_valid_adaptive_card(plain)
    assert "actions" not in plain

    crowded = Reply(
        "Velg ett:",
        links=[Link(f"Lenke {i}", f"https://kommune.example/{i}") for i in range(5)],
        choices=[Choice(f"Valg {i}", f"choice:{i}") for i in range(5)],
        feedback_for="it.wifi",
    )
    card = reply_card(crowded, language)
    assert_valid_adaptive_card(card)
    assert len(card["actions"]) == 6  # Teams shows six; the rest would hide behind "…"
    assert card["actions"][-1]["data"]["msteams"]["text"] == "feedback:-1:it.wifi"

    no_feedback = reply_card(full_reply(), language, with_feedback_buttons=False)
    assert_valid_adaptive_card(no_feedback)
    assert all("feedback:" not in str(action) for action in no_feedback["actions"])
