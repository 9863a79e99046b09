"""The report's trend chart: 30 days of questions and the answer rate, as a PNG.

matplotlib's object API (``Figure`` + the Agg canvas) is used, never ``pyplot``: pyplot
keeps global state and picks a GUI backend, neither of which belongs in a server, and a
``Figure`` of its own is safe to draw in a worker thread while the event loop serves turns.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence

from bot.report_data import DayTrend

logger = logging.getLogger(__name__)

COLOURS = {
    "answered": "#2e7d32",
    "choices": "#f9a825",
    "fallback": "#c62828",
    "other": "#9e9e9e",
    "rate": "#1565c0",
}


def trend_png(trend: Sequence[DayTrend], title: str = "Last 30 days / Siste 30 dager") -> bytes:
    """Stacked daily bars (answered, choices, fallback, other turns) and the answer-rate line."""
    # Imported here, not at module level: matplotlib costs the bot ~50 MB and a second at
    # start, and only reports and the dashboard's chart need it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure = Figure(figsize=(9, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [t.day.strftime("%d.%m") for t in trend]
    positions = list(range(len(trend)))
    answered = [t.answered for t in trend]
    choices = [t.choices for t in trend]
    fallback = [t.fallback for t in trend]
    other = [max(0, t.volume - t.answered - t.choices - t.fallback) for t in trend]
    bottom = [0] * len(trend)
    for name, values, label in (
        ("answered", answered, "answered / besvart"),
        ("choices", choices, "offered choices / valg"),
        ("fallback", fallback, "not understood / ikke forstått"),
        ("other", other, "other / annet"),
    ):
        axes.bar(positions, values, bottom=bottom, color=COLOURS[name], label=label, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("questions / spørsmål")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    step = max(1, len(trend) // 10)
    axes.set_xticks(positions[::step], labels[::step])
    axes.set_title(title)

    rate_axes = axes.twinx()
    rates = [t.answer_rate for t in trend]
    rate_axes.plot(
        [p for p, r in zip(positions, rates, strict=True) if r is not None],
        [r for r in rates if r is not None],
        color=COLOURS["rate"],
        marker="o",
        markersize=3,
        linewidth=1.5,
        label="answer rate / svarandel",
    )
    rate_axes.set_ylim(0, 1.05)
    rate_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    handles, names = axes.get_legend_handles_labels()
    rate_handles, rate_names = rate_axes.get_legend_handles_labels()
    axes.legend(
        handles + rate_handles, names + rate_names, loc="upper left", fontsize=7, framealpha=0.8
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """The PNG as a ``data:`` URI, so the HTML report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
