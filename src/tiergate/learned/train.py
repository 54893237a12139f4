"""Training: one regularised logistic model per LLM over the prompt features.

Each model's outcome score (0..1) is the target; fractional scores are kept
as weighted positive and negative examples. The regularisation strength is
chosen by k-fold cross-validation over the training prompts (split by prompt),
that out-of-fold figure is reported, and the final router is refitted on all
prompts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix, vstack
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from tiergate.learned.artifact import ModelStats, RouterArtifact, TaskPrior, task_probabilities
from tiergate.learned.features import fit_features
from tiergate.learned.metrics import roc_auc, routellm_two_model
from tiergate.learned.table import OutcomeTable, split_share
from tiergate.outcomes import OutcomeRecord

__all__ = ["TrainError", "TrainOptions", "TrainReport", "train_router"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[str, int, int], None]


class TrainError(ValueError):
    """The outcomes cannot train a router (e.g. only one model)."""


@dataclass(frozen=True)
class TrainOptions:
    """Knobs of :func:`train_router`; defaults are the measured best (docs/learned-router.md)."""

    seed: int = 0
    # Cross-validation folds for choosing C and reporting a validation figure;
    # below 2, the middle of c_grid is used and no figure is reported.
    folds: int = 5
    c_grid: tuple[float, ...] = (0.1, 0.3, 1.0)
    min_df: int = 2
    max_terms: int = 60_000
    # Task prior (used when the outcomes name at least two tasks): the share of
    # the prediction that comes from "which task does this prompt look like"
    # times each model's mean score on that task. With several values,
    # cross-validation picks one with C (by pairwise APGR); without validation,
    # default_task_blend. (0,) turns it off. Fixed at 0.75 by default: the
    # pairwise-APGR criterion picks 0.75 on MMLU but 0.25 on RouterBench, where
    # 0.75 routes cheaper on every split (docs/learned-router.md).
    task_blends: tuple[float, ...] = (0.75,)
    default_task_blend: float = 0.75
    task_c: float = 1.0
    # Each task's mean score is shrunk toward the model's overall mean as if
    # this many prompts at the overall mean had been seen too.
    task_shrinkage: float = 5.0
    min_task_prompts: int = 10


@dataclass(frozen=True)
class TrainReport:
    """What training measured on its own held-out prompts."""

    n_prompts: int
    folds: int
    chosen_c: float
    per_c_pairwise_apgr: dict[float, float]
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    apgr: float | None = None
    tasks: int = 0
    task_blend: float = 0.0


def _noop(stage: str, done: int, total: int) -> None:
    return None


def train_router(
    records: Sequence[OutcomeRecord],
    options: TrainOptions | None = None,
    progress: Progress | None = None,
) -> tuple[RouterArtifact, TrainReport]:
    """Train a router on outcome records: deterministic for a given ``options.seed``."""
    opts = options or TrainOptions()
    tick = progress or _noop
    table = OutcomeTable.from_records(records)
    # Sorted models and prompts: the same router whatever the order of the file.
    order = sorted(range(len(table.prompts)), key=table.prompts.__getitem__)
    table = table.columns(sorted(table.models)).subset(order)
    if len(table.models) < 2:
        raise TrainError(
            f"outcomes for at least two models are needed to route; found only {table.models}"
        )
    # Unlabelled text only: fitting the vocabulary on every prompt leaks no outcome.
    feats = fit_features(table.prompts, min_df=opts.min_df, max_terms=opts.max_terms)
    tick("features", 0, 1)
    x_all = feats.transform(table.prompts)
    fold = np.array(
        [int(split_share(p, opts.seed, "validation") * opts.folds) for p in table.prompts]
    )
    validate = opts.folds >= 2 and len(table.prompts) >= 5 * opts.folds
    total = len(table.models) * ((len(opts.c_grid) * opts.folds if validate else 0) + 1)
    done = 0

    task_ids, task_names = _task_labels(table, opts.min_task_prompts)
    use_tasks = len(task_names) >= 2 and any(b > 0 for b in opts.task_blends)
    per_c: dict[float, float] = {}
    per_model: dict[str, dict[str, float]] = {}
    apgr: float | None = None
    best_c = opts.c_grid[len(opts.c_grid) // 2]
    best_blend = opts.default_task_blend if use_tasks else 0.0
    if validate:
        task_oof = np.zeros(table.scores.shape)
        if use_tasks:
            for k in range(opts.folds):
                held = fold == k
                prior = _fit_task_prior(
                    x_all[~held], task_ids[~held], task_names, table.scores[~held], 0.0, opts
                )
                task_oof[held] = _task_predict(x_all[held], prior)
        blends = opts.task_blends if use_tasks else (0.0,)
        predictions: dict[float, FloatArray] = {}
        blend_of: dict[float, float] = {}
        for c in opts.c_grid:
            out_of_fold = np.zeros(table.scores.shape)
            for k in range(opts.folds):
                held = fold == k
                for j in range(len(table.models)):
                    w, b = _fit_one(x_all[~held], table.scores[~held, j], c, opts.seed)
                    out_of_fold[held, j] = _sigmoid(x_all[held] @ w + b)
                    done += 1
                    tick(f"cross-validating C={c:g}", done, total)
            # The blend with the task prior is chosen with C, on the same folds.
            by_blend = {
                b: pairwise_apgr((1 - b) * out_of_fold + b * task_oof, table.scores) for b in blends
            }
            blend_of[c] = max(by_blend, key=lambda b: (by_blend[b], -b))
            predictions[c] = (1 - blend_of[c]) * out_of_fold + blend_of[c] * task_oof
            per_c[c] = by_blend[blend_of[c]]
        # Routing needs the right order between models on each prompt, not
        # calibrated probabilities: pairwise APGR picks a C that routes better
        # than log loss or per-model AUC do (measured, docs/learned-router.md).
        best_c = max(per_c, key=lambda c: (per_c[c], -c))
        best_blend = blend_of[best_c]
        best = predictions[best_c]
        for j, model in enumerate(table.models):
            seen = ~np.isnan(table.scores[:, j])
            per_model[model] = {
                "auc": roc_auc(best[seen, j], table.scores[seen, j]),
                "log_loss": _mean_log_loss(best[seen, j : j + 1], table.scores[seen, j : j + 1]),
            }
        if len(table.models) == 2:
            apgr = _two_model_apgr(table, best)

    weights = np.zeros((feats.n_features, len(table.models)))
    intercepts = np.zeros(len(table.models))
    for j in range(len(table.models)):
        weights[:, j], intercepts[j] = _fit_one(x_all, table.scores[:, j], best_c, opts.seed)
        done += 1
        tick("training", done, total)

    task_prior = None
    if use_tasks and best_blend > 0:
        task_prior = _fit_task_prior(x_all, task_ids, task_names, table.scores, best_blend, opts)

    artifact = RouterArtifact(
        models=list(table.models),
        features=feats,
        weights=weights,
        intercepts=intercepts,
        stats=_stats(table),
        task_prior=task_prior,
        training={
            "seed": opts.seed,
            "c": best_c,
            "task_blend": best_blend if task_prior is not None else 0.0,
            "tasks": len(task_names),
            "n_prompts": len(table.prompts),
            "n_records": len(records),
            "validation": {
                "folds": opts.folds,
                "per_c_pairwise_apgr": {f"{c:g}": v for c, v in per_c.items()},
                "apgr": apgr,
            },
        },
    )
    report = TrainReport(
        n_prompts=len(table.prompts),
        folds=opts.folds if validate else 0,
        chosen_c=best_c,
        per_c_pairwise_apgr=per_c,
        per_model=per_model,
        apgr=apgr,
        tasks=len(task_names),
        task_blend=task_prior.blend if task_prior is not None else 0.0,
    )
    return artifact, report


def _task_labels(table: OutcomeTable, min_prompts: int) -> tuple[IntArray, list[str]]:
    """Each prompt's task index (-1: no task, or a task with too few prompts) and the names."""
    counts: dict[str, int] = {}
    for task in table.tasks:
        if task:
            counts[task] = counts.get(task, 0) + 1
    names = sorted(t for t, n in counts.items() if n >= min_prompts)
    index = {t: i for i, t in enumerate(names)}
    ids = np.array([index.get(t, -1) if t else -1 for t in table.tasks], dtype=np.int64)
    return ids, names


