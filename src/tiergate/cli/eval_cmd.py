"""`tiergate eval`: run an eval suite through models, grade, table, routing recommendation."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click
import orjson

from tiergate.cli.keys_cmd import config_option

if TYPE_CHECKING:
    from rich.table import Table

    from tiergate.evals import Cell, EvalResult, Recommendation


def _model_list(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise click.BadParameter("name at least one model: --models A,B,C")
    return names


@click.command(name="eval")
@click.option(
    "--suite",
    "suite_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Eval suite: JSON lines of prompt/messages, task and grader (docs/evals.md).",
)
@click.option("--models", required=True, callback=_model_list, help="Comma-separated model names.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Outcome records file.")
@config_option
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
@click.option("--retries", default=2, show_default=True, type=click.IntRange(0, 10))
@click.option(
    "--tolerance",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Quality points (0..1 scale) below a task's best that still count as good enough.",
)
@click.option("--judge", "judge_model", help="Judge model for judge cases that name none.")
@click.option(
    "--fake",
    is_flag=True,
    help="Run against simulated models (no network); the config's ${TIERGATE_FAKE_URL} "
    "points at them.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_(
    suite_path: str,
    models: list[str],
    out_path: str | None,
    config_path: str | None,
    concurrency: int,
    retries: int,
    tolerance: float,
    judge_model: str | None,
    fake: bool,
    as_json: bool,
) -> None:
    """Run an eval suite through models; write outcome records; recommend routes."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from tiergate.evals import (
        SuiteError,
        check_snippet,
        read_suite,
        recommend,
        routes_snippet,
        summarize,
        write_results,
    )
    from tiergate.evals.session import EvalSetupError, run_eval

    try:
        cases = read_suite(suite_path)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    total = len(cases) * len(models)
    errors = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{len(cases)} cases x {len(models)} models", total=total)
        try:
            run = asyncio.run(
                run_eval(
                    config_path,
                    suite_path,
                    cases,
                    models,
                    fake=fake,
                    concurrency=concurrency,
                    retries=retries,
                    judge=judge_model,
                    on_done=lambda _result: bar.advance(task),
                )
            )
        except EvalSetupError as exc:
            raise click.ClickException("\n".join(exc.problems)) from None
    cells = summarize(run.results, models)
    recommendations = recommend(cells, tolerance)
    snippet = routes_snippet(recommendations, tolerance)
    problems = check_snippet(run.config, run.fleet, snippet)
    written = write_results(out_path, run.results) if out_path else 0
    failed = [r for r in run.results if r.error is not None]
    if as_json:
        payload = {
            "cells": [c.as_json() for c in cells],
            "recommendations": [r.as_json() for r in recommendations],
            "tolerance": tolerance,
            "snippet": snippet,
            "snippet_problems": problems,
            "errors": [
                {"case": r.case.id, "line": r.case.line, "model": r.model, "error": r.error}
                for r in failed
            ],
            "records_written": written,
            "out": out_path,
        }
        click.echo(orjson.dumps(payload).decode())
    else:
        _print(cells, recommendations, snippet, problems, failed, written, out_path, tolerance)
    if len(failed) == len(run.results):
        sys.exit(1)  # not one answer: nothing was measured


def _print(
    cells: Sequence[Cell],
    recommendations: Sequence[Recommendation],
    snippet: str,
    problems: list[str],
    failed: Sequence[EvalResult],
    written: int,
    out_path: str | None,
    tolerance: float,
) -> None:
    from rich.console import Console
    from rich.syntax import Syntax

    console = Console()
    picked = {(r.task, r.model) for r in recommendations}
    console.print(_table(cells, picked, tolerance))
    for result in failed[:5]:
        console.print(f"[red]failed[/]: {result.case.id} on {result.model}: {result.error}")
    if len(failed) > 5:
        console.print(f"[red]…and {len(failed) - 5} more failed call(s)[/] (--json lists all)")
    if out_path:
        console.print(f"Wrote {written} outcome record(s) to {out_path}.")
    if not recommendations:
        console.print("No recommendation: no model answered any case.")
        return
    console.print("\nRecommended routes (paste into the config's routes:):")
    console.print(Syntax(snippet, "yaml", theme="ansi_dark", background_color="default"))
    if problems:
        console.print("[red]The snippet does not fit this config:[/]")
        for problem in problems:
            console.print(f"  - {problem}")


def _table(cells: Sequence[Cell], picked: set[tuple[str, str]], tolerance: float) -> Table:
    from rich import box
    from rich.table import Table

    from tiergate.evals.summary import by_model

    # Optional columns only when they say something: the table fits 80 columns.
    judged = any(c.judge_cost_usd for c in cells)
    failed = any(c.errors for c in cells)
    spent = sum(sum(c.costs) for c in cells)
    judging = sum(c.judge_cost_usd for c in cells)
    caption = f"✓ cheapest within {tolerance:g} of the task's best. Spent ${spent:.4f} on answers"
    caption += f", ${judging:.4f} on judging." if judged else "."
    table = Table(title="Quality and cost per task", caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("task", overflow="fold")
    table.add_column("model", overflow="fold")
    table.add_column("cases", justify="right", no_wrap=True)
    if failed:
        table.add_column("errors", justify="right", no_wrap=True)
    table.add_column("quality", justify="right", no_wrap=True)
    table.add_column("$/case", justify="right", no_wrap=True)
    table.add_column("p50 ms", justify="right", no_wrap=True)
    if judged:
        table.add_column("judge $", justify="right", no_wrap=True)
    rows = [*cells, *by_model(cells)]
    for index, cell in enumerate(rows):
        following = rows[index + 1] if index + 1 < len(rows) else None
        values = [cell.task, cell.model, str(cell.answered + cell.errors)]
        if failed:
            values.append(str(cell.errors) if cell.errors else "")
        mark = " ✓" if (cell.task, cell.model) in picked else "  "
        values += [
            "-" if cell.quality is None else f"{cell.quality:.2f}{mark}",
            "-" if cell.cost_per_case is None else f"{cell.cost_per_case:.6f}",
            "-" if cell.latency_p50_ms is None else f"{cell.latency_p50_ms:,.0f}",
        ]
        if judged:
            values.append(f"{cell.judge_cost_usd:.4f}" if cell.judge_cost_usd else "")
        table.add_row(*values, end_section=following is not None and following.task != cell.task)
    return table
