"""What the bot says in its own voice, in every supported language.

Phrases live in ``dialogs/messages/*.yaml`` (one file per feature, so features can be
added without touching each other's text) as Jinja2 templates keyed by message id and
language. A missing translation falls back along ``FALLBACKS`` so a user never sees a
message id; a message id missing in every language is a programming error and raises.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"

# Nynorsk readers understand Bokmål best, Danes and Norwegians each other; English last.
FALLBACKS: dict[str, tuple[str, ...]] = {
    "nn": ("nn", "nb", "da", "sv", "en"),
    "nb": ("nb", "nn", "da", "sv", "en"),
    "da": ("da", "nb", "sv", "en"),
    "sv": ("sv", "nb", "da", "en"),
    "fi": ("fi", "sv", "en"),
    "en": ("en",),
}

_env = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


def language_chain(language: str) -> tuple[str, ...]:
    """The languages to try, best first, for a reader of ``language``."""
    return FALLBACKS.get(language, (language, "en"))


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, dict[str, str]]:
    catalogue: dict[str, dict[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, by_language in data.items():
            if key in catalogue:
                raise ValueError(f"{path.name}: message {key!r} is defined twice")
            catalogue[key] = {lang: str(text) for lang, text in by_language.items()}
    return catalogue


def text(key: str, language: str, **values: Any) -> str:
    """The message ``key`` for a reader of ``language``, with ``values`` filled in."""
    by_language = _catalogue()[key]
    for candidate in language_chain(language):
        if candidate in by_language:
            return _render(by_language[candidate], values)
    return _render(next(iter(by_language.values())), values)


@lru_cache(maxsize=512)
def _compiled(template: str):
    return _env.from_string(template)


def _render(template: str, values: dict[str, Any]) -> str:
    return _compiled(template).render(**values).strip()


def message_keys() -> set[str]:
    return set(_catalogue())