def _fit_task_prior(
    x: csr_matrix,
    task_ids: IntArray,
    names: list[str],
    scores: FloatArray,
    blend: float,
    opts: TrainOptions,
) -> TaskPrior:
    """A multinomial task classifier over the prompt features, and per-task mean scores."""
    labelled = task_ids >= 0
    overall = np.nanmean(scores, axis=0)
    overall = np.where(np.isnan(overall), 0.5, overall)
    means = np.empty((len(names), scores.shape[1]))
    for k in range(len(names)):
        rows = scores[task_ids == k]
        seen = ~np.isnan(rows)
        total = np.where(seen, rows, 0.0).sum(axis=0)
        means[k] = (total + opts.task_shrinkage * overall) / (
            seen.sum(axis=0) + opts.task_shrinkage
        )
    weights = np.zeros((x.shape[1], len(names)))
    # A task absent from these rows can never be predicted (a very negative intercept).
    intercepts = np.full(len(names), -1e3)
    # One-vs-rest liblinear (task probabilities = normalised sigmoids): as good
    # as a multinomial model here and several times faster to fit (measured).
    for k in np.unique(task_ids[labelled]):
        target = task_ids[labelled] == k
        if target.all():
            intercepts[k] = 0.0
            continue
        model = LogisticRegression(
            C=opts.task_c, solver="liblinear", max_iter=1000, random_state=opts.seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[labelled], target)
        weights[:, k], intercepts[k] = model.coef_[0], float(model.intercept_[0])
    return TaskPrior(list(names), weights, intercepts, means, blend)


