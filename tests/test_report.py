"""The daily report: figures on a seeded database (SQLite and PostgreSQL), grouping of
unanswered questions, rendering, the CLI, and posting to a Teams channel.

Seeded events are placed around the Oslo midnight on purpose: the report's day is a local
day, and SQLite keeps no offsets, so a wrong conversion shows up as an event in the wrong
day or hour.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.schema  # noqa: F401 - declares every table on bot.db.metadata
from bot.analytics import events
from bot.db import create_engine, metadata
from bot.report import render_html, render_markdown, render_teams, write_files
from bot.report_chart import trend_png
from bot.report_cluster import Asked, cluster_questions, similarity
from bot.report_data import collect, stale_knowledge
from bot.report_targets import (
    NotAChannel,
    chosen_targets,
    clean_reference,
    load_report_targets,
    post_report_to_teams,
    remember_report_target,
    report_targets,
)
from bot.settings import REPO_ROOT
from tests.conftest import SAMPLE_KNOWLEDGE, payload
from tests.fakes.connector import FakeConnector
from tests.fakes.databases import database_engine, database_url  # noqa: F401

OSLO = ZoneInfo("Europe/Oslo")
DAY = date(2026, 11, 20)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """A local Oslo time, stored as UTC the way the analytics writer stores it."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def event(moment: datetime, outcome: str, **values: Any) -> dict[str, Any]:
    row = {
        "occurred_at": moment,
        "channel": "msteams",
        "language": "nb",
        "outcome": outcome,
        "intent": None,
        "domain": None,
        "score": None,
        "feedback": None,
        "question": None,
        "conversation_hash": None,
    }
    row.update(values)
    return row


SEED = [
    # the day, Oslo time
    event(at(0, 30), "answered", intent="it.password_reset", domain="it", question="passord"),
    event(at(9, 5), "answered", intent="it.password_reset", domain="it", question="glemt passord"),
    event(at(9, 7), "answered", intent="it.password_reset", domain="it", question="nytt passord"),
    event(
        at(14, 0),
        "answered",
        intent="hr.sick_leave",
        domain="hr",
        channel="webchat",
        language="sv",
        question="sjukanmälan",
    ),
    # a choice that was picked (the next turn in the conversation pressed ask:)
    event(
        at(10, 0),
        "offered_choices",
        intent="it.account_locked",
        question="kontoen",
        conversation_hash="a",
    ),
    event(
        at(10, 1),
        "answered",
        intent="it.account_locked",
        domain="it",
        question="ask:it.account_locked",
        conversation_hash="a",
    ),
    # a choice where the user pressed "none of these": unanswered, its question counts once
    event(
        at(10, 5),
        "offered_choices",
        intent="it.vpn",
        question="vpn eller wifi",
        conversation_hash="b",
    ),
    event(at(10, 6), "fallback", question="none", conversation_hash="b"),
    # plain fallbacks: three wordings of one gap, and one other gap
    event(at(11, 0), "fallback", domain="it", intent=None, question="skriveren virker ikke"),
    event(at(11, 10), "fallback", domain="it", question="skriveren virker ikke"),
    event(
        at(11, 20),
        "fallback",
        domain="it",
        question="Skriveren min virker ikke!",
        channel="webchat",
    ),
    event(at(12, 0), "fallback", question="hvor er kantina [phone]"),
    # feedback and a welcome: not volume
    event(at(9, 6), "feedback", intent="it.password_reset", domain="it", feedback=-1),
    event(at(9, 8), "feedback", intent="it.password_reset", domain="it", feedback=1),
    event(at(14, 1), "feedback", intent="hr.sick_leave", domain="hr", feedback=1),
    event(at(8, 0), "welcome"),
    # just outside the day on both sides (local midnight, not UTC midnight)
    event(at(23, 59, DAY - timedelta(days=1)), "fallback", question="i går"),
    event(at(0, 0, DAY + timedelta(days=1)), "fallback", question="i morgen"),
    # earlier days, for the trend
    event(
        at(12, 0, DAY - timedelta(days=3)), "answered", intent="it.vpn", domain="it", question="vpn"
    ),
    event(at(12, 0, DAY - timedelta(days=3)), "fallback", question="noe annet"),
    event(
        at(12, 0, DAY - timedelta(days=40)),
        "answered",
        intent="it.vpn",
        domain="it",
        question="gammel",
    ),
]


async def seed(engine: AsyncEngine, rows: list[dict[str, Any]] = SEED) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(events), rows)


@pytest.fixture
async def seeded(database_engine: AsyncEngine) -> AsyncEngine:  # noqa: F811
    await seed(database_engine)
    return database_engine


