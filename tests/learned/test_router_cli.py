"""tiergate router train / score / evaluate, including bad input."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from tiergate.cli.router_cmd import router
from tiergate.learned.artifact import FORMAT_VERSION
from tiergate.outcomes import write_outcomes

from .conftest import synthetic_records


def run(*args: str) -> Result:
    return CliRunner().invoke(router, list(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    outcomes = folder / "outcomes.jsonl"
    write_outcomes(outcomes, synthetic_records())
    out = folder / "router.tgr"
    result = run("train", "--outcomes", str(outcomes), "--out", str(out), "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "validation" in result.output.lower()
    return outcomes, out


def test_train_json_report(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    outcomes, _ = trained
    result = run("train", "--outcomes", str(outcomes), "--out", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["models"] == ["big", "coder", "small"]
    assert report["validation"]["folds"] == 5


def test_score_prints_one_line_per_distinct_prompt(trained: tuple[Path, Path]) -> None:
    outcomes, router_file = trained
    result = run("score", "--router", str(router_file), "--prompts", str(outcomes))
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 240
    assert all(set(line["predicted"]) == {"big", "coder", "small"} for line in lines)
    assert all(0 <= q <= 1 for line in lines for q in line["predicted"].values())


def test_evaluate_many_models_with_plot(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    _, router_file = trained
    held_out = tmp_path / "held.jsonl"
    write_outcomes(held_out, synthetic_records(n=150, seed=9))
    plot = tmp_path / "curve.png"
    result = run(
        "evaluate",
        "--router",
        str(router_file),
        "--outcomes",
        str(held_out),
        "--plot",
        str(plot),
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["kind"] == "many_models"
    assert report["reference"] == "big"
    assert report["cost_share_at_target"]["router (value)"] < 0.9
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_evaluate_two_models_table_and_plot(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    _, router_file = trained
    held_out = tmp_path / "held.jsonl"
    write_outcomes(held_out, synthetic_records(n=150, seed=9, models=("big", "small")))
    plot = tmp_path / "two.png"
    result = run(
        "evaluate", "--router", str(router_file), "--outcomes", str(held_out), "--plot", str(plot)
    )
    assert result.exit_code == 0, result.output
    for word in ("APGR", "CPT(50%)", "router", "random", "oracle"):
        assert word in result.output
    assert plot.exists()


def _assert_clean_failure(result: Result, *words: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def test_one_model_only(tmp_path: Path) -> None:
    outcomes = tmp_path / "o.jsonl"
    write_outcomes(outcomes, synthetic_records(n=30, models=("big",)))
    result = run("train", "--outcomes", str(outcomes), "--out", str(tmp_path / "r"))
    _assert_clean_failure(result, "at least two models")


def test_score_outside_0_1(tmp_path: Path) -> None:
    outcomes = tmp_path / "o.jsonl"
    outcomes.write_text(
        '{"prompt": "a", "model": "x", "score": 1}\n{"prompt": "a", "model": "y", "score": 7}\n'
    )
    result = run("train", "--outcomes", str(outcomes), "--out", str(tmp_path / "r"))
    _assert_clean_failure(result, "o.jsonl:2", "'score' must be in 0..1")


def test_router_from_a_newer_version(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    import numpy as np

    outcomes, router_file = trained
    with np.load(router_file, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = orjson.loads(arrays["header"].tobytes())
    header["version"] = FORMAT_VERSION + 1
    arrays["header"] = np.frombuffer(orjson.dumps(header), dtype=np.uint8)
    newer = tmp_path / "newer.tgr"
    with newer.open("wb") as out:
        np.savez(out, **arrays)
    for command in ("score", "evaluate"):
        flag = "--prompts" if command == "score" else "--outcomes"
        result = run(command, "--router", str(newer), flag, str(outcomes))
        _assert_clean_failure(result, "newer tiergate", f"version {FORMAT_VERSION + 1}")


def test_prompt_file_without_prompts(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    _, router_file = trained
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = run("score", "--router", str(router_file), "--prompts", str(empty))
    _assert_clean_failure(result, "no prompts")


def test_missing_files(tmp_path: Path, trained: tuple[Path, Path]) -> None:
    outcomes, _ = trained
    result = run("score", "--router", str(tmp_path / "nope"), "--prompts", str(outcomes))
    _assert_clean_failure(result, "no such router file")
    result = run("train", "--outcomes", str(tmp_path / "nope"), "--out", str(tmp_path / "r"))
    _assert_clean_failure(result, "cannot read")
