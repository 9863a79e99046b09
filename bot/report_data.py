"""The figures of the daily report and the dashboard, computed from ``analytics_events``.

One function, :func:`collect`, feeds the CLI report, the HTML/Markdown rendering, the
dashboard and its JSON API, so owners see the same numbers wherever they look.

Counting rules (the report's legend repeats them):

* volume: every turn except the welcome and 👍/👎 clicks, which are not questions;
* answer rate: answered / (answered + offered_choices + fallback);
* unanswered: fallback turns, plus offered_choices turns where the user picked none of the
  choices (the next turn in the same conversation was not a choice button); the button
  codes themselves (``none``, ``ask:…``) are never shown as questions.

Counts are grouped per UTC hour in SQL (portable between SQLite and PostgreSQL) and put
into local hours and days in Python; every Nordic zone is a whole number of hours from
UTC, so no hour is split.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from bot.analytics import events
from bot.report_cluster import Asked, Cluster, cluster_questions
from bot.retention import as_utc, day_bounds
from dialogs.turn import Outcome
from knowledge.loader import knowledge_files, load_file

logger = logging.getLogger(__name__)

TREND_DAYS = 30
MAX_PERIOD_DAYS = 366
TOP_INTENTS = 15
MAX_CLUSTERS = 50
CHOICE_PICK_MINUTES = 30  # a choice button pressed later than this is a new question
NOT_VOLUME = (str(Outcome.WELCOME), str(Outcome.FEEDBACK))
RATE_OUTCOMES = (str(Outcome.ANSWERED), str(Outcome.CHOICES), str(Outcome.FALLBACK))
_BUTTON_CODE = re.compile(r"^(?:ask:[\w.\-]+|none|handoff|feedback:[+-]1:[\w.\-]+)$")


@dataclass(slots=True)
class IntentCount:
    intent: str
    domain: str
    count: int


@dataclass(slots=True)
class IntentFeedback:
    intent: str
    up: int
    down: int


@dataclass(slots=True)
class DayTrend:
    day: date
    volume: int
    answered: int
    choices: int
    fallback: int

    @property
    def answer_rate(self) -> float | None:
        return answer_rate(self.answered, self.choices, self.fallback)


@dataclass(slots=True)
class StaleDomain:
    domain: str
    owner: str
    file: str
    review_by: date | None
    expired_intents: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Figures:
    """Everything a report shows for one period (``start``..``end`` inclusive, local days)."""

    start: date
    end: date
    timezone: str
    domain: str | None
    volume: int = 0
    conversations: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    hours: dict[str, list[int]] = field(default_factory=dict)  # channel -> 24 local hours
    top_intents: list[IntentCount] = field(default_factory=list)
    feedback: list[IntentFeedback] = field(default_factory=list)
    unanswered_total: int = 0
    unanswered: list[Cluster] = field(default_factory=list)
    stale: list[StaleDomain] = field(default_factory=list)
    knowledge_problems: list[str] = field(default_factory=list)
    trend: list[DayTrend] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return self.outcomes.get(str(Outcome.ANSWERED), 0)

    @property
    def choices(self) -> int:
        return self.outcomes.get(str(Outcome.CHOICES), 0)

    @property
    def fallback(self) -> int:
        return self.outcomes.get(str(Outcome.FALLBACK), 0)

    @property
    def answer_rate(self) -> float | None:
        return answer_rate(self.answered, self.choices, self.fallback)

    @property
    def hours_total(self) -> list[int]:
        return [sum(by_hour[h] for by_hour in self.hours.values()) for h in range(24)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``GET /api/admin/report``."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone,
            "domain": self.domain,
            "volume": self.volume,
            "conversations": self.conversations,
            "outcomes": self.outcomes,
            "answered": self.answered,
            "offered_choices": self.choices,
            "fallback": self.fallback,
            "answer_rate": self.answer_rate,
            "channels": self.channels,
            "languages": self.languages,
            "hours": self.hours,
            "top_intents": [asdict(i) for i in self.top_intents],
            "feedback": [asdict(f) for f in self.feedback],
            "unanswered_total": self.unanswered_total,
            "unanswered": [c.to_dict() for c in self.unanswered],
            "stale": [
                {**asdict(s), "review_by": s.review_by.isoformat() if s.review_by else None}
                for s in self.stale
            ],
            "knowledge_problems": self.knowledge_problems,
            "trend": [
                {
                    "day": t.day.isoformat(),
                    "volume": t.volume,
                    "answered": t.answered,
                    "offered_choices": t.choices,
                    "fallback": t.fallback,
                    "answer_rate": t.answer_rate,
                }
                for t in self.trend
            ],
        }


def answer_rate(answered: int, choices: int, fallback: int) -> float | None:
    """answered / (answered + offered_choices + fallback); None when nothing was asked."""
    asked = answered + choices + fallback
    return answered / asked if asked else None


def _hour_bucket(engine: AsyncEngine) -> ColumnElement[Any]:
    """occurred_at cut to the UTC hour, in SQL, per dialect."""
    if engine.dialect.name == "postgresql":
        return func.date_trunc(literal_column("'hour'"), events.c.occurred_at)
    return func.strftime("%Y-%m-%d %H:00:00", events.c.occurred_at)


def _parse_bucket(value: Any) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _domain_filter(domain: str | None) -> ColumnElement[bool] | None:
    """A domain's events; choice turns carry only the top intent, named ``domain.…``."""
    if not domain:
        return None
    return or_(
        events.c.domain == domain,
        and_(events.c.domain.is_(None), events.c.intent.startswith(f"{domain}.", autoescape=True)),
    )


