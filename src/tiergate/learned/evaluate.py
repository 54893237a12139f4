"""Evaluation of predicted qualities against real outcomes.

Two models: RouteLLM's curve, APGR and CPT against random and oracle.
More models: the cost/quality curve of the router's tolerance sweep against
every single model and against random traffic splits between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tiergate.learned.metrics import (
    CostQualityPoint,
    TwoModelResult,
    cost_at_quality,
    pareto_frontier,
    random_mix_frontier,
    routellm_oracle,
    routellm_random,
    routellm_two_model,
)
from tiergate.learned.router import LearnedRouter
from tiergate.learned.table import OutcomeTable

__all__ = [
    "EvaluationError",
    "ManyModelReport",
    "TwoModelReport",
    "evaluate_many",
    "evaluate_router",
    "evaluate_two",
    "tolerance_sweep",
    "value_sweep",
]

FloatArray = npt.NDArray[np.float64]

TOLERANCES = tuple(float(t) for t in np.round(np.linspace(0.0, 1.0, 201), 4))
QUALITY_TARGET = 0.95


class EvaluationError(ValueError):
    """The outcomes cannot evaluate this router (no shared models, no costs, ...)."""


@dataclass(frozen=True)
class TwoModelReport:
    """RouteLLM figures of a router and its random and oracle references."""

    strong: str
    weak: str
    n_prompts: int
    strong_mean: float
    weak_mean: float
    results: dict[str, TwoModelResult]


@dataclass(frozen=True)
class ManyModelReport:
    """Cost/quality of a router's tolerance sweep against single models and random mixes.

    Costs are mean USD per prompt (or the outcome's own unit); the reference is
    the single model with the best mean score, and ``*_cost_share`` is the
    least cost, as a share of the reference's, at which a policy reaches
    ``target`` (95% of the reference's quality); ``None`` if it never does.
    """

    models: list[str]
    n_prompts: int
    reference: str
    target: float
    singles: list[CostQualityPoint]
    curves: dict[str, list[CostQualityPoint]]
    frontiers: dict[str, list[CostQualityPoint]]
    cost_share: dict[str, float | None]


def evaluate_two(
    predicted: FloatArray, table: OutcomeTable, extra: Mapping[str, FloatArray] | None = None
) -> TwoModelReport:
    """RouteLLM evaluation; ``predicted`` has one column per ``table.models`` (exactly two).

    The strong model is the one with the higher mean score in ``table``; the
    router's preference for it is its predicted quality minus the weak one's.
    ``extra`` adds other methods' preferences (e.g. baselines) by name.
    """
    if len(table.models) != 2:
        raise EvaluationError(f"two models needed, got {table.models}")
    means = table.scores.mean(axis=0)
    s, w = (0, 1) if means[0] >= means[1] else (1, 0)
    strong, weak = table.scores[:, s], table.scores[:, w]
    results = {
        "router": routellm_two_model(predicted[:, s] - predicted[:, w], strong, weak),
        "random": routellm_random(strong, weak),
        "oracle": routellm_oracle(strong, weak),
    }
    for name, preference in (extra or {}).items():
        results[name] = routellm_two_model(preference, strong, weak)
    return TwoModelReport(
        strong=table.models[s],
        weak=table.models[w],
        n_prompts=len(table.prompts),
        strong_mean=float(means[s]),
        weak_mean=float(means[w]),
        results=results,
    )


def tolerance_sweep(
    predicted: FloatArray,
    prices: FloatArray,
    scores: FloatArray,
    costs: FloatArray,
    tolerances: Sequence[float] = TOLERANCES,
) -> list[CostQualityPoint]:
    """Mean realised (cost, score) of ``LearnedRouter.choose`` at each tolerance.

    ``prices`` (prompts x models, or one row for all) is what the router
    believes each choice costs; ``costs`` what it really cost. Among models
    within ``tolerance`` of the best predicted quality the cheapest serves.
    """
    price = np.broadcast_to(np.asarray(prices, dtype=np.float64), predicted.shape)
    rows = np.arange(len(predicted))
    points = []
    for tol in tolerances:
        qualifies = predicted >= predicted.max(axis=1, keepdims=True) - tol
        chosen = np.argmin(np.where(qualifies, price, np.inf), axis=1)
        points.append(_point(costs, scores, rows, chosen, f"{tol:g}"))
    return points


def value_sweep(
    predicted: FloatArray,
    prices: FloatArray,
    scores: FloatArray,
    costs: FloatArray,
    steps: int = 301,
) -> list[CostQualityPoint]:
    """Mean realised (cost, score) of ``LearnedRouter.choose_by_value`` over a range of values.

    Values run geometrically from a hundredth of the cheapest price to ten
    thousand times the dearest, which spans "always the cheapest" to "always
    the best predicted". ``prices`` and ``costs`` as in :func:`tolerance_sweep`.
    """
    price = np.broadcast_to(np.asarray(prices, dtype=np.float64), predicted.shape)
    positive = price[price > 0]
    low = float(positive.min()) / 100 if len(positive) else 1e-6
    high = float(price.max()) * 1e4 if price.max() > 0 else 1.0
    rows = np.arange(len(predicted))
    points = []
    for value in np.concatenate([[0.0], np.geomspace(low, high, steps)]):
        chosen = np.argmin(price - value * predicted, axis=1)
        points.append(_point(costs, scores, rows, chosen, f"{value:.3g}"))
    return points


def _point(
    costs: FloatArray,
    scores: FloatArray,
    rows: npt.NDArray[np.int64],
    chosen: npt.NDArray[np.intp],
    label: str,
) -> CostQualityPoint:
    return CostQualityPoint(
        float(costs[rows, chosen].mean()), float(scores[rows, chosen].mean()), label
    )


def evaluate_many(
    predicted: FloatArray,
    table: OutcomeTable,
    prices: FloatArray,
    extra: Mapping[str, FloatArray] | None = None,
) -> ManyModelReport:
    """Cost/quality evaluation over complete rows of ``table`` (columns as ``table.models``).

    ``prices`` (prompts x models, or one row for all prompts) are what the
    router believes each model costs when it chooses (the cost lines learned in
    the router file); the realised cost of a choice is that model's
    ``cost_usd`` on that prompt.
    """
    if np.isnan(table.costs).all():
        raise EvaluationError("the outcomes have no cost_usd: cannot draw a cost/quality curve")
    price = np.broadcast_to(np.asarray(prices, dtype=np.float64), table.scores.shape)
    costs = np.where(np.isnan(table.costs), price, table.costs)
    singles = [
        CostQualityPoint(float(costs[:, j].mean()), float(table.scores[:, j].mean()), model)
        for j, model in enumerate(table.models)
    ]
    reference = max(singles, key=lambda p: (p.quality, -p.cost))
    target = QUALITY_TARGET * reference.quality
    curves = {
        "router (value)": value_sweep(predicted, prices, table.scores, costs),
        "router (tolerance)": tolerance_sweep(predicted, prices, table.scores, costs),
    }
    for name, other in (extra or {}).items():
        curves[f"{name} (value)"] = value_sweep(other, prices, table.scores, costs)
        curves[f"{name} (tolerance)"] = tolerance_sweep(other, prices, table.scores, costs)
    frontiers = {name: pareto_frontier(points) for name, points in curves.items()}
    frontiers["random"] = random_mix_frontier(singles)
    share = {}
    for name, frontier in frontiers.items():
        cost = cost_at_quality(frontier, target)
        share[name] = None if cost is None else cost / reference.cost
    return ManyModelReport(
        models=list(table.models),
        n_prompts=len(table.prompts),
        reference=reference.label,
        target=target,
        singles=singles,
        curves=curves,
        frontiers=frontiers,
        cost_share=share,
    )


def evaluate_router(router: LearnedRouter, table: OutcomeTable) -> TwoModelReport | ManyModelReport:
    """Evaluate a router on an outcome table: RouteLLM figures for two models, else cost/quality.

    Only models both the router and the outcomes know count, and only prompts
    with an outcome for each of them.
    """
    shared = [m for m in router.models if m in table.models]
    if len(shared) < 2:
        raise EvaluationError(
            f"the outcomes and the router share fewer than two models "
            f"(router: {router.models}; outcomes: {table.models})"
        )
    data = table.columns(shared).complete()
    if len(data.prompts) < 10:
        raise EvaluationError(
            f"only {len(data.prompts)} prompts have an outcome for every model; need at least 10"
        )
    columns = [router.models.index(m) for m in shared]
    predicted = router.predict_many(data.prompts)[:, columns]
    if len(shared) == 2:
        return evaluate_two(predicted, data)
    return evaluate_many(predicted, data, expected_costs(router, data))


def expected_costs(router: LearnedRouter, table: OutcomeTable) -> FloatArray:
    """What the router expects each model to cost on each prompt (prompts x models).

    From the cost lines in the router file; a model trained without costs
    falls back on its mean cost in ``table``.
    """
    fallback = np.nanmean(table.costs, axis=0)
    out = np.empty(table.scores.shape)
    for i, prompt in enumerate(table.prompts):
        known = router.expected_costs(prompt)
        out[i] = [known.get(m, f) for m, f in zip(table.models, fallback, strict=True)]
    return out
