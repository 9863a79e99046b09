"""Which language a reply is in: the text first, helped by the conversation and the locale."""

from __future__ import annotations

import pytest

from bot.language import LanguageGuesser, language_of_locale
from bot.settings import SUPPORTED_LANGUAGES

GUESSER = LanguageGuesser("nb", SUPPORTED_LANGUAGES)


@pytest.mark.parametrize(
    ("text", "previous", "locale", "expected"),
    [
        ("Jeg har glemt passordet mitt", None, "en-US", "nb"),  # text beats the locale
        ("hur återställer jag mitt lösenord", None, "nb-NO", "sv"),
        ("har glemt mit kodeord, hvordan får jeg et nyt", None, None, "da"),
        ("unohdin salasanani", "nb", "nb-NO", "fi"),
        ("I forgot my password", None, "nb-NO", "en"),
        ("vad kan du", "nb", None, "sv"),  # one word ("vad") is enough
        ("hvad kan du", "nb", "nb-NO", "da"),
        ("kopimaskinen spiser arkene", None, "nb-NO", "nb"),  # reads as both: the locale
        ("kopimaskinen spiser arkene", None, "da-DK", "da"),
        ("Teams", "sv", None, "sv"),  # a single word does not switch the conversation
        ("ok", "fi", None, "fi"),
        ("ok", None, "da-DK", "da"),
        ("", None, None, "nb"),  # nothing at all: the configured default
    ],
)
def test_reply_language(text: str, previous: str | None, locale: str | None, expected: str):
    assert GUESSER.choose(text, previous, locale).language == expected


def test_locales_map_to_supported_languages() -> None:
    assert language_of_locale("nb-NO", SUPPORTED_LANGUAGES) == "nb"
    assert language_of_locale("no", SUPPORTED_LANGUAGES) == "nb"
    assert language_of_locale("sv_SE", SUPPORTED_LANGUAGES) == "sv"
    assert language_of_locale("de-DE", SUPPORTED_LANGUAGES) is None
    assert language_of_locale("", SUPPORTED_LANGUAGES) is None
