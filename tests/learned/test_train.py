"""Training: determinism, validation report, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tiergate.learned.train import TrainError, TrainOptions, pairwise_apgr, train_router
from tiergate.outcomes import OutcomeRecord

from .conftest import synthetic_records


def test_same_seed_same_router() -> None:
    records = synthetic_records(n=120)
    a, report_a = train_router(records, TrainOptions(seed=3))
    b, report_b = train_router(list(reversed(records)), TrainOptions(seed=3))
    assert a.models == b.models
    assert a.features.vocabulary == b.features.vocabulary
    assert np.allclose(a.weights, b.weights)
    assert report_a == report_b


def test_reports_validation_and_progress() -> None:
    seen: list[tuple[str, int, int]] = []
    artifact, report = train_router(
        synthetic_records(), progress=lambda s, d, t: seen.append((s, d, t))
    )
    assert report.folds == 5
    assert report.chosen_c in TrainOptions().c_grid
    assert set(report.per_model) == {"big", "coder", "small"}
    # "big" is good at everything, so only the specialists' outcomes are predictable.
    assert report.per_model["coder"]["auc"] > 0.7
    assert report.per_model["small"]["auc"] > 0.7
    assert report.per_c_pairwise_apgr[report.chosen_c] > 0.6
    assert seen[-1][1] == seen[-1][2], "progress ends at its total"
    assert artifact.stats["big"].n == 240
    assert artifact.stats["small"].mean_cost_usd is not None
    assert artifact.training["seed"] == 0


def test_two_models_report_apgr() -> None:
    _, report = train_router(synthetic_records(models=("big", "small")))
    assert report.apgr is not None and report.apgr > 0.6


def test_fractional_scores_and_constant_models() -> None:
    records = [
        OutcomeRecord(
            prompt=f"prompt number {i} about {'cats' if i % 2 else 'dogs'}", model=m, score=s
        )
        for i in range(40)
        for m, s in (("always", 1.0), ("half", 0.5 if i % 2 else 0.9))
    ]
    artifact, _ = train_router(records)
    assert artifact.weights[:, 0].any() == False  # noqa: E712 - constant model has no weights
    assert artifact.intercepts[0] > 5


def test_tiny_data_trains_without_validation() -> None:
    records = [
        OutcomeRecord(prompt=p, model=m, score=s)
        for p, m, s in [("a b", "x", 1.0), ("a b", "y", 0.0), ("c d", "x", 0.0), ("c d", "y", 1.0)]
    ]
    _, report = train_router(records)
    assert report.folds == 0


def test_one_model_is_refused() -> None:
    records = [OutcomeRecord(prompt="p", model="only", score=1.0)]
    with pytest.raises(TrainError, match="at least two models"):
        train_router(records)


def test_pairwise_apgr_of_perfect_predictions_is_high() -> None:
    rng = np.random.default_rng(0)
    scores = (rng.random((200, 3)) < [0.8, 0.5, 0.3]).astype(float)
    assert pairwise_apgr(scores, scores) > 1.0
    assert 0.3 < pairwise_apgr(rng.random((200, 3)), scores) < 0.7


def test_task_prior_from_outcome_tasks() -> None:
    artifact, report = train_router(synthetic_records())
    assert report.tasks == 3
    prior = artifact.task_prior
    if report.task_blend == 0:
        assert prior is None  # cross-validation preferred the words alone
    else:
        assert prior is not None and prior.blend == report.task_blend
        coder = artifact.models.index("coder")
        # "coder" is good at code and bad at math, and the per-task means say so.
        assert prior.means[prior.tasks.index("code"), coder] > 0.7
        assert prior.means[prior.tasks.index("math"), coder] < 0.5


def test_no_tasks_no_task_prior() -> None:
    records = [
        OutcomeRecord(prompt=r.prompt, model=r.model, score=r.score) for r in synthetic_records()
    ]
    artifact, report = train_router(records, TrainOptions(folds=0))
    assert artifact.task_prior is None and report.tasks == 0
