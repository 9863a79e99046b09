"""The knowledge folder's own language profile, and what it adds to the general detector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.language import LanguageGuesser
from bot.settings import SUPPORTED_LANGUAGES
from knowledge.language_profile import LanguageProfile
from knowledge.loader import load_folder

SAMPLE = Path(__file__).resolve().parents[1] / "knowledge" / "sample"
SAMPLE_TESTS = Path(__file__).resolve().parent / "data" / "sample_eval.jsonl"
_SAMPLE_PROFILE = LanguageProfile.build(load_folder(SAMPLE).knowledge)


@pytest.fixture(scope="module")
def profile() -> LanguageProfile:
    assert _SAMPLE_PROFILE is not None
    return _SAMPLE_PROFILE


def top(posterior: dict[str, float]) -> str:
    return max(posterior, key=posterior.__getitem__)


def test_it_knows_the_folders_languages(profile: LanguageProfile) -> None:
    assert set(profile.languages) >= {"nb", "sv", "da", "fi", "en"}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("trenger nytt passord", "nb"),
        ("jeg har brug for en ny adgangskode", "da"),
        ("jag behöver ett nytt lösenord", "sv"),
        ("tarvitsen uuden salasanan", "fi"),
        ("i need a new password", "en"),
    ],
)
def test_the_folders_words_tell_close_languages_apart(
    profile: LanguageProfile, text: str, language: str
) -> None:
    assert top(profile.posterior(text)) == language


def test_a_folder_in_one_language_has_no_profile(tmp_path: Path) -> None:
    (tmp_path / "it.yaml").write_text(
        "domain: it\nowner: IT <it@example.org>\nreview_by: 2030-01-01\nintents:\n"
        "  - id: it.vpn\n    examples: {en: [vpn is down]}\n    answer: {en: Restart it.}\n",
        encoding="utf-8",
    )
    assert LanguageProfile.build(load_folder(tmp_path).knowledge) is None


@given(st.text(max_size=2000))
def test_any_text_gets_a_distribution(text: str) -> None:
    profile = _SAMPLE_PROFILE
    assert profile is not None
    posterior = profile.posterior(text)
    assert set(posterior) == set(profile.languages)
    assert sum(posterior.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in posterior.values())


def test_blended_with_the_compact_detector_it_fixes_what_the_detector_gets_wrong(
    profile: LanguageProfile,
) -> None:
    guesser = LanguageGuesser("nb", SUPPORTED_LANGUAGES, compact=True)
    text = "husker ikke passordet mitt, hvordan får jeg et nytt"
    assert guesser.choose(text).language == "da"  # the compact detector alone
    assert guesser.choose(text, profile=profile).language == "nb"


def test_on_the_sample_test_phrases_it_makes_compact_at_least_as_good_as_accurate(
    profile: LanguageProfile,
) -> None:
    items = [json.loads(line) for line in SAMPLE_TESTS.read_text(encoding="utf-8").splitlines()]
    items = [item for item in items if item.get("lang")]
    compact = LanguageGuesser("nb", SUPPORTED_LANGUAGES, compact=True)
    accurate = LanguageGuesser("nb", SUPPORTED_LANGUAGES, compact=False)

    def right(guesser: LanguageGuesser, with_profile: bool) -> int:
        return sum(
            guesser.choose(i["text"], profile=profile if with_profile else None).language
            == i["lang"]
            for i in items
        )

    assert right(compact, True) > right(compact, False)
    assert right(compact, True) >= right(accurate, False)


def test_markup_links_and_addresses_do_not_vote_for_english(profile: LanguageProfile) -> None:
    guesser = LanguageGuesser("nb", SUPPORTED_LANGUAGES, compact=True)
    for text in (
        "<img src=x onerror=window.__pwned=5> hva er html",
        "hva betyr https://intranett.example.org/login?redirect=window.location",
        "hva skjer med e-posten til kari.nordmann@example.org",
    ):
        assert guesser.choose(text, None, "nb-NO", profile).language == "nb", text
