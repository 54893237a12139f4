"""``tiergate router``: train, score and evaluate the learned router."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tiergate.learned.artifact import RouterFormatError, save_artifact
from tiergate.learned.evaluate import (
    EvaluationError,
    ManyModelReport,
    TwoModelReport,
    evaluate_router,
)
from tiergate.learned.router import LearnedRouter
from tiergate.learned.table import OutcomeTable
from tiergate.learned.train import TrainError, TrainOptions, train_router
from tiergate.outcomes import OutcomeFormatError, read_outcomes, read_prompts

__all__ = ["router"]

_USER_ERRORS = (OutcomeFormatError, RouterFormatError, TrainError, EvaluationError)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input ends the command with a one-line message and exit code 1, no traceback."""
    try:
        yield
    except _USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from exc


def _stderr() -> Console:
    # Progress and tables for people go to stderr when stdout carries JSON.
    return Console(stderr=True)


@click.group("router")
def router() -> None:
    """Train, score and evaluate the learned router."""


@router.command("train")
@click.option(
    "--outcomes",
    "outcomes_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Outcome records (JSON lines).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Router file to write.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the validation folds.")
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON.")
def train_cmd(outcomes_path: str, out_path: str, seed: int, as_json: bool) -> None:
    """Train a router on outcome records (any number of models >= 2, any task mix)."""
    console = _stderr()
    with _user_errors():
        records = read_outcomes(outcomes_path)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("reading features", total=None)

            def tick(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            artifact, report = train_router(records, TrainOptions(seed=seed), tick)
        save_artifact(out_path, artifact)

    summary: dict[str, Any] = {
        "router": out_path,
        "models": artifact.models,
        "prompts": report.n_prompts,
        "records": len(records),
        "c": report.chosen_c,
        "tasks": report.tasks,
        "task_blend": report.task_blend,
        "validation": {
            "folds": report.folds,
            "pairwise_apgr_by_c": {f"{c:g}": v for c, v in report.per_c_pairwise_apgr.items()},
            "apgr": report.apgr,
            "per_model": report.per_model,
        },
    }
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    out = Console()
    prior = (
        f"; task prior over {report.tasks} tasks, weight {report.task_blend:g}"
        if report.tasks
        else "; no task prior (fewer than two tasks with enough prompts)"
    )
    out.print(
        f"Trained on {report.n_prompts} prompts ({len(records)} outcomes, "
        f"{len(artifact.models)} models); C={report.chosen_c:g}{prior}; wrote {out_path}"
    )
    if report.folds:
        table = Table(title=f"Held-out validation ({report.folds}-fold, by prompt)")
        table.add_column("model")
        table.add_column("AUC", justify="right")
        table.add_column("log loss", justify="right")
        for model, figures in report.per_model.items():
            table.add_row(model, f"{figures['auc']:.3f}", f"{figures['log_loss']:.3f}")
        out.print(table)
        if report.apgr is not None:
            out.print(f"Validation APGR (RouteLLM, out-of-fold): {report.apgr:.3f}")
        pairs = report.per_c_pairwise_apgr.get(report.chosen_c)
        if pairs is not None:
            out.print(f"Mean pairwise APGR over model pairs (out-of-fold): {pairs:.3f}")
    else:
        out.print("Too few prompts for a validation figure (need 25 or more).")


@router.command("score")
@click.option(
    "--router", "router_path", required=True, type=click.Path(dir_okay=False), help="Router file."
)
@click.option(
    "--prompts",
    "prompts_path",
    required=True,
    type=click.Path(dir_okay=False),
    help='JSON lines: outcome records or {"prompt": ...} objects.',
)
def score_cmd(router_path: str, prompts_path: str) -> None:
    """Print {"prompt", "predicted": {model: quality}} per distinct input prompt (JSON lines)."""
    with _user_errors():
        learned = LearnedRouter.load(router_path)
        prompts = read_prompts(prompts_path)
    write: Callable[[bytes], Any] = sys.stdout.buffer.write
    for prompt in prompts:
        write(orjson.dumps({"prompt": prompt, "predicted": learned.predict(prompt)}) + b"\n")


@router.command("evaluate")
@click.option(
    "--router", "router_path", required=True, type=click.Path(dir_okay=False), help="Router file."
)
@click.option(
    "--outcomes",
    "outcomes_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Held-out outcome records (JSON lines).",
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG plot.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def evaluate_cmd(
    router_path: str, outcomes_path: str, plot_path: str | None, as_json: bool
) -> None:
    """Two models: RouteLLM's APGR and CPT; more: the cost/quality curve."""
    with _user_errors():
        learned = LearnedRouter.load(router_path)
        table = OutcomeTable.from_records(read_outcomes(outcomes_path))
        report = evaluate_router(learned, table)
    if plot_path:
        from tiergate.learned.plot import plot_many, plot_two

        if isinstance(report, TwoModelReport):
            plot_two(report, plot_path)
        else:
            plot_many(report, plot_path)
    if as_json:
        click.echo(orjson.dumps(_report_json(report), option=orjson.OPT_INDENT_2).decode())
        return
    out = Console()
    if isinstance(report, TwoModelReport):
        _print_two(out, report)
    else:
        _print_many(out, report)
    if plot_path:
        out.print(f"Plot written to {Path(plot_path)}")


def _print_two(out: Console, report: TwoModelReport) -> None:
    out.print(
        f"{report.n_prompts} prompts; strong {report.strong} {report.strong_mean:.3f}, "
        f"weak {report.weak} {report.weak_mean:.3f}"
    )
    table = Table(title="RouteLLM metrics (CPT = share of calls to the strong model)")
    for column in ("method", "APGR", "CPT(50%)", "CPT(80%)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, result in report.results.items():
        table.add_row(
            name, f"{result.apgr:.3f}", f"{100 * result.cpt50:.1f}%", f"{100 * result.cpt80:.1f}%"
        )
    out.print(table)


def _print_many(out: Console, report: ManyModelReport) -> None:
    ref = next(p for p in report.singles if p.label == report.reference)
    out.print(
        f"{report.n_prompts} prompts, {len(report.models)} models; reference {report.reference} "
        f"(quality {ref.quality:.3f}, cost {ref.cost:.6g}/prompt); target {report.target:.3f}"
    )
    table = Table(title="Least cost to reach 95% of the reference's quality")
    table.add_column("policy")
    table.add_column("cost share", justify="right")
    for name, share in report.cost_share.items():
        table.add_row(name, "not reached" if share is None else f"{100 * share:.1f}%")
    out.print(table)
    singles = Table(title="Single models")
    for column in ("model", "quality", "cost share"):
        singles.add_column(column, justify="left" if column == "model" else "right")
    for point in sorted(report.singles, key=lambda p: p.cost):
        singles.add_row(point.label, f"{point.quality:.3f}", f"{100 * point.cost / ref.cost:.1f}%")
    out.print(singles)


def _report_json(report: TwoModelReport | ManyModelReport) -> dict[str, Any]:
    if isinstance(report, TwoModelReport):
        return {
            "kind": "two_models",
            "strong": report.strong,
            "weak": report.weak,
            "prompts": report.n_prompts,
            "strong_mean": report.strong_mean,
            "weak_mean": report.weak_mean,
            "methods": {
                name: {
                    "apgr": r.apgr,
                    "cpt50": r.cpt50,
                    "cpt80": r.cpt80,
                    "curve": [
                        {"strong_share": s, "performance": p}
                        for s, p in zip(r.strong_share, r.performance, strict=True)
                    ],
                }
                for name, r in report.results.items()
            },
        }
    return {
        "kind": "many_models",
        "models": report.models,
        "prompts": report.n_prompts,
        "reference": report.reference,
        "target_quality": report.target,
        "cost_share_at_target": report.cost_share,
        "single_models": [
            {"model": p.label, "cost": p.cost, "quality": p.quality} for p in report.singles
        ],
        "curves": {
            name: [{"tolerance": p.label, "cost": p.cost, "quality": p.quality} for p in points]
            for name, points in report.curves.items()
        },
        "frontiers": {
            name: [{"cost": p.cost, "quality": p.quality} for p in points]
            for name, points in report.frontiers.items()
        },
    }