@pytest.fixture
def stale_folder(tmp_path: Path) -> Path:
    """The sample knowledge with IT's review date in the past and one intent expired."""
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    it = folder / "it.yaml"
    it.write_text(
        it.read_text(encoding="utf-8")
        .replace("review_by: 2027-06-01", "review_by: 2026-01-01", 1)
        .replace(
            "    follow_ups: [it.account_locked, it.mfa_setup]\n",
            "    follow_ups: [it.account_locked, it.mfa_setup]\n    valid_until: 2026-06-30\n",
            1,
        ),
        encoding="utf-8",
    )
    return folder


# --- figures ------------------------------------------------------------------------------


async def test_figures_of_a_day(seeded: AsyncEngine, stale_folder: Path) -> None:
    figures = await collect(seeded, DAY, zone=OSLO, knowledge_dir=stale_folder, today=DAY)

    assert figures.outcomes == {
        "answered": 5,
        "feedback": 3,
        "fallback": 5,
        "offered_choices": 2,
        "welcome": 1,
    }
    assert figures.volume == 12  # welcome and 👍/👎 are not questions
    assert (figures.answered, figures.choices, figures.fallback) == (5, 2, 5)
    assert figures.answer_rate == pytest.approx(5 / 12)
    assert figures.channels == {"msteams": 10, "webchat": 2}
    assert figures.hours["msteams"][0] == 1  # 00:30 local, 23:30 UTC the day before
    assert figures.hours["msteams"][9] == 2
    assert figures.hours["msteams"][10] == 4
    assert figures.hours["webchat"][11] == 1 and figures.hours["webchat"][14] == 1
    assert sum(figures.hours_total) == figures.volume
    assert figures.conversations == 2  # only turns with a conversation hash are counted
    assert [(i.intent, i.domain, i.count) for i in figures.top_intents] == [
        ("it.password_reset", "it", 3),
        ("hr.sick_leave", "hr", 1),
        ("it.account_locked", "it", 1),
    ]
    assert [(f.intent, f.up, f.down) for f in figures.feedback] == [
        ("it.password_reset", 1, 1),
        ("hr.sick_leave", 1, 0),
    ]
    assert figures.unanswered_total == 5
    groups = [(c.count, c.label) for c in figures.unanswered]
    assert groups == [
        (3, "skriveren virker ikke"),
        (1, "hvor er kantina [phone]"),
        (1, "vpn eller wifi"),
    ]
    printer = figures.unanswered[0]
    assert printer.variants == [("skriveren virker ikke", 2), ("Skriveren min virker ikke!", 1)]
    assert figures.unanswered[2].suggested_intent == "it.vpn"
    assert figures.unanswered[2].kinds == {"offered_choices": 1}

    assert [(s.domain, s.file, s.review_by, s.expired_intents) for s in figures.stale] == [
        ("it", "it.yaml", date(2026, 1, 1), ["it.password_reset"])
    ]
    assert figures.knowledge_problems == []


async def test_trend_covers_thirty_days(seeded: AsyncEngine) -> None:
    figures = await collect(seeded, DAY, zone=OSLO)

    assert len(figures.trend) == 30
    assert figures.trend[0].day == DAY - timedelta(days=29)
    assert figures.trend[-1].day == DAY
    three_days_ago = figures.trend[-4]
    assert (three_days_ago.volume, three_days_ago.answered, three_days_ago.fallback) == (2, 1, 1)
    assert three_days_ago.answer_rate == pytest.approx(0.5)
    yesterday = figures.trend[-2]
    assert (yesterday.volume, yesterday.fallback) == (1, 1)  # 23:59 local belongs to it
    assert figures.trend[-1].volume == 12
    assert sum(t.volume for t in figures.trend) == 15  # the 40-day-old event is outside


async def test_domain_filter(seeded: AsyncEngine) -> None:
    figures = await collect(seeded, DAY, zone=OSLO, domain="it")

    assert [i.intent for i in figures.top_intents] == ["it.password_reset", "it.account_locked"]
    assert [f.intent for f in figures.feedback] == ["it.password_reset"]
    # choices carry only the top intent (it.*), fallbacks their closest domain
    assert figures.choices == 2
    assert figures.fallback == 3
    assert [c.label for c in figures.unanswered] == ["skriveren virker ikke", "vpn eller wifi"]
    hr = await collect(seeded, DAY, zone=OSLO, domain="hr")
    assert hr.volume == 1 and hr.answer_rate == 1.0 and hr.unanswered == []


