"""Per model and task figures of an eval run: quality, cost per case, latency, errors."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from tiergate.evals.runner import EvalResult

__all__ = ["Cell", "by_model", "summarize"]


@dataclass(slots=True)
class Cell:
    """One model on one task.

    ``quality`` is the mean score of the answered cases; ``effective_quality`` counts
    the cases the model never answered (after retries) as 0, which is what a route
    sending that task to it would see, and is what recommendations compare.
    """

    task: str
    model: str
    scores: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    judge_cost_usd: float = 0.0

    @property
    def answered(self) -> int:
        return len(self.scores)

    @property
    def quality(self) -> float | None:
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def effective_quality(self) -> float:
        total = self.answered + self.errors
        return sum(self.scores) / total if total else 0.0

    @property
    def cost_per_case(self) -> float | None:
        """Mean answer cost (USD) of the answered cases."""
        return statistics.fmean(self.costs) if self.costs else None

    @property
    def latency_p50_ms(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def as_json(self) -> dict[str, object]:
        """A JSON-ready view (``--json``)."""
        return {
            "task": self.task,
            "model": self.model,
            "cases": self.answered + self.errors,
            "answered": self.answered,
            "errors": self.errors,
            "quality": self.quality,
            "effective_quality": self.effective_quality,
            "cost_per_case_usd": self.cost_per_case,
            "total_cost_usd": sum(self.costs),
            "judge_cost_usd": self.judge_cost_usd,
            "latency_p50_ms": self.latency_p50_ms,
        }


def summarize(results: Sequence[EvalResult], models: Sequence[str]) -> list[Cell]:
    """Cells in task order of first appearance, then in the order ``models`` names them."""
    cells: dict[tuple[str, str], Cell] = {}
    tasks: dict[str, None] = {}
    for result in results:
        tasks.setdefault(result.case.task, None)
    for task in tasks:
        for model in models:
            cells[(task, model)] = Cell(task, model)
    for result in results:
        cell = cells[(result.case.task, result.model)]
        cell.judge_cost_usd += result.judge_cost_usd
        record = result.record
        if record is None:
            cell.errors += 1
            continue
        cell.scores.append(record.score)
        cell.costs.append(record.cost_usd or 0.0)
        if record.latency_ms is not None:
            cell.latencies.append(record.latency_ms)
    return list(cells.values())


def by_model(cells: Sequence[Cell], task: str = "all tasks") -> list[Cell]:
    """Each model's cells merged into one (the table's last section)."""
    merged: dict[str, Cell] = {}
    for cell in cells:
        into = merged.setdefault(cell.model, Cell(task, cell.model))
        into.scores.extend(cell.scores)
        into.costs.extend(cell.costs)
        into.latencies.extend(cell.latencies)
        into.errors += cell.errors
        into.judge_cost_usd += cell.judge_cost_usd
    return list(merged.values())