def _where(start: datetime, end: datetime, domain: str | None) -> list[ColumnElement[bool]]:
    conditions = [events.c.occurred_at >= start, events.c.occurred_at < end]
    extra = _domain_filter(domain)
    if extra is not None:
        conditions.append(extra)
    return conditions


def _domain_of(intent: str | None, domain: str | None) -> str:
    return domain or (intent.split(".", 1)[0] if intent and "." in intent else "")


async def collect(
    engine: AsyncEngine,
    start: date,
    end: date | None = None,
    *,
    zone: tzinfo,
    domain: str | None = None,
    knowledge_dir: Path | str | None = None,
    today: date | None = None,
) -> Figures:
    """The figures for local days ``start``..``end`` (inclusive), optionally for one domain."""
    end = end or start
    if end < start:
        start, end = end, start
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ValueError(f"a period may span at most {MAX_PERIOD_DAYS} days")
    since, _ = day_bounds(start, zone)
    _, until = day_bounds(end, zone)
    figures = Figures(start=start, end=end, timezone=str(zone), domain=domain or None)
    where = _where(since, until, domain)
    hour = _hour_bucket(engine).label("hour")

    async with engine.connect() as conn:
        by_hour = (
            await conn.execute(
                select(hour, events.c.channel, events.c.outcome, func.count().label("n"))
                .where(*where)
                .group_by(hour, events.c.channel, events.c.outcome)
            )
        ).all()
        languages = (
            await conn.execute(
                select(events.c.language, func.count().label("n"))
                .where(*where, events.c.outcome.not_in(NOT_VOLUME))
                .group_by(events.c.language)
            )
        ).all()
        figures.conversations = int(
            (
                await conn.execute(
                    select(func.count(func.distinct(events.c.conversation_hash))).where(
                        *where, events.c.outcome.not_in(NOT_VOLUME)
                    )
                )
            ).scalar_one()
        )
        intents = (
            await conn.execute(
                select(events.c.intent, events.c.domain, func.count().label("n"))
                .where(
                    *where, events.c.outcome == str(Outcome.ANSWERED), events.c.intent.is_not(None)
                )
                .group_by(events.c.intent, events.c.domain)
            )
        ).all()
        votes = (
            await conn.execute(
                select(events.c.intent, events.c.feedback, func.count().label("n"))
                .where(
                    *where,
                    events.c.outcome == str(Outcome.FEEDBACK),
                    events.c.feedback.is_not(None),
                    events.c.intent.is_not(None),
                )
                .group_by(events.c.intent, events.c.feedback)
            )
        ).all()
        # Everything needed to tell unanswered turns: fallbacks, choices, and choice presses.
        unanswered_rows = (
            await conn.execute(
                select(
                    events.c.id,
                    events.c.occurred_at,
                    events.c.outcome,
                    events.c.language,
                    events.c.intent,
                    events.c.domain,
                    events.c.question,
                    events.c.conversation_hash,
                )
                .where(
                    events.c.occurred_at >= since,
                    events.c.occurred_at < until,
                    or_(
                        events.c.outcome.in_((str(Outcome.FALLBACK), str(Outcome.CHOICES))),
                        and_(
                            events.c.outcome == str(Outcome.ANSWERED),
                            events.c.question.startswith("ask:"),
                        ),
                    ),
                )
                .order_by(events.c.conversation_hash, events.c.occurred_at, events.c.id)
            )
        ).all()
        trend_start = end - timedelta(days=TREND_DAYS - 1)
        trend_since, _ = day_bounds(trend_start, zone)
        trend_rows = (
            await conn.execute(
                select(hour, events.c.outcome, func.count().label("n"))
                .where(*_where(trend_since, until, domain))
                .group_by(hour, events.c.outcome)
            )
        ).all()

    hours: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    outcomes: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for row in by_hour:
        outcomes[row.outcome] += row.n
        if row.outcome in NOT_VOLUME:
            continue
        local_hour = _parse_bucket(row.hour).astimezone(zone).hour
        hours[row.channel][local_hour] += row.n
        channels[row.channel] += row.n
    figures.outcomes = dict(sorted(outcomes.items()))
    figures.channels = dict(sorted(channels.items(), key=lambda kv: (-kv[1], kv[0])))
    figures.hours = {channel: hours[channel] for channel in figures.channels}
    figures.volume = sum(channels.values())
    figures.languages = dict(
        sorted(((r.language, r.n) for r in languages), key=lambda kv: (-kv[1], kv[0]))
    )

    merged: Counter[tuple[str, str]] = Counter()
    for row in intents:
        merged[(row.intent, _domain_of(row.intent, row.domain))] += row.n
    figures.top_intents = [
        IntentCount(intent, dom, n)
        for (intent, dom), n in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_INTENTS]
    ]
    thumbs: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in votes:
        thumbs[row.intent][0 if row.feedback > 0 else 1] += row.n
    figures.feedback = [
        IntentFeedback(intent, up, down)
        for intent, (up, down) in sorted(
            thumbs.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])
        )
    ]

    asked = _unanswered(unanswered_rows, domain)
    figures.unanswered_total = len(asked)
    figures.unanswered = cluster_questions(asked)[:MAX_CLUSTERS]
    figures.trend = _trend(trend_rows, trend_start, end, zone)
    if knowledge_dir is not None:
        stale, problems = await asyncio.to_thread(
            stale_knowledge, Path(knowledge_dir), today or date.today(), domain
        )
        figures.stale, figures.knowledge_problems = stale, problems
    return figures