async def test_a_period_sums_its_days(seeded: AsyncEngine) -> None:
    figures = await collect(seeded, DAY - timedelta(days=3), DAY + timedelta(days=1), zone=OSLO)
    assert figures.volume == 2 + 1 + 12 + 1
    assert figures.trend[-1].day == DAY + timedelta(days=1)


async def test_empty_day(database_engine: AsyncEngine) -> None:  # noqa: F811
    await seed(database_engine, [event(at(12, 0, DAY - timedelta(days=1)), "answered")])
    figures = await collect(database_engine, DAY, zone=OSLO)
    assert figures.volume == 0 and figures.answer_rate is None and figures.unanswered == []
    assert "No questions" in render_markdown(figures)


# --- grouping ------------------------------------------------------------------------------


def test_similar_questions_group_and_different_ones_do_not() -> None:
    asked = [
        Asked("skriveren virker ikke", "nb"),
        Asked("Skriveren min virker ikke!", "nb"),
        Asked("skrivern virker ikke", "nb"),
        Asked("hvor er kantina", "nb"),
        Asked("Hvor er kantinen?", "nb"),
        Asked("printer not working", "en"),
    ]
    clusters = cluster_questions(asked)
    assert [(c.count, c.label) for c in clusters] == [
        (3, "Skriveren min virker ikke!"),
        (2, "Hvor er kantinen?"),
        (1, "printer not working"),
    ]
    assert similarity("skriveren virker ikke", "skrivern virker ikke") > 0.6
    assert similarity("skriveren virker ikke", "hvor er kantina") < 0.2


def test_grouping_is_deterministic_and_ignores_empty_text() -> None:
    asked = [Asked(f"spørsmål nummer {i % 7}", "nb") for i in range(50)] + [Asked("  ", "nb")]
    first = [c.to_dict() for c in cluster_questions(asked)]
    second = [c.to_dict() for c in cluster_questions(list(reversed(asked)))]
    assert first == second
    assert sum(c["count"] for c in first) == 50


# --- rendering -----------------------------------------------------------------------------


async def test_markdown_html_and_files(
    tmp_path: Path, seeded: AsyncEngine, stale_folder: Path
) -> None:
    await seed_extra(seeded)
    figures = await collect(seeded, DAY, zone=OSLO, knowledge_dir=stale_folder, today=DAY)

    markdown = render_markdown(figures, "report-2026-11-20.png")
    assert "# kollega — report 2026-11-20" in markdown
    assert "answer rate **" in markdown
    assert "| 3 | skriveren virker ikke | nb | Skriveren min virker ikke\\! |" in markdown
    assert "\\[click\\]\\(https://evil.example\\)" in markdown  # no link smuggled in
    assert "| it.password\\_reset | 1 | 1 |" in markdown
    assert "review\\_by" not in markdown and "review_by 2026-01-01 has passed" in markdown
    assert "![Trend, last 30 days](report-2026-11-20.png)" in markdown

    html = render_html(figures, "data:image/png;base64,AAAA")
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'src="data:image/png;base64,AAAA"' in html

    teams = render_teams(figures)
    assert "3 × skriveren virker ikke" in teams and "|" not in teams

    paths = write_files(figures, tmp_path / "out")
    assert paths["png"].read_bytes().startswith(PNG_MAGIC)
    assert paths["md"].read_text(encoding="utf-8").count("report-2026-11-20.png") == 1
    assert "data:image/png;base64,iVBOR" in paths["html"].read_text(encoding="utf-8")


async def seed_extra(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(events),
            [
                event(at(13, 0), "fallback", question="[click](https://evil.example)"),
                event(at(13, 5), "fallback", question="<script>alert(1)</script>"),
            ],
        )


def test_chart_is_a_png_of_the_trend() -> None:
    from bot.report_data import DayTrend

    trend = [DayTrend(DAY - timedelta(days=i), 10 + i, 5, 2, 3) for i in range(30)][::-1]
    trend[3] = DayTrend(trend[3].day, 0, 0, 0, 0)  # a quiet day has no rate
    png = trend_png(trend)
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_stale_knowledge_reports_broken_files(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    (folder / "broken.yaml").write_text("domain: broken\nowner: x\nintents: [\n", encoding="utf-8")
    stale, problems = stale_knowledge(folder, date(2028, 1, 1))
    assert {s.domain for s in stale} == {"it", "hr", "payroll", "travel"}
    assert len(problems) == 1 and problems[0].startswith("broken.yaml:")


def test_cli_prints_markdown_and_writes_files(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    url = f"sqlite+aiosqlite:///{db}"

    async def prepare() -> None:
        engine = create_engine(url)
        try:
            await seed(engine)
        finally:
            await engine.dispose()

    import asyncio

    asyncio.run(prepare())
    env = {
        **os.environ,
        "KOLLEGA_DATABASE_URL": url,
        "KOLLEGA_KNOWLEDGE_DIR": str(SAMPLE_KNOWLEDGE),
        "KOLLEGA_LOG_LEVEL": "WARNING",
    }
    out = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "bot.report", "--day", DAY.isoformat(), "--out", str(out)],
        cwd=tmp_path,  # no .env from the repo
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# kollega — report 2026-11-20")
    assert "**12** questions" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "report-2026-11-20.html",
        "report-2026-11-20.md",
        "report-2026-11-20.png",
    ]


