"""PNG plots of evaluation reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tiergate.learned.evaluate import ManyModelReport, TwoModelReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_many", "plot_two"]


def _figure(width: float, height: float) -> Figure:
    # A bare Figure renders PNG through Agg without pyplot's global state, and
    # importing here keeps matplotlib out of router loading.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_two(report: TwoModelReport, path: str | Path) -> None:
    """RouteLLM's plot: performance against the share of strong-model calls."""
    figure = _figure(8, 5)
    ax = figure.subplots()
    for name, result in report.results.items():
        ax.plot(
            [100 * s for s in result.strong_share],
            [100 * p for p in result.performance],
            marker="x" if name == "oracle" else ".",
            label=f"{name} (APGR {result.apgr:.3f})",
        )
    ax.axhline(100 * report.weak_mean, color="grey", linestyle="--", label=report.weak)
    ax.axhline(100 * report.strong_mean, color="red", linestyle="--", label=report.strong)
    ax.set_xlabel("Strong model calls (%)")
    ax.set_ylabel("Performance (mean score, %)")
    ax.set_title(f"Calls and performance, {report.n_prompts} prompts")
    ax.legend(fontsize=8)
    figure.savefig(str(path), dpi=120, bbox_inches="tight")


def plot_many(report: ManyModelReport, path: str | Path) -> None:
    """Cost/quality: the router's tolerance sweep, random mixes and every single model."""
    figure = _figure(9, 6)
    ax = figure.subplots()
    ref_cost = next(p.cost for p in report.singles if p.label == report.reference)
    for name, frontier in report.frontiers.items():
        share = report.cost_share.get(name)
        note = "" if share is None else f", {100 * share:.1f}% cost at target"
        ax.plot(
            [100 * p.cost / ref_cost for p in frontier],
            [p.quality for p in frontier],
            marker="." if name != "random" else None,
            linestyle="-" if name != "random" else "--",
            label=f"{name}{note}",
        )
    for point in report.singles:
        ax.scatter([100 * point.cost / ref_cost], [point.quality], marker="o", s=18)
        ax.annotate(
            point.label.split("/")[-1],
            (100 * point.cost / ref_cost, point.quality),
            fontsize=7,
            xytext=(3, 2),
            textcoords="offset points",
        )
    ax.axhline(report.target, color="grey", linestyle=":", label="95% of the best model")
    if min(p.cost for p in report.singles) > 0:
        # Prices span two orders of magnitude: a log axis keeps the cheap end readable.
        ax.set_xscale("log")
    ax.set_xlabel(f"Cost (% of {report.reference})")
    ax.set_ylabel("Quality (mean score)")
    ax.set_title(f"Cost and quality, {report.n_prompts} prompts, {len(report.models)} models")
    ax.legend(fontsize=8, loc="lower right")
    figure.savefig(str(path), dpi=120, bbox_inches="tight")
