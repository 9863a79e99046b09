"""Who may use kollega and which knowledge domains each audience sees: ``access.yaml``.

The file sits beside the domain files in the knowledge folder, is edited by the same
people and reviewed the same way, so it gets the same treatment: strict pydantic models
(an unknown key is an error, because a misspelt ``gruops`` would silently open or close a
domain), every problem reported with file and line, and all problems at once.

The format::

    who_may_use: everyone            # or: {groups: [<group object id>, ...], anonymous: true}
    contact: "IT-servicedesk <servicedesk@example.org>"   # who to ask for access
    audiences:
      - name: pilot-economy
        groups: [<entra group object id>]
        domains: [it, hr, payroll, travel, procurement]
      - name: employees
        groups: ["*"]                # any signed-in member of the home tenant (not guests)
        domains: [it, hr, payroll, travel]
      - name: guests
        guests: true                 # Entra B2B guests, and users of another tenant
        domains: [it]
      - name: anonymous
        anonymous: true              # web chat without sign-in, Workplace, Emulator
        domains: [it, travel]

How a user's domains are decided (the policy, in one place):

* Everyone is in exactly one *kind*: ``anonymous`` (the channel does not say who they are),
  ``guest`` or ``member``.
* ``who_may_use`` is the gate. ``everyone`` lets every kind through; ``{groups: [...]}``
  lets through members and guests in one of those groups (transitively), and anonymous
  users only when ``anonymous: true`` is added.
* A user sees the **union** of the domains of **every** audience they match, not the first
  match. Union is order-independent, so reordering the file can never take a domain away
  from anyone, and adding an audience can only widen access, never narrow it, which is
  what owners expect when they add a pilot group above ``employees``. It is also what
  makes failing closed exact: when the directory cannot be asked, the domains from the
  audiences that need no group lookup are a subset of the true answer, never more.
* Audiences match by exactly one selector: ``groups`` (Entra group object ids; ``"*"``
  means any signed-in member, never a guest), ``guests: true`` or ``anonymous: true``.
  A guest who is in a listed group does get that audience: group membership is a
  deliberate grant by an Entra administrator.
* A user who passes the gate but matches no audience sees nothing, and is told so like a
  user outside the pilot.
* A domain named by no audience is seen by nobody (a warning, not an error): that is how a
  new domain file stays dark until its audience is added.

Without an ``access.yaml`` everyone sees everything (``load_access`` returns ``None``).

This module is pure: it knows nothing of Graph, channels or the bot. ``bot.audience``
feeds it the user's kind and groups.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from knowledge.models import NonEmptyText, Problem

logger = logging.getLogger(__name__)

ACCESS_FILE = "access.yaml"
MAX_ACCESS_BYTES = 1_000_000
ANY_MEMBER = "*"
# Entra object ids are GUIDs; a group's display name pasted by mistake must be caught here.
GROUP_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
AUDIENCE_NAME = r"^[A-Za-z0-9_.-]+$"


class Kind(StrEnum):
    """What the channel tells about who is asking."""

    ANONYMOUS = "anonymous"
    GUEST = "guest"
    MEMBER = "member"


class Verdict(StrEnum):
    """Why a user got what they got; the turn glue chooses its words from this."""

    GRANTED = "granted"
    NOT_ALLOWED = "not_allowed"  # outside who_may_use, or in no audience
    UNVERIFIABLE = "unverifiable"  # the directory could not be asked and nothing is open


def _group_id(value: str, *, allow_any: bool) -> str:
    value = value.strip()
    if value == ANY_MEMBER:
        if not allow_any:
            raise ValueError("'*' is not allowed here: write who_may_use: everyone instead")
        return value
    if not GROUP_ID.match(value):
        raise ValueError(
            f"{value!r} is not a group id: use the group's Object ID from Entra ID "
            "(a GUID like 3f2c…-…), not its name"
        )
    return value.lower()


def _no_repeats(values: list[str], what: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)
    return values


class Gate(BaseModel):
    """``who_may_use: {groups: [...]}``: a pilot, by Entra group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[str] = Field(min_length=1)
    anonymous: bool = False  # anonymous channels may use the bot too (their own audience)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        return _no_repeats([_group_id(v, allow_any=False) for v in value], "group")


