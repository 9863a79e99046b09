"""The daily report for content owners: ``python -m bot.report [--day YYYY-MM-DD] [--out DIR]``.

It shows what was asked and what kollega could not answer, without anyone's identity:
volume per hour and channel, the answer rate, top intents, 👍/👎 per intent, unanswered
questions grouped by similarity, stale knowledge and a 30-day trend chart. The Markdown
goes to stdout (and into Teams, where configured); with ``--out`` (default
``KOLLEGA_REPORT_DIR``) ``report-DAY.html``, ``.md`` and ``.png`` are written to a folder.

The HTML is one self-contained file (chart as a ``data:`` URI, no script) so it can be
mailed or archived; it shares its template with the dashboard so both show the same
figures. Every text that came from a user is escaped for the format it lands in:
Jinja2 autoescaping for HTML, backslash escapes for Markdown (a question typed as
``[click](https://evil)`` must not become a link in Teams).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.exc import SQLAlchemyError

from bot.db import create_engine
from bot.report_chart import data_uri, trend_png
from bot.report_data import Figures, collect
from bot.report_targets import chosen_targets, load_report_targets, post_report_to_teams
from bot.retention import DEFAULT_TIMEZONE, report_timezone
from bot.settings import Settings

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "admin" / "templates"
STYLESHEET = Path(__file__).resolve().parent / "admin" / "static" / "admin.css"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~])")


def setting(settings: Any, name: str, default: Any) -> Any:
    """A setting that may not be declared yet on ``Settings``; blank counts as unset."""
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


def md(text: object) -> str:
    """Text safe inside Markdown (and a table cell): specials escaped, one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def percent(value: float | None) -> str:
    return "–" if value is None else f"{round(value * 100)} %"


@functools.cache
def jinja() -> Environment:
    """The template environment shared with the dashboard; autoescaping is always on."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = percent
    return env


def period_title(figures: Figures) -> str:
    if figures.start == figures.end:
        return figures.start.isoformat()
    return f"{figures.start.isoformat()} – {figures.end.isoformat()}"


def render_markdown(figures: Figures, chart_file: str | None = None) -> str:
    """The whole report as Markdown (GitHub flavour tables), chart linked as a file."""
    lines = [f"# kollega — report {period_title(figures)}", ""]
    if figures.domain:
        lines += [f"Domain: **{md(figures.domain)}**", ""]
    lines += [
        f"**{figures.volume}** questions in **{figures.conversations}** conversations · "
        f"answer rate **{percent(figures.answer_rate)}** "
        f"(answered {figures.answered}, offered choices {figures.choices}, "
        f"not understood {figures.fallback}) · times in {md(figures.timezone)}",
        "",
        "## Volume per hour and channel",
        "",
    ]
    channels = list(figures.hours)
    if channels:
        lines.append("| hour | " + " | ".join(md(c) for c in channels) + " | total |")
        lines.append("|---:|" + "---:|" * (len(channels) + 1))
        totals = figures.hours_total
        for hour in range(24):
            if totals[hour]:
                cells = " | ".join(str(figures.hours[c][hour]) for c in channels)
                lines.append(f"| {hour:02d} | {cells} | {totals[hour]} |")
    else:
        lines.append("No questions in this period.")
    lines += ["", "## Top intents", ""]
    if figures.top_intents:
        lines += ["| intent | domain | answered |", "|---|---|---:|"]
        lines += [f"| {md(i.intent)} | {md(i.domain)} | {i.count} |" for i in figures.top_intents]
    else:
        lines.append("No answered questions.")
    lines += ["", "## 👍/👎 per intent", ""]
    if figures.feedback:
        lines += ["| intent | 👍 | 👎 |", "|---|---:|---:|"]
        lines += [f"| {md(f.intent)} | {f.up} | {f.down} |" for f in figures.feedback]
    else:
        lines.append("No feedback.")
    lines += [
        "",
        f"## Unanswered questions ({figures.unanswered_total}, grouped by similarity)",
        "",
    ]
    if figures.unanswered:
        lines += ["| asked | question | language | also asked as |", "|---:|---|---|---|"]
        for cluster in figures.unanswered:
            others = "; ".join(md(t) for t, _ in cluster.variants[1:])
            lines.append(
                f"| {cluster.count} | {md(cluster.label)} | {md(cluster.language)} | {others} |"
            )
    else:
        lines.append("None — every question got an answer.")
    lines += ["", "## Stale knowledge", ""]
    if figures.stale:
        for stale in figures.stale:
            parts = []
            if stale.review_by is not None and stale.review_by < figures.end:
                parts.append(f"review_by {stale.review_by.isoformat()} has passed")
            if stale.expired_intents:
                parts.append("expired: " + ", ".join(md(i) for i in stale.expired_intents))
            lines.append(
                f"- **{md(stale.domain)}** ({md(stale.file)}, owner {md(stale.owner)}): "
                + "; ".join(parts)
            )
    else:
        lines.append("Every domain is within its review date.")
    for problem in figures.knowledge_problems:
        lines.append(f"- ⚠ {md(problem)}")
    lines += ["", "## Trend, last 30 days", ""]
    if chart_file:
        lines.append(f"![Trend, last 30 days]({chart_file})")
    lines += [
        "",
        "| day | questions | answer rate |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {t.day.isoformat()} | {t.volume} | {percent(t.answer_rate)} |"
        for t in figures.trend[-7:]
    ]
    return "\n".join(lines) + "\n"


def render_teams(figures: Figures, limit: int = 10) -> str:
    """A short Markdown summary for a Teams post: lists, no tables, the top gaps only."""
    lines = [
        f"**kollega — {period_title(figures)}**",
        "",
        f"{figures.volume} questions, {figures.conversations} conversations, "
        f"answer rate {percent(figures.answer_rate)}.",
        "",
    ]
    if figures.unanswered:
        lines.append(f"**Not answered ({figures.unanswered_total}):**")
        lines += [f"- {c.count} × {md(c.label)}" for c in figures.unanswered[:limit]]
        lines.append("")
    downs = [f for f in figures.feedback if f.down]
    if downs:
        lines.append("**👎:** " + ", ".join(f"{md(f.intent)} ({f.down})" for f in downs[:limit]))
        lines.append("")
    if figures.stale:
        lines.append("**To review:** " + ", ".join(md(s.domain) for s in figures.stale))
    return "\n".join(lines).strip() + "\n"


def render_html(figures: Figures, chart_src: str) -> str:
    """The standalone HTML report (inline CSS, no script, chart as ``chart_src``)."""
    return (
        jinja()
        .get_template("report.html")
        .render(
            f=figures,
            chart_src=chart_src,
            title=period_title(figures),
            admin=None,
            # our own stylesheet, inlined so the file stands alone; not user text
            css=Markup(STYLESHEET.read_text(encoding="utf-8")),  # noqa: S704
        )
    )


async def build(settings: Settings, day: date, domain: str | None = None) -> Figures:
    """Collect one day's figures from the configured database and knowledge folder."""
    engine = create_engine(settings.database_url)
    try:
        return await collect(
            engine,
            day,
            zone=report_timezone(setting(settings, "report_timezone", DEFAULT_TIMEZONE)),
            domain=domain,
            knowledge_dir=settings.knowledge_dir,
        )
    finally:
        await engine.dispose()


