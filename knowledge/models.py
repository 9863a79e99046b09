"""The knowledge file format content owners edit, as pydantic models.

The models are strict (unknown keys are errors) because a misspelt key such as
``exampels`` would otherwise silently drop an owner's work. Checks that span files
(unique ids, follow-ups that point somewhere) live in the loader, which knows lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
INTENT_ID = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _check_languages(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise ValueError("needs at least one language")
    for language in value:
        if not LANGUAGE_CODE.match(str(language)):
            raise ValueError(f"{language!r} is not an ISO 639-1 language code such as nb, sv or en")
    return value


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: NonEmptyText
    url: NonEmptyText

    @field_validator("url")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https", "mailto", "tel") or not (
            parts.netloc or parts.scheme in ("mailto", "tel")
        ):
            raise ValueError(f"{value!r} is not a valid link (expected https://…)")
        if any(ch.isspace() for ch in value):
            raise ValueError(f"{value!r} contains spaces")
        return value


class Intent(BaseModel):
    """One thing employees ask, how they ask it, and the answer, per language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(strip_whitespace=True, pattern=INTENT_ID.pattern)]
    examples: dict[str, list[NonEmptyText]]
    answer: dict[str, NonEmptyText]
    links: list[Link] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list)
    valid_until: date | None = None

    @field_validator("examples")
    @classmethod
    def _examples(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        _check_languages(value)
        for language, phrases in value.items():
            if not phrases:
                raise ValueError(f"the {language} examples are empty")
        return value

    @field_validator("answer")
    @classmethod
    def _answer(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_languages(value)

    def is_valid_on(self, day: date) -> bool:
        return self.valid_until is None or day <= self.valid_until


class DomainFile(BaseModel):
    """One YAML file: a domain (IT, HR …), its owner and its intents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]+$")]
    owner: NonEmptyText
    review_by: date | None = None
    intents: list[Intent] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Problem:
    """An error or warning an owner can act on: which file, which line, what is wrong."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Knowledge:
    """A loaded, validated knowledge folder. Immutable once built; a reload builds a new one."""

    domains: dict[str, DomainFile]
    articles: dict[str, str] = field(default_factory=dict)
    source: str = ""
    matcher: Any = None  # set by knowledge.index.prepare; the same one the bot and evaluate use
    access: Any = None  # knowledge.access.AccessRules from access.yaml; None = all see all
    language_profile: Any = None  # knowledge.language_profile.LanguageProfile, set by prepare

    @cached_property
    def intents(self) -> dict[str, Intent]:
        return {intent.id: intent for d in self.domains.values() for intent in d.intents}

    @cached_property
    def _domain_by_intent(self) -> dict[str, DomainFile]:
        return {intent.id: d for d in self.domains.values() for intent in d.intents}

    def domain_of(self, intent_id: str) -> DomainFile:
        return self._domain_by_intent[intent_id]

    def languages(self) -> set[str]:
        return {lang for intent in self.intents.values() for lang in intent.examples}
