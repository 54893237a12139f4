"""The measured study behind docs/learned-router.md: router against baselines.

Run ``python -m tiergate.learned.study [DATA_DIR]`` (default
``../shared/data/routing``). Each data set is split in half by prompt
(:func:`~tiergate.learned.table.split_share` with seed 0: a prompt lands on
the same side on every machine); the router and the baselines are trained on
one half and evaluated on the other.

Baselines: random (RouteLLM's), prompt length (longer prompts to the strong
model), and a TF-IDF logistic regression per model (scikit-learn defaults),
which goes through the same evaluation as the router.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tiergate.learned.evaluate import (
    ManyModelReport,
    TwoModelReport,
    evaluate_many,
    evaluate_two,
    expected_costs,
)
from tiergate.learned.router import LearnedRouter
from tiergate.learned.table import OutcomeTable
from tiergate.learned.train import TrainOptions, train_router
from tiergate.outcomes import OutcomeRecord, read_outcomes

__all__ = ["StudyResult", "run_study", "split_records"]

FloatArray = npt.NDArray[np.float64]

MMLU = "mmlu-dev.outcomes.jsonl"
ROUTERBENCH = "routerbench-dev.outcomes.jsonl"


@dataclass(frozen=True)
class StudyResult:
    """One data set's report (router plus baselines) and how long training took."""

    name: str
    report: TwoModelReport | ManyModelReport
    train_seconds: float


def split_records(
    records: list[OutcomeRecord], *, by_task: bool = False, seed: int = 0
) -> tuple[list[OutcomeRecord], OutcomeTable]:
    """The training half (records) and the evaluation half (a table) of a data set."""
    table = OutcomeTable.from_records(records)
    train_rows, test_rows = table.split(0.5, seed, by_task=by_task)
    train_prompts = {p for p, keep in zip(table.prompts, train_rows, strict=True) if keep}
    return [r for r in records if r.text in train_prompts], table.subset(test_rows).complete()


def tfidf_lr(train: list[OutcomeRecord], test: OutcomeTable) -> FloatArray:
    """Baseline: scikit-learn TfidfVectorizer + LogisticRegression per model, defaults."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    table = OutcomeTable.from_records(train).columns(test.models)
    vectorizer = TfidfVectorizer()
    x_train = vectorizer.fit_transform(table.prompts)
    x_test = vectorizer.transform(test.prompts)
    columns = []
    for j in range(len(test.models)):
        seen = ~np.isnan(table.scores[:, j])
        model = LogisticRegression(max_iter=2000).fit(x_train[seen], table.scores[seen, j] >= 0.5)
        columns.append(model.predict_proba(x_test)[:, 1])
    return np.column_stack(columns)


def _study(
    name: str, records: list[OutcomeRecord], options: TrainOptions, by_task: bool, seed: int = 0
) -> StudyResult:
    train, test = split_records(records, by_task=by_task, seed=seed)
    started = time.perf_counter()
    artifact, _ = train_router(train, options)
    seconds = time.perf_counter() - started
    router = LearnedRouter(artifact)
    test = test.columns([m for m in router.models if m in test.models])
    predicted = router.predict_many(test.prompts)
    baseline = tfidf_lr(train, test)
    if len(test.models) == 2:
        means = test.scores.mean(axis=0)
        s, w = (0, 1) if means[0] >= means[1] else (1, 0)
        length = np.array([len(p) for p in test.prompts], dtype=np.float64)
        extra = {"length": length, "tfidf-lr": baseline[:, s] - baseline[:, w]}
        return StudyResult(name, evaluate_two(predicted, test, extra), seconds)
    prices = expected_costs(router, test)
    report = evaluate_many(predicted, test, prices, {"tfidf-lr": baseline})
    return StudyResult(name, report, seconds)


def run_study(
    data_dir: Path, options: TrainOptions | None = None, *, by_task: bool = False, seed: int = 0
) -> list[StudyResult]:
    """Train on one half and evaluate on the other, for both data sets (split ``seed``)."""
    opts = options or TrainOptions()
    return [
        _study(name, read_outcomes(data_dir / name), opts, by_task, seed)
        for name in (MMLU, ROUTERBENCH)
    ]


def _print(result: StudyResult) -> None:
    report = result.report
    print(
        f"== {result.name}: {report.n_prompts} held-out prompts, trained in "
        f"{result.train_seconds:.1f}s",
        flush=True,
    )
    if isinstance(report, TwoModelReport):
        for method, r in report.results.items():
            print(
                f"  {method:10s} APGR {r.apgr:.3f}  CPT(50%) {100 * r.cpt50:5.1f}%  "
                f"CPT(80%) {100 * r.cpt80:5.1f}%"
            )
    else:
        for method, share in report.cost_share.items():
            shown = "not reached" if share is None else f"{100 * share:.1f}%"
            print(f"  {method:10s} cost share at 95% of {report.reference}: {shown}")


def main(argv: list[str]) -> None:
    """Print the study's figures.

    ``--by-task`` holds out whole tasks instead of prompts; ``--seeds=N`` repeats
    the study on split seeds 0..N-1 (default 1: seed 0 only).
    """
    by_task = "--by-task" in argv
    seeds = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--seeds=")), 1)
    args = [a for a in argv if not a.startswith("--")]
    data_dir = Path(args[0]) if args else Path("../shared/data/routing")
    for seed in range(seeds):
        if seeds > 1:
            print(f"#### split seed {seed}", flush=True)
        for result in run_study(data_dir, by_task=by_task, seed=seed):
            _print(result)


if __name__ == "__main__":
    main(sys.argv[1:])