class Audience(BaseModel):
    """A set of users (by one selector) and the domains they see."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(strip_whitespace=True, pattern=AUDIENCE_NAME)]
    groups: list[str] | None = Field(default=None, min_length=1)
    guests: bool = False
    anonymous: bool = False
    domains: list[NonEmptyText] = Field(min_length=1)

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        ids = _no_repeats([_group_id(v, allow_any=True) for v in value], "group")
        if ANY_MEMBER in ids and len(ids) > 1:
            raise ValueError("'*' already means every signed-in member; list no ids beside it")
        return ids

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return _no_repeats(value, "domain")

    @model_validator(mode="after")
    def _one_selector(self) -> Audience:
        chosen = [
            key
            for key, on in (
                ("groups", self.groups is not None),
                ("guests", self.guests),
                ("anonymous", self.anonymous),
            )
            if on
        ]
        if len(chosen) != 1:
            raise ValueError(
                "an audience needs exactly one of 'groups', 'guests: true' or 'anonymous: true'"
                + (f" (it has {', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def any_member(self) -> bool:
        return self.groups == [ANY_MEMBER]

    @property
    def group_ids(self) -> frozenset[str]:
        """Specific group ids (not ``*``): the ones a directory lookup must confirm."""
        return frozenset(g for g in self.groups or () if g != ANY_MEMBER)


def _gate_tag(value: Any) -> str:
    return "everyone" if isinstance(value, str) else "groups"


WhoMayUse = Annotated[
    Annotated[Literal["everyone"], Tag("everyone")] | Annotated[Gate, Tag("groups")],
    Discriminator(_gate_tag),
]


@dataclass(frozen=True, slots=True)
class Decision:
    """What one user may see, as far as the rules and the known groups tell."""

    verdict: Verdict
    domains: frozenset[str] = frozenset()
    audiences: tuple[str, ...] = ()
    # The directory could not be asked: only the domains that need no lookup are granted,
    # and some the user may be entitled to are withheld for now.
    degraded: bool = False

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.GRANTED


class AccessRules(BaseModel):
    """A validated ``access.yaml``. Frozen: a reload builds a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    who_may_use: WhoMayUse
    contact: NonEmptyText
    audiences: list[Audience] = Field(min_length=1)

    @field_validator("who_may_use", mode="before")
    @classmethod
    def _everyone_spelt_right(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() != "everyone":
            raise ValueError("must be 'everyone' or a mapping {groups: [<group id>, ...]}")
        if not isinstance(value, str | dict):
            raise ValueError("must be 'everyone' or a mapping {groups: [<group id>, ...]}")
        return value.strip() if isinstance(value, str) else value

    @cached_property
    def referenced_groups(self) -> frozenset[str]:
        """Every specific group id the rules name: all a directory lookup needs to keep."""
        ids: set[str] = set()
        if isinstance(self.who_may_use, Gate):
            ids.update(self.who_may_use.groups)
        for audience in self.audiences:
            ids.update(audience.group_ids)
        return frozenset(ids)

    @cached_property
    def domains(self) -> frozenset[str]:
        return frozenset(d for a in self.audiences for d in a.domains)

    def needs_groups(self, kind: Kind) -> bool:
        """Whether deciding for this kind of user needs their groups from the directory."""
        if kind is Kind.ANONYMOUS:
            return False
        return bool(self.referenced_groups)

    def decide(self, kind: Kind, groups: Iterable[str] | None) -> Decision:
        """The decision for a user of ``kind`` in ``groups`` (None: could not be looked up).

        ``groups`` are compared case-insensitively; for a user whose groups do not matter
        (anonymous users, rules that name no group) it is ignored.
        """
        if kind is Kind.ANONYMOUS:
            gate_open = self.who_may_use == "everyone" or (
                isinstance(self.who_may_use, Gate) and self.who_may_use.anonymous
            )
            if not gate_open:
                return Decision(Verdict.NOT_ALLOWED)
            return self._granted([a for a in self.audiences if a.anonymous], degraded=False)

        known = None if groups is None else frozenset(g.lower() for g in groups)
        if known is None and not self.needs_groups(kind):
            known = frozenset()
        if isinstance(self.who_may_use, Gate):
            if known is None:
                return Decision(Verdict.UNVERIFIABLE, degraded=True)
            if not known & frozenset(self.who_may_use.groups):
                return Decision(Verdict.NOT_ALLOWED)

        certain = [a for a in self.audiences if self._matches_without_groups(a, kind)]
        if known is None:
            withheld = any(
                a.group_ids and not set(a.domains) <= {d for c in certain for d in c.domains}
                for a in self.audiences
            )
            decision = self._granted(certain, degraded=withheld)
            if not decision.allowed:
                return Decision(Verdict.UNVERIFIABLE, degraded=True)
            return decision
        by_group = [a for a in self.audiences if a.group_ids & known and a not in certain]
        return self._granted(certain + by_group, degraded=False)

    @staticmethod
    def _matches_without_groups(audience: Audience, kind: Kind) -> bool:
        if kind is Kind.GUEST:
            return audience.guests
        return kind is Kind.MEMBER and audience.any_member

    @staticmethod
    def _granted(audiences: list[Audience], *, degraded: bool) -> Decision:
        if not audiences:
            return Decision(Verdict.NOT_ALLOWED, degraded=degraded)
        return Decision(
            Verdict.GRANTED,
            frozenset(d for a in audiences for d in a.domains),
            tuple(a.name for a in audiences),
            degraded,
        )


def load_access(
    folder: Path | str, known_domains: Iterable[str]
) -> tuple[AccessRules | None, list[Problem], list[Problem]]:
    """Read ``access.yaml`` from ``folder``: (rules, errors, warnings).

    No file: ``(None, [], [])`` — everyone sees everything. Any error: rules are None and
    the caller must treat the whole knowledge load as failed, so the bot keeps its last
    good knowledge *and* access rules together (a broken access file must never fall back
    to "everyone sees everything").
    """
    # Imported here, not at the top: knowledge.loader calls this module from load_folder.
    from knowledge.loader import _duplicate_keys, _Lines, _parse_yaml

    path = Path(folder) / ACCESS_FILE
    display = str(path)
    if not path.exists():
        return None, [], []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(display, 1, f"cannot be read: {exc.strerror}")], []
    if len(raw) > MAX_ACCESS_BYTES:
        return None, [Problem(display, 1, "is larger than 1 MB")], []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(display, raw[: exc.start].count(b"\n") + 1, "is not UTF-8 text")], []
    try:
        node, data = _parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or "is not valid YAML"
        line = mark.line + 1 if mark else 1
        return None, [Problem(display, line, f"YAML syntax error: {reason}")], []
    except yaml.YAMLError as exc:
        return None, [Problem(display, 1, f"YAML error: {exc}")], []

    lines = _Lines(node)
    errors = [
        Problem(display, line, f"key {key!r} appears twice") for line, key in _duplicate_keys(node)
    ]
    if not isinstance(data, dict):
        errors.append(
            Problem(display, 1, "must be a mapping with who_may_use, contact and audiences")
        )
        return None, errors, []
    known = frozenset(known_domains)
    # The checks that need the folder run on the raw data, so a schema error elsewhere in
    # the file does not hide them: an owner fixes everything in one go.
    listed = _check_names_and_domains(data, lines, display, known, errors)
    try:
        rules = AccessRules.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = _without_tags(tuple(error["loc"]))
            errors.append(Problem(display, lines.line(loc), _message(error, loc)))
        rules = None
    warnings = [
        Problem(
            display,
            lines.line(("audiences",)),
            f"domain {domain!r} is in no audience: nobody sees it until one lists it",
        )
        for domain in sorted(known - listed)
    ]
    if errors or rules is None:
        return None, sorted(errors, key=lambda p: p.line), warnings
    return rules, [], warnings