def write_files(figures: Figures, out: Path) -> dict[str, Path]:
    """``report-DAY.html``, ``.md`` and ``.png`` in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-{period_title(figures).replace(' – ', '_')}"
    png = trend_png(figures.trend)
    paths = {
        "png": out / f"{stem}.png",
        "md": out / f"{stem}.md",
        "html": out / f"{stem}.html",
    }
    paths["png"].write_bytes(png)
    paths["md"].write_text(render_markdown(figures, paths["png"].name), encoding="utf-8")
    paths["html"].write_text(render_html(figures, data_uri(png)), encoding="utf-8")
    return paths


async def post(settings: Settings, figures: Figures, explicit: bool) -> int:
    """Post the summary to the chosen captured Teams channels; returns how many got it."""
    wanted = str(setting(settings, "report_teams_conversation", ""))
    engine = create_engine(settings.database_url)
    try:
        targets = chosen_targets(await load_report_targets(engine), wanted) if wanted else []
    except SQLAlchemyError as exc:
        logger.warning("could not read report targets (%s)", type(exc).__name__)
        targets = []
    finally:
        await engine.dispose()
    if not targets:
        if explicit:
            logger.warning(
                "no Teams channel to post to: add kollega to the channel's team and name the "
                "channel in KOLLEGA_REPORT_TEAMS_CONVERSATION (see GET /api/admin/report-targets)"
            )
        return 0
    from adapters.bot_framework import BotFrameworkChannel  # the bot's own channel setup

    adapter = BotFrameworkChannel(settings).adapter
    text = render_teams(figures)
    posted = 0
    for target in targets:
        try:
            await post_report_to_teams(adapter, settings.APP_ID, target, text)
            posted += 1
        except Exception as exc:
            logger.error("posting the report to a Teams channel failed: %s", exc)
    return posted


def main(
    day: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="The day to report on (default: yesterday)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write report-DAY.html/.md/.png here (default KOLLEGA_REPORT_DIR)."),
    ] = None,
    domain: Annotated[str | None, typer.Option(help="Only this knowledge domain.")] = None,
    teams: Annotated[
        bool | None,
        typer.Option(
            "--post/--no-post",
            help="Post to the Teams channels in KOLLEGA_REPORT_TEAMS_CONVERSATION "
            "(default: when that is set).",
        ),
    ] = None,
) -> None:
    """Print the daily report as Markdown; write files and post to Teams where configured."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)
    zone = report_timezone(setting(settings, "report_timezone", DEFAULT_TIMEZONE))
    the_day = day.date() if day else datetime.now(zone).date() - timedelta(days=1)
    figures = asyncio.run(build(settings, the_day, domain))
    folder = out or (
        Path(setting(settings, "report_dir", "")) if setting(settings, "report_dir", "") else None
    )
    chart_name = None
    if folder is not None:
        paths = write_files(figures, folder)
        chart_name = paths["png"].name
        typer.echo(f"wrote {paths['html']}, {paths['md']} and {paths['png']}", err=True)
    typer.echo(render_markdown(figures, chart_name))
    should_post = (
        teams if teams is not None else bool(setting(settings, "report_teams_conversation", ""))
    )
    if should_post:
        posted = asyncio.run(post(settings, figures, explicit=True))
        typer.echo(f"posted to {posted} Teams channel(s)", err=True)


def cli() -> None:
    typer.run(main)


if __name__ == "__main__":
    cli()
