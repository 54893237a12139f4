"""The router file: a versioned, portable container, never a pickle.

A router file is a zip archive in NumPy's ``.npz`` layout (read with
``allow_pickle=False``) holding:

- ``header``: UTF-8 JSON as a byte array: ``format`` (``"tiergate-learned-router"``),
  ``version`` (:data:`FORMAT_VERSION`), ``models``, per-model training
  statistics, the vocabulary (a list of terms, position = column), the dense
  feature names and how the router was trained;
- ``idf``, ``dense_mean``, ``dense_scale``: the feature map;
- ``weights`` (features x models) and ``intercepts`` (models): one logistic
  model per LLM, predicting the probability that it answers well.

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
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelStats",
    "RouterArtifact",
    "RouterFormatError",
    "load_artifact",
    "save_artifact",
]

FORMAT_NAME = "tiergate-learned-router"
FORMAT_VERSION = 1

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


@dataclass(frozen=True)
class RouterArtifact:
    """Everything a :class:`~tiergate.learned.LearnedRouter` needs, as stored in the file."""

    models: list[str]
    features: TextFeatures
    weights: FloatArray
    intercepts: FloatArray
    stats: dict[str, ModelStats]
    training: dict[str, Any] = field(default_factory=dict)


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
        "dense_features": list(DENSE_FEATURE_NAMES),
        "vocabulary": vocabulary,
        "training": artifact.training,
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
    try:
        return _artifact_from(header, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise RouterFormatError(f"{name}: the router file is damaged ({exc!r})") from exc


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
    return RouterArtifact(
        models=models,
        features=features,
        weights=weights,
        intercepts=intercepts,
        stats=stats,
        training=dict(header.get("training") or {}),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
