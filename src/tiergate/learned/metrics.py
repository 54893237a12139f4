"""Routing metrics: RouteLLM's two-model figures and the N-model cost/quality frontier.

The two-model figures follow lm-sys/RouteLLM (``routellm/evals/benchmarks.py``
and ``routellm/evals/evaluate.py``) step for step:

1. The router gives each prompt a preference for the strong model.
2. Thresholds are the 11 quantiles (0%, 10%, ..., 100%, linear
   interpolation, as ``pandas.qcut(..., 10, retbins=True)``) of those
   preferences; at each threshold a prompt goes to the strong model if its
   preference is ``>=`` the threshold (``>`` for the last one, so the curve
   runs from 100% to 0% strong calls).
3. Each step gives (share of strong calls, mean score); points are sorted by share.
4. APGR = (AUC - weak AUC) / (strong AUC - weak AUC), every AUC a trapezoid
   over the share axis, the weak and strong AUCs those of constant lines at
   each model's own mean score.
5. CPT(x) = the share of strong calls at which the curve reaches the weak
   score plus x of the gap, by ``numpy.interp`` over the sorted points.

The oracle sends exactly the prompts where the strong model scores higher,
best first, at 0%, 10%, ..., 100% of calls (RouteLLM's ``get_optimal_accuracy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "CostQualityPoint",
    "TwoModelResult",
    "cost_at_quality",
    "pareto_frontier",
    "random_mix_frontier",
    "roc_auc",
    "routellm_oracle",
    "routellm_random",
    "routellm_two_model",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TwoModelResult:
    """A RouteLLM curve and its figures; shares and scores are fractions (0..1)."""

    strong_share: list[float]
    performance: list[float]
    apgr: float
    cpt50: float
    cpt80: float


def _figures(
    share: Sequence[float], perf: Sequence[float], strong_mean: float, weak_mean: float
) -> TwoModelResult:
    order = np.argsort(np.asarray(share), kind="stable")
    x = np.asarray(share, dtype=np.float64)[order]
    y = np.asarray(perf, dtype=np.float64)[order]
    auc = float(np.trapezoid(y, x))
    width = float(np.trapezoid(np.ones_like(x), x))
    weak_auc, strong_auc = weak_mean * width, strong_mean * width
    gap = strong_auc - weak_auc
    apgr = (auc - weak_auc) / gap if gap != 0 else float("nan")
    cpt = [float(np.interp(p * (strong_mean - weak_mean) + weak_mean, y, x)) for p in (0.5, 0.8)]
    return TwoModelResult(x.tolist(), y.tolist(), apgr, cpt[0], cpt[1])


def routellm_two_model(
    preference: FloatArray, strong: FloatArray, weak: FloatArray, steps: int = 10
) -> TwoModelResult:
    """RouteLLM's curve, APGR and CPT(50%)/CPT(80%) for a router's strong-model preferences."""
    pref = np.asarray(preference, dtype=np.float64)
    thresholds = np.quantile(pref, np.linspace(0.0, 1.0, steps + 1))
    share, perf = [], []
    for i, threshold in enumerate(thresholds):
        to_strong = pref >= threshold if i != len(thresholds) - 1 else pref > threshold
        share.append(float(to_strong.mean()))
        perf.append(float(np.where(to_strong, strong, weak).mean()))
    return _figures(share, perf, float(np.mean(strong)), float(np.mean(weak)))


def routellm_oracle(strong: FloatArray, weak: FloatArray, steps: int = 10) -> TwoModelResult:
    """The best any router could do: strong calls spent on the largest score gains first."""
    gain = np.sort(np.asarray(strong) - np.asarray(weak))[::-1]
    gain = np.concatenate([[0.0], np.cumsum(np.clip(gain, 0.0, None))])
    n = len(strong)
    share, perf = [], []
    for k in range(steps + 1):
        calls = n * k / steps
        whole = int(calls)
        bonus = gain[whole] + (calls - whole) * (gain[min(whole + 1, n)] - gain[whole])
        share.append(k / steps)
        perf.append(float((np.sum(weak) + bonus) / n))
    return _figures(share, perf, float(np.mean(strong)), float(np.mean(weak)))


def routellm_random(
    strong: FloatArray, weak: FloatArray, *, draws: int = 20, seed: int = 0, steps: int = 10
) -> TwoModelResult:
    """RouteLLM's random router (uniform preferences), figures averaged over seeded draws."""
    rng = np.random.default_rng(seed)
    runs = [routellm_two_model(rng.random(len(strong)), strong, weak, steps) for _ in range(draws)]
    return TwoModelResult(
        np.mean([r.strong_share for r in runs], axis=0).tolist(),
        np.mean([r.performance for r in runs], axis=0).tolist(),
        float(np.mean([r.apgr for r in runs])),
        float(np.mean([r.cpt50 for r in runs])),
        float(np.mean([r.cpt80 for r in runs])),
    )


def roc_auc(predicted: FloatArray, scores: FloatArray) -> float:
    """Area under the ROC curve of predictions against outcomes (scores >= 0.5 are positive)."""
    positive = np.asarray(scores) >= 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(predicted, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: FloatArray) -> FloatArray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


@dataclass(frozen=True)
class CostQualityPoint:
    """One routing policy's mean cost per prompt and mean score."""

    cost: float
    quality: float
    label: str = ""


def pareto_frontier(points: Sequence[CostQualityPoint]) -> list[CostQualityPoint]:
    """The points no other point beats on both cost and quality, cheapest first."""
    frontier: list[CostQualityPoint] = []
    for point in sorted(points, key=lambda p: (p.cost, -p.quality)):
        if not frontier or point.quality > frontier[-1].quality:
            frontier.append(point)
    return frontier


def random_mix_frontier(points: Sequence[CostQualityPoint]) -> list[CostQualityPoint]:
    """Upper convex hull of fixed-model points: what splitting traffic at random can reach."""
    hull: list[CostQualityPoint] = []
    for p in pareto_frontier(points):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # Drop b if it lies on or under the segment from a to p.
            if (b.quality - a.quality) * (p.cost - a.cost) <= (p.quality - a.quality) * (
                b.cost - a.cost
            ):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def cost_at_quality(frontier: Sequence[CostQualityPoint], target: float) -> float | None:
    """Least cost at which a frontier reaches ``target`` quality, mixing adjacent points linearly.

    ``None`` if no point reaches the target.
    """
    previous: CostQualityPoint | None = None
    for point in frontier:
        if point.quality >= target:
            if previous is None or point.quality == previous.quality:
                return point.cost
            t = (target - previous.quality) / (point.quality - previous.quality)
            return previous.cost + t * (point.cost - previous.cost)
        previous = point
    return None
