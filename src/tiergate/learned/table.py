"""Outcome records as a prompt x model table, and deterministic splits by prompt."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tiergate.outcomes import OutcomeRecord

__all__ = ["OutcomeTable", "split_share"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def split_share(key: str, seed: int = 0, purpose: str = "split") -> float:
    """A stable number in [0, 1) for a key: the same on every machine and Python run.

    Splits compare it with a share, so a prompt always lands on the same side
    for a given seed, whatever the file order. ``purpose`` keeps nested splits
    independent (training's own validation split inside an evaluation split).
    """
    digest = hashlib.blake2b(f"{purpose}\x00{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class OutcomeTable:
    """Scores and costs of each model on each distinct prompt.

    ``scores[i, j]`` is the mean score of ``models[j]`` on ``prompts[i]`` (NaN
    when that pair was not observed); ``costs`` likewise for ``cost_usd``.
    """

    prompts: list[str]
    tasks: list[str | None]
    models: list[str]
    scores: FloatArray
    costs: FloatArray

    @classmethod
    def from_records(cls, records: Iterable[OutcomeRecord]) -> OutcomeTable:
        """Group records by prompt text and model, averaging repeated observations."""
        prompt_index: dict[str, int] = {}
        tasks: list[str | None] = []
        model_index: dict[str, int] = {}
        rows: list[tuple[int, int, float, float | None]] = []
        for record in records:
            text = record.text
            i = prompt_index.setdefault(text, len(prompt_index))
            if i == len(tasks):
                tasks.append(record.task)
            j = model_index.setdefault(record.model, len(model_index))
            rows.append((i, j, record.score, record.cost_usd))
        shape = (len(prompt_index), len(model_index))
        score_sum, score_n = np.zeros(shape), np.zeros(shape)
        cost_sum, cost_n = np.zeros(shape), np.zeros(shape)
        for i, j, score, cost in rows:
            score_sum[i, j] += score
            score_n[i, j] += 1
            if cost is not None:
                cost_sum[i, j] += cost
                cost_n[i, j] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = np.where(score_n > 0, score_sum / score_n, np.nan)
            costs = np.where(cost_n > 0, cost_sum / cost_n, np.nan)
        return cls(list(prompt_index), tasks, list(model_index), scores, costs)

    def subset(self, rows: BoolArray | Sequence[int]) -> OutcomeTable:
        """The table restricted to some prompts (a mask or indices)."""
        index = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return OutcomeTable(
            [self.prompts[i] for i in index],
            [self.tasks[i] for i in index],
            list(self.models),
            self.scores[index],
            self.costs[index],
        )

    def columns(self, models: Sequence[str]) -> OutcomeTable:
        """The table restricted to some models, in the given order."""
        index = [self.models.index(m) for m in models]
        return OutcomeTable(
            list(self.prompts),
            list(self.tasks),
            list(models),
            self.scores[:, index],
            self.costs[:, index],
        )

    def complete(self) -> OutcomeTable:
        """Only the prompts that every model has a score for."""
        keep = np.asarray(~np.isnan(self.scores).any(axis=1), dtype=np.bool_)
        return self.subset(keep)

    def split(
        self, share: float, seed: int = 0, *, by_task: bool = False, purpose: str = "split"
    ) -> tuple[BoolArray, BoolArray]:
        """Deterministic (train, held-out) masks: ``share`` of prompts (or of tasks) held out."""
        keys = [(t or p) if by_task else p for p, t in zip(self.prompts, self.tasks, strict=True)]
        shares = {k: split_share(k, seed, purpose) for k in keys}
        held = np.array([shares[k] < share for k in keys], dtype=bool)
        if len(shares) >= 2 and (held.all() or not held.any()):
            # A few keys (whole tasks) can all land on one side: hold out the `share` of
            # them that draw the lowest numbers instead, at least one and not all.
            ranked = sorted(shares, key=shares.__getitem__)
            count = min(max(round(share * len(ranked)), 1), len(ranked) - 1)
            chosen = set(ranked[:count])
            held = np.array([k in chosen for k in keys], dtype=bool)
        return ~held, held