def _task_predict(x: csr_matrix, prior: TaskPrior) -> FloatArray:
    return task_probabilities(np.asarray(x @ prior.weights) + prior.intercepts) @ prior.means


def _fit_one(x: csr_matrix, scores: FloatArray, c: float, seed: int) -> tuple[FloatArray, float]:
    """Weights and intercept of one model's logistic regression on its observed prompts."""
    seen = np.flatnonzero(~np.isnan(scores))
    y = scores[seen]
    mean = float(y.mean()) if len(y) else 0.5
    if len(y) == 0 or np.all(y == y[0]):
        # One outcome only: nothing to separate, predict the (clipped) base rate everywhere.
        p = min(max(mean, 1e-3), 1 - 1e-3)
        return np.zeros(x.shape[1]), math.log(p / (1 - p))
    # A fractional score s is a positive example of weight s plus a negative of weight 1 - s.
    rows = x[seen]
    xs = vstack([rows, rows]).tocsr()
    labels = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weight = np.concatenate([y, 1.0 - y])
    keep = weight > 0
    # liblinear: ten times faster than lbfgs here and as good (measured); seeded, so repeatable.
    model = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=seed)
    with warnings.catch_warnings():
        # The solver may stop a hair short of its tolerance on large vocabularies; the
        # validation figure, not the optimiser's verdict, says whether the fit is good.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(xs[keep], labels[keep], sample_weight=weight[keep])
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def pairwise_apgr(predicted: FloatArray, scores: FloatArray) -> float:
    """Mean over model pairs of RouteLLM's APGR when routing between just those two.

    For each pair, the better model on average is "strong" and the preference
    is the predicted quality difference: the ranking a router needs to spend
    the better model where it makes the difference.
    """
    figures = []
    n_models = scores.shape[1]
    for a in range(n_models):
        for b in range(a + 1, n_models):
            both = ~np.isnan(scores[:, a]) & ~np.isnan(scores[:, b])
            sa, sb = scores[both, a], scores[both, b]
            if both.sum() < 10 or sa.mean() == sb.mean():
                continue
            if sa.mean() < sb.mean():
                sa, sb, a_, b_ = sb, sa, b, a
            else:
                a_, b_ = a, b
            pref = predicted[both, a_] - predicted[both, b_]
            figures.append(routellm_two_model(pref, sa, sb).apgr)
    return float(np.mean(figures)) if figures else float("nan")


def _mean_log_loss(predicted: FloatArray, scores: FloatArray) -> float:
    p = np.clip(predicted, 1e-6, 1 - 1e-6)
    seen = ~np.isnan(scores)
    s = scores[seen]
    losses = -(s * np.log(p[seen]) + (1 - s) * np.log(1 - p[seen]))
    return float(losses.mean())


def _two_model_apgr(table: OutcomeTable, predicted: FloatArray) -> float | None:
    complete = ~np.isnan(table.scores).any(axis=1)
    if complete.sum() < 10:
        return None
    strong = int(np.nanargmax(np.nanmean(table.scores, axis=0)))
    weak = 1 - strong
    pref = predicted[complete, strong] - predicted[complete, weak]
    result = routellm_two_model(pref, table.scores[complete, strong], table.scores[complete, weak])
    return result.apgr


def _cost_line(lengths: FloatArray, costs: FloatArray) -> tuple[float, float]:
    """Least-squares cost = fixed + per_char * length, both clipped at zero.

    Input tokens grow with the prompt and output tokens mostly don't, so a
    line beats a mean price when the router weighs cost against quality per
    prompt (measured on RouterBench: docs/learned-router.md).
    """
    if len(lengths) < 2 or np.ptp(lengths) == 0:
        return float(costs.mean()), 0.0
    slope = max(float(np.polyfit(lengths, costs, 1)[0]), 0.0)
    fixed = max(float(np.mean(costs - slope * lengths)), 0.0)
    return fixed, slope


def _stats(table: OutcomeTable) -> dict[str, ModelStats]:
    lengths = np.array([len(p) for p in table.prompts], dtype=np.float64)
    out = {}
    for j, model in enumerate(table.models):
        scores = table.scores[:, j]
        costs = table.costs[:, j]
        seen_cost = ~np.isnan(costs)
        fixed = per_char = mean_cost = None
        if seen_cost.any():
            mean_cost = float(costs[seen_cost].mean())
            fixed, per_char = _cost_line(lengths[seen_cost], costs[seen_cost])
        out[model] = ModelStats(
            n=int((~np.isnan(scores)).sum()),
            mean_score=float(np.nanmean(scores)),
            mean_cost_usd=mean_cost,
            cost_fixed_usd=fixed,
            cost_per_char_usd=per_char,
        )
    return out
