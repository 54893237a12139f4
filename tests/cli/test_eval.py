"""`tiergate eval` end to end, offline (--fake), and its errors."""

from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from tiergate.cli.main import cli
from tiergate.outcomes import read_outcomes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUITE = str(EXAMPLES / "eval-suite.jsonl")
CONFIG = str(EXAMPLES / "eval-config.yaml")
MODELS = "small-model,medium-model,large-model"


def _eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval") / "outcomes.jsonl"
    code, output = _eval(
        "--suite", SUITE, "--config", CONFIG, "--models", MODELS, "--judge", "large-model",
        "--fake", "--out", str(out), "--json", "--concurrency", "16",
    )  # fmt: skip
    assert code == 0, output
    return orjson.loads(output), out


def test_the_example_runs_offline_and_writes_outcome_records(example_run) -> None:
    payload, out = example_run
    records = read_outcomes(out)
    assert payload["records_written"] == len(records) == 16 * 3 - len(payload["errors"])
    assert {r.model for r in records} == set(MODELS.split(","))
    assert {r.task for r in records} == {"facts", "math", "extraction", "explain"}
    assert all(r.cost_usd is not None and r.latency_ms is not None for r in records)
    judged = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert any(line.get("judge_cost_usd", 0) > 0 for line in judged)
    cells = {(c["task"], c["model"]): c for c in payload["cells"]}
    assert len(cells) == 12
    # the simulated premium model answers a superset of what the budget one does
    for task in ("facts", "math", "extraction"):
        assert cells[(task, "large-model")]["quality"] >= cells[(task, "small-model")]["quality"]


def test_the_recommended_snippet_passes_config_check(example_run, tmp_path: Path) -> None:
    payload, _ = example_run
    assert payload["snippet_problems"] == []
    routes = yaml.safe_load(payload["snippet"])["routes"]
    assert set(routes) == {"auto:facts", "auto:math", "auto:extraction", "auto:explain"}
    for rec in payload["recommendations"]:
        assert routes[rec["route"]]["models"][0] == rec["model"]
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["routes"].update(routes)
    merged = tmp_path / "merged.yaml"
    merged.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["config", "check", str(merged)])
    assert result.exit_code == 0, result.output
    assert "5 route(s)" in result.output


def test_the_table_and_the_recommendation_are_printed(tmp_path: Path) -> None:
    suite = tmp_path / "s.jsonl"
    suite.write_text("\n".join(Path(SUITE).read_text().splitlines()[:4]) + "\n")
    code, output = _eval("--suite", str(suite), "--config", CONFIG, "--models", MODELS, "--fake")
    assert code == 0, output
    assert "Quality and cost per task" in output and "all tasks" in output
    assert "routes:\n  auto:facts:" in output
    assert "✓" in output


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "x", "grader": {"type": "fuzzy"}}', "s.jsonl:2: grader.type: unknown grader"),
        (
            '{"prompt": "x", "grader": {"type": "regex", "pattern": "(("}}',
            "s.jsonl:2: grader.pattern: invalid regular expression",
        ),
        (
            '{"prompt": "x", "grader": {"type": "json_schema", "schema": {"type": 5}}}',
            "s.jsonl:2: grader.schema: invalid JSON Schema",
        ),
        (
            '{"prompt": "x", "grader": {"type": "judge", "model": "oracle"}}',
            "s.jsonl:2: grader.model: unknown model 'oracle'",
        ),
        ('{"prompt": "x", "grader": {"type": "judge"}}', "give grader.model or --judge"),
    ],
)
def test_bad_suites_fail_with_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"prompt": "ok", "grader": {"type": "exact", "expected": "ok"}}\n' + line)
    code, output = _eval("--suite", str(suite), "--config", CONFIG, "--models", MODELS, "--fake")
    assert code == 1
    assert message in output
    assert "Traceback" not in output


def test_an_unknown_model_fails_before_any_call(tmp_path: Path) -> None:
    code, output = _eval("--suite", SUITE, "--config", CONFIG, "--models", "small-model,gpt-9")
    assert code == 1
    assert (
        "--models: unknown model 'gpt-9' (configured: large-model, medium-model, small-model)"
        in output
    )
    assert "Traceback" not in output


def test_config_problems_are_listed(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "models:\n  m: {provider: nowhere, tier: budget, price: {input: 1, output: 1}}\n"
    )
    code, output = _eval("--suite", SUITE, "--config", str(config), "--models", "m")
    assert code == 1 and "nowhere" in output and "Traceback" not in output


def test_every_call_failing_exits_non_zero(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    # nothing listens on the fake's default port here: every call fails to connect
    text = Path(CONFIG).read_text().replace("18080", "1")
    config.write_text(text)
    suite = tmp_path / "s.jsonl"
    suite.write_text(Path(SUITE).read_text().splitlines()[0] + "\n")
    code, output = _eval(
        "--suite", str(suite), "--config", str(config), "--models", "small-model", "--retries", "0"
    )
    assert code == 1
    assert "failed" in output and "No recommendation" in output


def test_fake_refuses_a_config_with_real_providers(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        Path(CONFIG)
        .read_text()
        .replace(
            "${TIERGATE_FAKE_URL:-http://127.0.0.1:18080}/v1beta",
            "https://generativelanguage.googleapis.com/v1beta",
        )
    )
    code, output = _eval("--suite", SUITE, "--config", str(config), "--models", MODELS, "--fake")
    assert code == 1
    assert "--fake: provider 'sim-gemini' is not simulated" in output
