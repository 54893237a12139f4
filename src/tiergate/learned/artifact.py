"""The router file: a versioned, portable container, never a pickle.

A router file is a zip archive in NumPy's ``.npz`` layout (read with
``allow_pickle=False``) holding:

- ``header``: UTF-8 JSON as a byte array: ``format`` (``"tiergate-learned-router"``),
  ``version`` (:data:`FORMAT_VERSION`), ``models``, per-model training
  statistics, the vocabulary (a list of terms, position = column), the dense
  feature names and how the router was trained;
- ``idf``, ``dense_mean``, ``dense_scale``: the feature map;
- ``weights`` (features x models) and ``intercepts`` (models): one logistic
  model per LLM, predicting the probability that it answers well;
- optionally (version 2, when the training outcomes named their ``task``):
  ``task_weights`` (features x tasks), ``task_intercepts`` (tasks) and
  ``task_means`` (tasks x models): a task classifier over the same features
  and each model's (shrunk) mean score per task; the header's ``tasks`` and
  ``task_blend`` say how it mixes into the per-model prediction.

The header's ``feature_extractor`` names the feature code (and its version)
the router was trained with; a file from another extractor is refused.

Any language with a zip reader and a JSON parser can read it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tiergate.learned.features import DENSE_FEATURE_NAMES, TextFeatures

__all__ = [
    "FEATURE_EXTRACTOR",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelStats",
    "RouterArtifact",
    "RouterFormatError",
    "TaskPrior",
    "load_artifact",
    "save_artifact",
    "task_probabilities",
]

FORMAT_NAME = "tiergate-learned-router"
FORMAT_VERSION = 2
# The feature code of tiergate.learned.features; bump when its output changes.
FEATURE_EXTRACTOR = {"name": "tiergate-text", "version": 1}

FloatArray = npt.NDArray[np.float64]


class RouterFormatError(ValueError):
    """A router file is missing, unreadable, not a router, or from a newer tiergate."""


@dataclass(frozen=True)
class ModelStats:
    """What the training outcomes said about one model."""

    n: int
    mean_score: float
    mean_cost_usd: float | None = None
    # Cost of a prompt ~ fixed + per_char * len(prompt): least squares on the
    # training outcomes, both clipped at zero. None without cost_usd.
    cost_fixed_usd: float | None = None
    cost_per_char_usd: float | None = None

    def expected_cost(self, prompt: str) -> float | None:
        """Expected cost_usd of this model answering ``prompt``, from the training outcomes."""
        if self.cost_fixed_usd is None or self.cost_per_char_usd is None:
            return self.mean_cost_usd
        return self.cost_fixed_usd + self.cost_per_char_usd * len(prompt)


def task_probabilities(logits: FloatArray) -> FloatArray:
    """Task probabilities from one-vs-rest logits (last axis): sigmoids normalised to sum 1."""
    s = 1.0 / (1.0 + np.exp(-np.clip(logits, -500.0, 500.0)))
    return np.asarray(s / np.maximum(s.sum(axis=-1, keepdims=True), 1e-300), dtype=np.float64)


@dataclass(frozen=True)
class TaskPrior:
    """What the kind of prompt says: a task classifier and each model's mean score per task.

    The router's prediction is ``(1 - blend) * per_model + blend * p(task | prompt) @ means``,
    with ``p(task | prompt)`` the one-vs-rest classifiers' sigmoids normalised to sum to one
    (:func:`task_probabilities` of ``features @ weights + intercepts``):
    a prompt that looks like a task the training outcomes knew inherits that
    task's record, and the per-model logistic models add what the words say
    beyond it.
    """

    tasks: list[str]
    weights: FloatArray  # features x tasks: one-vs-rest logistic models
    intercepts: FloatArray  # tasks
    means: FloatArray  # tasks x models
    blend: float


@dataclass(frozen=True)
class RouterArtifact:
    """Everything a :class:`~tiergate.learned.LearnedRouter` needs, as stored in the file."""

    models: list[str]
    features: TextFeatures
    weights: FloatArray
    intercepts: FloatArray
    stats: dict[str, ModelStats]
    training: dict[str, Any] = field(default_factory=dict)
    task_prior: TaskPrior | None = None


def save_artifact(path: str | Path, artifact: RouterArtifact) -> None:
    """Write the router file (overwrites; written whole, then renamed into place)."""
    vocabulary = sorted(artifact.features.vocabulary, key=artifact.features.vocabulary.__getitem__)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "models": artifact.models,
        "stats": {
            m: {
                "n": s.n,
                "mean_score": s.mean_score,
                "mean_cost_usd": s.mean_cost_usd,
                "cost_fixed_usd": s.cost_fixed_usd,
                "cost_per_char_usd": s.cost_per_char_usd,
            }
            for m, s in artifact.stats.items()
        },
        "feature_extractor": FEATURE_EXTRACTOR,
        "dense_features": list(DENSE_FEATURE_NAMES),
        "vocabulary": vocabulary,
        "training": artifact.training,
    }
    arrays: dict[str, Any] = {}
    prior = artifact.task_prior
    if prior is not None:
        header["tasks"] = prior.tasks
        header["task_blend"] = prior.blend
        arrays = {
            "task_weights": prior.weights.astype(np.float32),
            "task_intercepts": prior.intercepts,
            "task_means": prior.means,
        }
    target = Path(path)
    # Write beside the target and rename, so a gateway reloading on mtime never
    # reads a half-written file.
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as out:
        np.savez_compressed(
            out,
            header=np.frombuffer(orjson.dumps(header), dtype=np.uint8),
            idf=artifact.features.idf,
            dense_mean=artifact.features.dense_mean,
            dense_scale=artifact.features.dense_scale,
            weights=artifact.weights.astype(np.float32),
            intercepts=artifact.intercepts,
            **arrays,
        )
    tmp.replace(target)


def load_artifact(path: str | Path) -> RouterArtifact:
    """Read a router file; raise :class:`RouterFormatError` with a clear reason if it can't."""
    name = str(path)
    try:
        with np.load(name, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError as exc:
        raise RouterFormatError(f"{name}: no such router file") from exc
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise RouterFormatError(f"{name}: not a tiergate router file ({exc})") from exc
    if "header" not in arrays:
        raise RouterFormatError(f"{name}: not a tiergate router file (no header)")
    try:
        header = orjson.loads(arrays["header"].tobytes())
    except orjson.JSONDecodeError as exc:
        raise RouterFormatError(f"{name}: the router header is not valid JSON") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise RouterFormatError(f"{name}: not a tiergate router file")
    version = header.get("version")
    if not isinstance(version, int):
        raise RouterFormatError(f"{name}: the router file has no format version")
    if version > FORMAT_VERSION:
        raise RouterFormatError(
            f"{name}: router file format version {version} was written by a newer tiergate; "
            f"this tiergate reads versions up to {FORMAT_VERSION}: upgrade tiergate or "
            "retrain the router with this version"
        )
    # Version 1 files predate the field and were all made by the text features.
    extractor = header.get("feature_extractor", {"name": "tiergate-text", "version": 1})
    if extractor != FEATURE_EXTRACTOR:
        raise RouterFormatError(
            f"{name}: the router was trained with feature extractor {_describe(extractor)}, "
            f"but this tiergate computes {_describe(FEATURE_EXTRACTOR)}: retrain the router "
            "with this tiergate (tiergate router train)"
        )
    try:
        return _artifact_from(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise RouterFormatError(f"{name}: the router file is damaged ({exc!r})") from exc


def _describe(extractor: Any) -> str:
    if isinstance(extractor, dict):
        return f"{extractor.get('name')!s} version {extractor.get('version')!s}"
    return repr(extractor)


def _artifact_from(header: dict[str, Any], arrays: dict[str, Any]) -> RouterArtifact:
    if list(header["dense_features"]) != list(DENSE_FEATURE_NAMES):
        raise ValueError("dense features differ from this tiergate's")
    vocabulary = {str(t): i for i, t in enumerate(header["vocabulary"])}
    features = TextFeatures(
        vocabulary=vocabulary,
        idf=np.asarray(arrays["idf"], dtype=np.float64),
        dense_mean=np.asarray(arrays["dense_mean"], dtype=np.float64),
        dense_scale=np.asarray(arrays["dense_scale"], dtype=np.float64),
    )
    models = [str(m) for m in header["models"]]
    weights = np.asarray(arrays["weights"], dtype=np.float64)
    intercepts = np.asarray(arrays["intercepts"], dtype=np.float64)
    if weights.shape != (features.n_features, len(models)) or intercepts.shape != (len(models),):
        raise ValueError(f"weights of shape {weights.shape} do not fit {len(models)} models")
    stats = {
        m: ModelStats(
            n=int(s["n"]),
            mean_score=float(s["mean_score"]),
            mean_cost_usd=_optional_float(s.get("mean_cost_usd")),
            cost_fixed_usd=_optional_float(s.get("cost_fixed_usd")),
            cost_per_char_usd=_optional_float(s.get("cost_per_char_usd")),
        )
        for m, s in header["stats"].items()
    }
    prior = None
    if header.get("tasks"):
        tasks = [str(t) for t in header["tasks"]]
        prior = TaskPrior(
            tasks=tasks,
            weights=np.asarray(arrays["task_weights"], dtype=np.float64),
            intercepts=np.asarray(arrays["task_intercepts"], dtype=np.float64),
            means=np.asarray(arrays["task_means"], dtype=np.float64),
            blend=float(header["task_blend"]),
        )
        if (
            prior.weights.shape != (features.n_features, len(tasks))
            or prior.intercepts.shape != (len(tasks),)
            or prior.means.shape != (len(tasks), len(models))
            or not 0.0 <= prior.blend <= 1.0
        ):
            raise ValueError(f"the task prior does not fit {len(tasks)} tasks and the models")
    return RouterArtifact(
        models=models,
        features=features,
        weights=weights,
        intercepts=intercepts,
        stats=stats,
        training=dict(header.get("training") or {}),
        task_prior=prior,
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
