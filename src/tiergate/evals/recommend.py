"""The routing recommendation: per task, the cheapest model within a tolerance of the best,
as a config snippet that works with the routing schema.

Each task becomes a route ``auto:<task>`` with ``strategy: static`` and an ordered
``models`` list: the recommended model first, then the best of the other models as the
fallback (the executor fails over along the list when the first one is down).
Applications send that task's requests with ``model="auto:<task>"``. Static routes name
models, which is what an eval measures; ``rules`` would target tiers and need keywords
that the eval cannot know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from tiergate.config.schema import Config, RouteConfig
from tiergate.errors import ConfigError
from tiergate.evals.summary import Cell
from tiergate.fleet import Fleet

__all__ = ["Recommendation", "check_snippet", "recommend", "route_name", "routes_snippet"]

_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The model to route one task to, and the figures that chose it."""

    task: str
    model: str
    quality: float
    cost_per_case: float
    best_model: str
    best_quality: float
    fallback: str | None = None

    @property
    def route(self) -> str:
        return route_name(self.task)

    @property
    def models(self) -> list[str]:
        """The route's model list: the recommendation, then its fallback."""
        return [self.model] if self.fallback is None else [self.model, self.fallback]

    def as_json(self) -> dict[str, object]:
        """A JSON-ready view (``--json``)."""
        return {
            "task": self.task,
            "route": self.route,
            "model": self.model,
            "quality": self.quality,
            "cost_per_case_usd": self.cost_per_case,
            "best_model": self.best_model,
            "best_quality": self.best_quality,
            "models": self.models,
        }


def route_name(task: str) -> str:
    """``auto:<task>``, the task lower-cased with anything but ``a-z0-9_.-`` made ``-``."""
    return "auto:" + (_UNSAFE.sub("-", task.lower()).strip("-") or "task")


def recommend(cells: Sequence[Cell], tolerance: float) -> list[Recommendation]:
    """Per task: of the models whose effective quality is within ``tolerance`` (absolute
    points on the 0..1 scale) of the task's best, the one with the lowest cost per case
    (ties: higher quality, then the order models were named). Tasks no model answered are
    left out."""
    by_task: dict[str, list[Cell]] = {}
    for cell in cells:
        if cell.answered:
            by_task.setdefault(cell.task, []).append(cell)
    out: list[Recommendation] = []
    for task, options in by_task.items():
        best = max(options, key=lambda c: c.effective_quality)  # first named wins a tie
        floor = best.effective_quality - tolerance - 1e-9  # float noise must not exclude a tie
        fit = [c for c in options if c.effective_quality >= floor]
        chosen = min(fit, key=lambda c: (c.cost_per_case or 0.0, -c.effective_quality))
        # The fallback is the best of the others: the model to trust when the pick fails.
        others = [c for c in options if c is not chosen]
        fallback = max(others, key=lambda c: c.effective_quality) if others else None
        out.append(
            Recommendation(
                task=task,
                model=chosen.model,
                quality=chosen.effective_quality,
                cost_per_case=chosen.cost_per_case or 0.0,
                best_model=best.model,
                best_quality=best.effective_quality,
                fallback=fallback.model if fallback is not None else None,
            )
        )
    return out


def routes_snippet(recommendations: Sequence[Recommendation], tolerance: float) -> str:
    """A ``routes:`` block to paste into the config, one commented route per task."""
    lines = [
        f"# tiergate eval: per task, the cheapest model within {tolerance:g} of the best.",
        '# Send each task\'s requests with model="auto:<task>".',
        "routes:",
    ]
    for rec in recommendations:
        lines.append(
            f"  {_scalar(rec.route)}:  # {rec.model} {rec.quality:.2f} at "
            f"${rec.cost_per_case:.6f}/case; best {rec.best_model} {rec.best_quality:.2f}"
        )
        lines.append("    strategy: static")
        lines.append(f"    models: [{', '.join(_scalar(m) for m in rec.models)}]")
    return "\n".join(lines) + "\n"


def _scalar(value: str) -> str:
    # safe_dump quotes exactly the strings that would not read back as themselves.
    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip()


def check_snippet(config: Config, fleet: Fleet, snippet: str) -> list[str]:
    """Problems the snippet's routes would have in ``config`` (empty: it works as is)."""
    from tiergate.routing.route import build_routes

    data = yaml.safe_load(snippet) or {}
    routes: dict[str, RouteConfig] = dict(config.routes)
    try:
        for name, spec in (data.get("routes") or {}).items():
            routes[name] = RouteConfig.model_validate(spec)
    except ValidationError as exc:
        return [str(exc)]
    try:
        build_routes(config.model_copy(update={"routes": routes}), fleet)
    except ConfigError as exc:
        return list(exc.problems)
    return []
