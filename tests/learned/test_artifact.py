"""The router file: versioned, portable, no pickle, clear errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from tiergate.learned.artifact import (
    FEATURE_EXTRACTOR,
    FORMAT_NAME,
    FORMAT_VERSION,
    RouterArtifact,
    RouterFormatError,
    load_artifact,
    save_artifact,
)
from tiergate.learned.train import TrainOptions, train_router

from .conftest import synthetic_records


@pytest.fixture(scope="module")
def artifact() -> RouterArtifact:
    return train_router(synthetic_records(n=90))[0]


def test_round_trip(tmp_path: Path, artifact: RouterArtifact) -> None:
    path = tmp_path / "router.tgr"
    save_artifact(path, artifact)
    loaded = load_artifact(path)
    assert loaded.models == artifact.models
    assert loaded.features.vocabulary == artifact.features.vocabulary
    assert np.allclose(loaded.weights, artifact.weights, atol=1e-6)
    assert loaded.stats == artifact.stats
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_file_is_a_zip_of_npy_arrays_and_a_json_header(
    tmp_path: Path, artifact: RouterArtifact
) -> None:
    path = tmp_path / "router.tgr"
    save_artifact(path, artifact)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"header.npy", "weights.npy", "intercepts.npy", "idf.npy"} <= names
        raw = np.load(io.BytesIO(archive.read("header.npy")), allow_pickle=False)
    header = orjson.loads(raw.tobytes())
    assert header["format"] == FORMAT_NAME
    assert header["version"] == FORMAT_VERSION
    assert header["models"] == artifact.models


def _rewrite_header(path: Path, **changes: object) -> None:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = orjson.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(orjson.dumps(header), dtype=np.uint8)
    with path.open("wb") as out:
        np.savez(out, **arrays)


def test_newer_version_is_refused_clearly(tmp_path: Path, artifact: RouterArtifact) -> None:
    path = tmp_path / "router.tgr"
    save_artifact(path, artifact)
    _rewrite_header(path, version=FORMAT_VERSION + 1)
    with pytest.raises(RouterFormatError, match="newer tiergate"):
        load_artifact(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a zip", "not a tiergate router"), (None, "no such router file")],
)
def test_bad_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "router.tgr"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RouterFormatError, match=message):
        load_artifact(path)


def test_foreign_npz_is_not_a_router(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(RouterFormatError, match="no header"):
        load_artifact(path)


def test_task_prior_round_trips_and_predicts_the_same(
    tmp_path: Path, artifact: RouterArtifact
) -> None:
    from tiergate.learned import LearnedRouter

    prior = train_router(synthetic_records(n=90), TrainOptions(folds=0))[0].task_prior
    assert prior is not None and prior.tasks == ["chat", "code", "math"]
    with_prior = train_router(synthetic_records(n=90), TrainOptions(folds=0))[0]
    path = tmp_path / "router.tgr"
    save_artifact(path, with_prior)
    loaded = load_artifact(path)
    assert loaded.task_prior is not None
    assert loaded.task_prior.tasks == prior.tasks
    assert loaded.task_prior.blend == prior.blend
    assert np.allclose(loaded.task_prior.means, prior.means)
    router = LearnedRouter(loaded)
    prompts = ["write a python function that parses json", "tell a short joke", "x"]
    many = router.predict_many(prompts)
    for i, prompt in enumerate(prompts):
        one = router.predict(prompt)
        assert np.allclose([one[m] for m in router.models], many[i])


def test_other_feature_extractor_is_refused_clearly(
    tmp_path: Path, artifact: RouterArtifact
) -> None:
    path = tmp_path / "router.tgr"
    save_artifact(path, artifact)
    _rewrite_header(path, feature_extractor={"name": "some-encoder", "version": 3})
    with pytest.raises(RouterFormatError, match="feature extractor some-encoder version 3"):
        load_artifact(path)
    _rewrite_header(path, feature_extractor={**FEATURE_EXTRACTOR, "version": 99})
    with pytest.raises(RouterFormatError, match="retrain the router"):
        load_artifact(path)


def test_version_1_file_still_loads(tmp_path: Path) -> None:
    plain = train_router(synthetic_records(n=90), TrainOptions(folds=0, task_blends=(0.0,)))[0]
    assert plain.task_prior is None
    path = tmp_path / "router.tgr"
    save_artifact(path, plain)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = orjson.loads(arrays["header"].tobytes())
    header["version"] = 1
    del header["feature_extractor"]
    arrays["header"] = np.frombuffer(orjson.dumps(header), dtype=np.uint8)
    with path.open("wb") as out:
        np.savez(out, **arrays)
    loaded = load_artifact(path)
    assert loaded.task_prior is None
    assert np.allclose(loaded.weights, plain.weights, atol=1e-6)
