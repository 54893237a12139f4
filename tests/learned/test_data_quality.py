"""The quality bar on the real routing data (../shared/data/routing), deterministic split.

Both data sets are split in half by prompt (seed 0, as `python -m
tiergate.learned.study`); the router trains on one half with the C the study
chose and is evaluated on the other. Figures and their baselines are in
docs/learned-router.md.
"""

from __future__ import annotations

import pytest

from tiergate.learned import LearnedRouter
from tiergate.learned.evaluate import ManyModelReport, TwoModelReport, evaluate_router
from tiergate.learned.study import MMLU, ROUTERBENCH, split_records
from tiergate.learned.train import TrainOptions, train_router
from tiergate.outcomes import read_outcomes

from .conftest import DATA

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(
        not DATA.is_dir(), reason=f"routing data not found at {DATA} (../shared/data/routing)"
    ),
]

# The study's C, fixed here so the test skips cross-validation and stays fast.
FAST = TrainOptions(c_grid=(1.0,), folds=0)


def _evaluate(name: str) -> TwoModelReport | ManyModelReport:
    train, test = split_records(read_outcomes(DATA / name))
    router = LearnedRouter(train_router(train, FAST)[0])
    return evaluate_router(router, test)


@pytest.fixture(scope="module")
def mmlu() -> TwoModelReport:
    report = _evaluate(MMLU)
    assert isinstance(report, TwoModelReport)
    return report


def test_mmlu_two_models(mmlu: TwoModelReport) -> None:
    report = mmlu
    router, random = report.results["router"], report.results["random"]
    # Regression guard at the measured level (0.58-0.62 by C and split), well above random.
    assert router.apgr >= 0.56
    assert router.apgr > random.apgr + 0.05
    assert router.cpt50 <= 0.40


@pytest.mark.xfail(
    reason="issue 10 bar APGR >= 0.65 not reached: measured 0.61-0.62 over four splits; "
    "even a per-subject oracle reaches 0.645 (docs/learned-router.md)"
)
def test_mmlu_issue_bar(mmlu: TwoModelReport) -> None:
    result = mmlu.results["router"]
    assert result.apgr >= 0.65
    assert result.cpt50 <= 0.30


def test_routerbench_many_models() -> None:
    report = _evaluate(ROUTERBENCH)
    assert isinstance(report, ManyModelReport)
    assert report.reference == "gpt-4-1106-preview"
    share = report.cost_share["router (value)"]
    assert share is not None and share <= 0.25
    random = report.cost_share["random"]
    assert random is not None and share < random