# --- Teams -------------------------------------------------------------------------------


def channel_reference(service_url: str) -> dict[str, Any]:
    """The reference Teams gives when kollega is added to a team (captured payload)."""
    activity = payload("teams/conversation-update-bot-added-to-team.json")
    activity["serviceUrl"] = service_url
    from botbuilder.schema import Activity

    from bot.report_targets import reference_of

    return reference_of(Activity().deserialize(activity))


def test_clean_reference_keeps_the_channel_and_drops_the_user() -> None:
    reference = channel_reference("https://smba.trafficmanager.net/emea/")
    assert reference["user"]["aadObjectId"]  # the captured reference names who added the bot
    cleaned = clean_reference(reference)
    assert "user" not in cleaned and "activityId" not in cleaned
    assert cleaned["conversation"]["id"] == "19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2"
    assert "aadObjectId" not in str(cleaned)
    personal = {**reference, "conversation": {"id": "a:1", "conversationType": "personal"}}
    with pytest.raises(NotAChannel):
        clean_reference(personal)
    thread = {
        **reference,
        "conversation": {**reference["conversation"], "id": "19:x@thread.tacv2;messageid=17"},
    }
    assert clean_reference(thread)["conversation"]["id"] == "19:x@thread.tacv2"


async def test_targets_are_stored_without_personal_data(database_engine: AsyncEngine) -> None:  # noqa: F811
    async with database_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    reference = channel_reference("https://smba.trafficmanager.net/emea/")

    assert await remember_report_target(database_engine, reference)
    assert await remember_report_target(database_engine, reference)  # refreshed, not doubled
    personal = {**reference, "conversation": {"id": "a:1", "conversationType": "personal"}}
    assert not await remember_report_target(database_engine, personal)

    targets = await load_report_targets(database_engine)
    assert len(targets) == 1
    async with database_engine.connect() as conn:
        stored = str((await conn.execute(select(report_targets))).all())
    assert "eddfa9d4-346e-4cce-a18f-fa6261ad776b" not in stored  # the adder's aadObjectId
    assert "29:1ljv6N86" not in stored
    assert chosen_targets(targets, "*") == targets
    assert chosen_targets(targets, "19:other@thread.tacv2") == []
    assert (
        chosen_targets(targets, " 19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2 ,x") == targets
    )


@pytest.fixture
async def fake_connector() -> AsyncIterator[tuple[FakeConnector, str]]:
    from aiohttp.test_utils import TestServer

    fake = FakeConnector()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/")).rstrip("/") + "/teams/emea/"
    finally:
        await server.close()


async def test_post_report_to_a_teams_channel(
    fake_connector: tuple[FakeConnector, str], settings_factory: Callable[..., Any]
) -> None:
    from adapters.bot_framework import BotFrameworkChannel

    fake, service_url = fake_connector
    adapter = BotFrameworkChannel(settings_factory()).adapter
    reference = clean_reference(channel_reference(service_url))

    message_id = await post_report_to_teams(adapter, "", reference, "**kollega** 12 questions")

    assert message_id == "activity-1"
    [request] = fake.requests
    channel = "19:0b7f32667e064dd9b25d7969801541f4@thread.tacv2"
    assert request.path == f"/teams/emea/v3/conversations/{channel}/activities"  # a new post
    assert request.body["type"] == "message"
    assert request.body["text"] == "**kollega** 12 questions"
    assert request.body["textFormat"] == "markdown"


async def test_a_failed_post_is_reported(
    fake_connector: tuple[FakeConnector, str], settings_factory: Callable[..., Any]
) -> None:
    from adapters.bot_framework import BotFrameworkChannel

    fake, service_url = fake_connector
    fake.fail_with = 403
    adapter = BotFrameworkChannel(settings_factory()).adapter
    with pytest.raises(RuntimeError, match="posting the report to Teams failed"):
        await post_report_to_teams(adapter, "", channel_reference(service_url), "x")