def _unanswered(rows: list[Any], domain: str | None) -> list[Asked]:
    """Fallbacks and unpicked choices, in conversation order (rows sorted by hash, time)."""
    asked: list[Asked] = []
    for index, row in enumerate(rows):
        question = (row.question or "").strip()
        if not question or _BUTTON_CODE.match(question):
            continue  # a "none" press: its question was the choice turn before it
        if row.outcome == str(Outcome.CHOICES) and _picked(row, rows[index + 1 : index + 2]):
            continue
        if row.outcome not in (str(Outcome.FALLBACK), str(Outcome.CHOICES)):
            continue
        if domain and _domain_of(row.intent, row.domain) != domain:
            continue  # rows are not filtered by domain in SQL: a choice needs its next turn
        asked.append(Asked(question, row.language, row.intent, row.outcome))
    return asked


def _picked(choice: Any, following: list[Any]) -> bool:
    """Whether the turn after a choice turn, in the same conversation, pressed a choice."""
    if not following or not choice.conversation_hash:
        return False
    nxt = following[0]
    if nxt.conversation_hash != choice.conversation_hash:
        return False
    if nxt.outcome != str(Outcome.ANSWERED):
        return False
    gap = as_utc(nxt.occurred_at) - as_utc(choice.occurred_at)
    return gap <= timedelta(minutes=CHOICE_PICK_MINUTES)


def _trend(rows: list[Any], first: date, last: date, zone: tzinfo) -> list[DayTrend]:
    days = {
        first + timedelta(days=i): DayTrend(first + timedelta(days=i), 0, 0, 0, 0)
        for i in range((last - first).days + 1)
    }
    for row in rows:
        day = _parse_bucket(row.hour).astimezone(zone).date()
        trend = days.get(day)
        if trend is None:
            continue
        if row.outcome not in NOT_VOLUME:
            trend.volume += row.n
        if row.outcome == str(Outcome.ANSWERED):
            trend.answered += row.n
        elif row.outcome == str(Outcome.CHOICES):
            trend.choices += row.n
        elif row.outcome == str(Outcome.FALLBACK):
            trend.fallback += row.n
    return list(days.values())


def stale_knowledge(
    folder: Path, today: date, domain: str | None = None
) -> tuple[list[StaleDomain], list[str]]:
    """Domains whose ``review_by`` has passed (and their expired intents), per file.

    Files are read one by one so a broken file elsewhere does not hide a stale one; the
    broken file's problems are returned for the report to show.
    """
    stale: list[StaleDomain] = []
    problems: list[str] = []
    if not folder.is_dir():
        return stale, [f"{folder}: is not a folder"]
    for path in knowledge_files(folder):
        parsed, _, found = load_file(path, path.name)
        problems.extend(str(p) for p in found)
        if parsed is None or (domain and parsed.domain != domain):
            continue
        expired = [i.id for i in parsed.intents if not i.is_valid_on(today)]
        overdue = parsed.review_by is not None and parsed.review_by < today
        if overdue or expired:
            stale.append(
                StaleDomain(parsed.domain, parsed.owner, path.name, parsed.review_by, expired)
            )
    return stale, problems
