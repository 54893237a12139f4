"""RouteLLM metrics and the cost/quality frontier."""

from __future__ import annotations

import numpy as np
import pytest

from tiergate.learned.metrics import (
    CostQualityPoint,
    cost_at_quality,
    pareto_frontier,
    random_mix_frontier,
    roc_auc,
    routellm_oracle,
    routellm_random,
    routellm_two_model,
)


@pytest.fixture
def outcomes() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    strong = (rng.random(1000) < 0.8).astype(float)
    weak = (rng.random(1000) < 0.6).astype(float)
    return strong, weak


def test_curve_runs_from_all_weak_to_all_strong(outcomes) -> None:
    strong, weak = outcomes
    result = routellm_two_model(np.arange(1000.0), strong, weak)
    assert result.strong_share[0] == 0.0 and result.strong_share[-1] == 1.0
    assert len(result.strong_share) == 11
    assert result.performance[0] == pytest.approx(weak.mean())
    assert result.performance[-1] == pytest.approx(strong.mean())
    assert np.allclose(np.diff(result.strong_share), 0.1)


def test_apgr_is_area_of_gap_recovered(outcomes) -> None:
    strong, weak = outcomes
    gain = strong - weak
    perfect = routellm_two_model(gain + np.linspace(0, 1e-6, 1000), strong, weak)
    worst = routellm_two_model(-gain + np.linspace(0, 1e-6, 1000), strong, weak)
    oracle = routellm_oracle(strong, weak)
    # The oracle never spends a call where the strong model is worse; a router that
    # must reach 100% strong calls does, so it stays a little below.
    assert oracle.apgr - 0.1 < perfect.apgr <= oracle.apgr
    assert perfect.apgr > 1.0 > 0.0 > worst.apgr
    # By hand: trapezoid over the points, minus the weak rectangle, over the gap rectangle.
    x, y = np.array(perfect.strong_share), np.array(perfect.performance)
    area = np.sum((y[1:] + y[:-1]) / 2 * np.diff(x))
    expected = (area - weak.mean()) / (strong.mean() - weak.mean())
    assert perfect.apgr == pytest.approx(expected)


def test_random_router_recovers_half(outcomes) -> None:
    strong, weak = outcomes
    result = routellm_random(strong, weak)
    assert result.apgr == pytest.approx(0.5, abs=0.05)
    assert result.cpt50 == pytest.approx(0.5, abs=0.07)
    assert result.cpt80 == pytest.approx(0.8, abs=0.07)


def test_cpt_interpolates_the_curve(outcomes) -> None:
    strong, weak = outcomes
    result = routellm_oracle(strong, weak)
    target = weak.mean() + 0.5 * (strong.mean() - weak.mean())
    assert result.cpt50 == pytest.approx(np.interp(target, result.performance, result.strong_share))
    assert result.cpt50 < 0.2


def test_roc_auc() -> None:
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert np.isnan(roc_auc(np.array([0.1]), np.array([1])))


def test_frontiers_and_cost_at_quality() -> None:
    points = [
        CostQualityPoint(1.0, 0.5, "cheap"),
        CostQualityPoint(2.0, 0.52, "meh"),
        CostQualityPoint(3.0, 0.4, "bad"),
        CostQualityPoint(10.0, 0.9, "best"),
    ]
    assert [p.label for p in pareto_frontier(points)] == ["cheap", "meh", "best"]
    hull = random_mix_frontier(points)
    assert [p.label for p in hull] == ["cheap", "best"]
    assert cost_at_quality(hull, 0.7) == pytest.approx(5.5)
    assert cost_at_quality(hull, 0.4) == 1.0
    assert cost_at_quality(hull, 0.95) is None