def _check_names_and_domains(
    data: dict[str, Any], lines: Any, display: str, known: frozenset[str], errors: list[Problem]
) -> set[str]:
    """Duplicate audience names and domains the folder does not have; returns listed domains."""
    listed: set[str] = set()
    audiences = data.get("audiences")
    if not isinstance(audiences, list):
        return listed
    seen_names: dict[str, int] = {}
    for index, audience in enumerate(audiences):
        if not isinstance(audience, dict):
            continue
        name = audience.get("name")
        if isinstance(name, str) and name.strip():
            name_line = lines.line(("audiences", index, "name"))
            if name.strip() in seen_names:
                errors.append(
                    Problem(
                        display,
                        name_line,
                        f"audience name {name.strip()!r} is already used on line "
                        f"{seen_names[name.strip()]}",
                    )
                )
            else:
                seen_names[name.strip()] = name_line
        domains = audience.get("domains")
        if not isinstance(domains, list):
            continue
        for d_index, domain in enumerate(domains):
            if not isinstance(domain, str) or not domain.strip():
                continue
            listed.add(domain.strip())
            if domain.strip() not in known:
                errors.append(
                    Problem(
                        display,
                        lines.line(("audiences", index, "domains", d_index)),
                        f"domain {domain.strip()!r} is not in this knowledge folder "
                        f"(known: {', '.join(sorted(known)) or 'none'})",
                    )
                )
    return listed


def _without_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic puts a discriminated union's tag in the error path; the YAML has no such key."""
    if len(loc) >= 2 and loc[0] == "who_may_use" and loc[1] in ("everyone", "groups"):
        return (loc[0], *loc[2:])
    return loc


def _plain_message(error: dict[str, Any]) -> str:
    from knowledge.loader import _plain

    return _plain(error)


def _message(error: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """The loader's plain wording, naming the list a bad item sits in rather than its index."""
    named = loc
    while named and isinstance(named[-1], int):
        named = named[:-1]
    return _plain_message({**error, "loc": named})
