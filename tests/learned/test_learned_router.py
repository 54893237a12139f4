"""LearnedRouter: prediction, choice rules and hot reload."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tiergate.learned import LearnedRouter, NoCandidateError, RouterFormatError
from tiergate.learned.artifact import save_artifact
from tiergate.learned.train import train_router

from .conftest import PRICE, TOPICS, synthetic_records


@pytest.fixture(scope="module")
def router_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("router") / "router.tgr"
    save_artifact(path, train_router(synthetic_records())[0])
    return path


@pytest.fixture
def router(router_file: Path) -> LearnedRouter:
    return LearnedRouter.load(router_file)


def test_predicts_every_model_in_0_1(router: LearnedRouter) -> None:
    assert router.models == ["big", "coder", "small"]
    predicted = router.predict("anything at all, even words never seen")
    assert set(predicted) == set(router.models)
    assert all(0.0 <= q <= 1.0 for q in predicted.values())
    assert router.predict("").keys() == predicted.keys()


def test_learns_who_is_good_at_what(router: LearnedRouter) -> None:
    code = router.predict(TOPICS["code"])
    chat = router.predict(TOPICS["chat"])
    assert code["coder"] > code["small"] + 0.3
    assert chat["small"] > code["small"] + 0.3


def test_predict_many_matches_predict(router: LearnedRouter) -> None:
    prompts = [TOPICS["math"], "short", TOPICS["code"] + " extra words"]
    batch = router.predict_many(prompts)
    for row, prompt in zip(batch, prompts):
        assert np.allclose(row, [router.predict(prompt)[m] for m in router.models])


def test_choose_tolerance_rule(router: LearnedRouter) -> None:
    predicted = {"big": 0.9, "coder": 0.85, "small": 0.4}
    assert router.choose(PRICE, 0.0, predicted=predicted) == "big"
    assert router.choose(PRICE, 0.05, predicted=predicted) == "coder"
    assert router.choose(PRICE, 0.049, predicted=predicted) == "big"
    assert router.choose(PRICE, 1.0, predicted=predicted) == "small"
    # Only candidates count: the best among those offered sets the bar.
    assert router.choose({"coder": 2.0, "small": 0.5}, 0.1, predicted=predicted) == "coder"
    assert router.choose(PRICE, 0.05, prompt=TOPICS["chat"]) in router.models


def test_choose_by_value(router: LearnedRouter) -> None:
    predicted = {"big": 0.9, "coder": 0.85, "small": 0.4}
    assert router.choose_by_value(PRICE, 0.0, predicted=predicted) == "small"
    # coder: 2 - 0.85 v beats small: 0.5 - 0.4 v once v > 3.33; big needs v > 160.
    assert router.choose_by_value(PRICE, 4.0, predicted=predicted) == "coder"
    assert router.choose_by_value(PRICE, 1000.0, predicted=predicted) == "big"


def test_choose_needs_a_known_candidate_and_one_input(router: LearnedRouter) -> None:
    with pytest.raises(NoCandidateError, match="known to this router"):
        router.choose({"unknown": 1.0}, 0.1, prompt="hi")
    with pytest.raises(TypeError):
        router.choose(PRICE, 0.1)
    # Unknown models next to known ones are ignored.
    assert router.choose({"unknown": 0.0, "big": 1.0}, 0.1, prompt="hi") == "big"


def test_reload_if_changed(tmp_path: Path, router_file: Path) -> None:
    path = tmp_path / "router.tgr"
    path.write_bytes(router_file.read_bytes())
    router = LearnedRouter.load(path)
    assert not router.changed()
    assert router.reload_if_changed() is False

    save_artifact(path, train_router(synthetic_records(models=("big", "small")))[0])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert router.changed()
    assert router.reload_if_changed() is True
    assert router.models == ["big", "small"]
    assert not router.changed()

    path.write_bytes(b"broken")
    with pytest.raises(RouterFormatError):
        router.reload_if_changed()
    assert router.models == ["big", "small"], "a broken file keeps the old router in service"
