"""Scoring: the object the gateway's ``learned`` routing strategy holds.

Prediction is plain numpy over the weights in the router file: pure,
synchronous, and well under a millisecond for an ordinary prompt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tiergate.learned.artifact import RouterArtifact, load_artifact, task_probabilities

__all__ = ["LearnedRouter", "NoCandidateError"]

FloatArray = npt.NDArray[np.float64]


class NoCandidateError(ValueError):
    """``choose`` was given no model that the router knows."""


@dataclass(frozen=True)
class _Loaded:
    artifact: RouterArtifact
    dense_weights: FloatArray
    task_dense_weights: FloatArray | None
    file_stamp: tuple[int, int] | None


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


class LearnedRouter:
    """Predicts each model's answer quality for a prompt and picks a model.

    Quality is the predicted probability (0..1) that the model's answer scores
    well, i.e. the expected outcome ``score`` the router was trained on.
    """

    def __init__(self, artifact: RouterArtifact, *, path: str | Path | None = None) -> None:
        self._path = None if path is None else Path(path)
        self._state = self._prepare(artifact, None if self._path is None else _stamp(self._path))

    @classmethod
    def load(cls, path: str | Path) -> LearnedRouter:
        """Load a router file; raises :class:`~tiergate.learned.RouterFormatError`."""
        # Take the stamp before reading, so a write racing the load shows up as a change.
        stamp = _stamp(Path(path)) if Path(path).exists() else None
        router = cls(load_artifact(path))
        router._path = Path(path)
        router._state = cls._prepare(router._state.artifact, stamp)
        return router

    @staticmethod
    def _prepare(artifact: RouterArtifact, stamp: tuple[int, int] | None) -> _Loaded:
        n_sparse = artifact.features.n_sparse
        prior = artifact.task_prior
        task_dense = None if prior is None else prior.weights[n_sparse:]
        return _Loaded(artifact, artifact.weights[n_sparse:], task_dense, stamp)

    @property
    def models(self) -> list[str]:
        """The models this router predicts, in file order."""
        return list(self._state.artifact.models)

    @property
    def artifact(self) -> RouterArtifact:
        """The loaded router file's contents (statistics, training information)."""
        return self._state.artifact

    def predict(self, prompt: str) -> dict[str, float]:
        """Predicted quality in 0..1 for every model: pure, synchronous, no I/O."""
        state = self._state
        art = state.artifact
        idx, vals = art.features.sparse(prompt)
        dense = art.features.dense(prompt)
        z = art.intercepts + dense @ state.dense_weights
        if len(idx):
            z = z + vals @ art.weights[idx]
        q = 1.0 / (1.0 + np.exp(-z))
        prior = art.task_prior
        if prior is not None and state.task_dense_weights is not None:
            t = prior.intercepts + dense @ state.task_dense_weights
            if len(idx):
                t = t + vals @ prior.weights[idx]
            q = (1.0 - prior.blend) * q + prior.blend * (task_probabilities(t) @ prior.means)
        return dict(zip(art.models, q.tolist(), strict=True))

    def predict_many(self, prompts: Sequence[str]) -> FloatArray:
        """Predicted quality for many prompts: shape (prompts, models), columns in model order."""
        art = self._state.artifact
        x = art.features.transform(prompts)
        q = 1.0 / (1.0 + np.exp(-(x @ art.weights + art.intercepts)))
        prior = art.task_prior
        if prior is not None:
            q = (1.0 - prior.blend) * q + prior.blend * (
                task_probabilities(x @ prior.weights + prior.intercepts) @ prior.means
            )
        return np.asarray(q, dtype=np.float64)

    def expected_costs(self, prompt: str) -> dict[str, float]:
        """Each model's expected cost_usd for ``prompt`` as learned from the training outcomes.

        Only models whose outcomes carried ``cost_usd``; a gateway with live
        prices and token counts should pass its own costs to :meth:`choose`.
        """
        out = {}
        for model, stats in self._state.artifact.stats.items():
            cost = stats.expected_cost(prompt)
            if cost is not None:
                out[model] = cost
        return out

    def choose(
        self,
        costs: Mapping[str, float],
        tolerance: float,
        *,
        prompt: str | None = None,
        predicted: Mapping[str, float] | None = None,
    ) -> str:
        """Pick the cheapest model whose predicted quality is within ``tolerance`` of the best.

        ``costs`` maps each candidate model to its expected cost for this request
        (any unit, only the order matters); models the router does not know are
        ignored, since it cannot vouch for their quality. Give either ``prompt``
        (the router predicts) or ``predicted`` (the output of :meth:`predict`).

        ``tolerance`` is in absolute quality points: with ``best`` the highest
        predicted quality among the candidates, every candidate with predicted
        quality >= ``best - tolerance`` qualifies, and the cheapest qualifying
        one wins (ties: higher quality, then name). ``0`` picks the best
        predicted model; ``0.05`` accepts up to five points (a 5% absolute
        chance of a worse answer) less than the best; ``1`` picks the cheapest.
        """
        quality, candidates = self._candidates(costs, prompt, predicted)
        best = max(quality[m] for m in candidates)
        qualifying = [m for m in candidates if quality[m] >= best - tolerance]
        return min(qualifying, key=lambda m: (costs[m], -quality[m], m))

    def choose_by_value(
        self,
        costs: Mapping[str, float],
        value: float,
        *,
        prompt: str | None = None,
        predicted: Mapping[str, float] | None = None,
    ) -> str:
        """Pick the model with the best expected net value: ``value * quality - cost``.

        ``value`` is what a fully good answer is worth, in the unit of ``costs``
        (e.g. USD per request): at ``0`` the cheapest model wins, and as it grows
        the router pays for quality only where it predicts a gain worth the
        price. Measured on RouterBench this trade-off reaches 95% of the best
        model's quality at a lower cost than :meth:`choose` (docs/learned-router.md).
        Ties: cheaper, then name. ``prompt``/``predicted`` as in :meth:`choose`.
        """
        quality, candidates = self._candidates(costs, prompt, predicted)
        return min(candidates, key=lambda m: (costs[m] - value * quality[m], costs[m], m))

    def _candidates(
        self,
        costs: Mapping[str, float],
        prompt: str | None,
        predicted: Mapping[str, float] | None,
    ) -> tuple[dict[str, float], list[str]]:
        if (prompt is None) == (predicted is None):
            raise TypeError("needs exactly one of prompt= or predicted=")
        quality = self.predict(prompt) if prompt is not None else dict(predicted or {})
        candidates = [m for m in costs if m in quality]
        if not candidates:
            raise NoCandidateError(
                f"none of the models {sorted(costs)} is known to this router "
                f"(it knows {self.models})"
            )
        return quality, candidates

    def changed(self) -> bool:
        """True if the file this router was loaded from has changed since (mtime or size)."""
        if self._path is None:
            return False
        try:
            return _stamp(self._path) != self._state.file_stamp
        except FileNotFoundError:
            # A router file being replaced may vanish for a moment: keep serving the old one.
            return False

    def reload_if_changed(self) -> bool:
        """Reload from the same path if the file changed; return whether it did.

        The swap is one attribute assignment, so concurrent :meth:`predict`
        calls see either the old or the new router, never a mix. A broken new
        file raises :class:`~tiergate.learned.RouterFormatError` and the old
        router stays in service.
        """
        if self._path is None or not self.changed():
            return False
        stamp = _stamp(self._path)
        artifact = load_artifact(self._path)
        self._state = self._prepare(artifact, stamp)
        return True
