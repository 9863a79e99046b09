"""``python -m knowledge``: the content owners' tools (validate, evaluate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from knowledge.evaluate import EvaluationError, evaluate, read_tests
from knowledge.loader import load_folder

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
) -> None:
    """Measure matching on a test file, loading the folder exactly as the bot does."""
    try:
        figures = evaluate(folder, read_tests(tests))
    except (EvaluationError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        typer.echo(f"{key:>20}: {value}")


if __name__ == "__main__":
    app()
