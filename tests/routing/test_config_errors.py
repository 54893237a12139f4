"""Routing config mistakes are reported with their YAML line, and refuse to start."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.routing.conftest import MODELS, make_router
from tiergate.cli.main import cli
from tiergate.errors import ConfigError

BAD = """
routes:
  auto:
    strategy: [rules, classifier]
    classifier: {model: no-such-model}
    rules:
      - {tier: budget, keywords: [hi]}
      - {tier: gold, keywords: [prove]}
      - {tier: premium, regex: ['(unclosed']}
    policies:
      domains:
        legal: {min_tier: platinum, blocked_models: [gpt-9]}
  auto:other:
    strategy: static
    static:
      - {key: batch, models: [missing-model]}
"""


def test_every_problem_is_named_with_its_line():
    with pytest.raises(ConfigError) as err:
        make_router(BAD)
    problems = err.value.problems
    offset = MODELS.count("\n")

    def line(n: int) -> str:
        return f"line {offset + n}: "

    assert f"{line(5)}routes.auto.classifier.model: unknown model 'no-such-model'" in problems
    assert any(p.startswith(f"{line(8)}routes.auto.rules.1.tier: tier 'gold'") for p in problems)
    assert any(
        p.startswith(f"{line(9)}routes.auto.rules.2.regex: invalid regular expression")
        for p in problems
    )
    assert any(
        p.startswith(f"{line(12)}routes.auto.policies.domains.legal.min_tier") for p in problems
    )
    assert any("unknown model 'gpt-9'" in p for p in problems)
    assert any(
        p.startswith(f"{line(16)}routes.auto:other.static.0.models.0: unknown model")
        for p in problems
    )


def test_config_check_prints_the_lines_and_fails(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MODELS + BAD)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "routes.auto.rules.2.regex: invalid regular expression" in result.output
    assert "line " in result.output


def test_learned_router_file_must_load(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_router(
            f"routes:\n  auto: {{strategy: learned, learned: {{path: {tmp_path}/none.json}}}}\n"
        )
    assert "routes.auto.learned.path: cannot load router" in err.value.problems[0]


def test_route_command_prints_the_decision_without_a_model_call(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(MODELS + "routes:\n  auto: {strategy: rules}\n")
    result = CliRunner().invoke(cli, ["route", "What are your hours?", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "small-model" in result.output and "greeting or FAQ" in result.output
    result = CliRunner().invoke(
        cli, ["route", "hi", "--config", str(path), "--json", "--tag", "x", "--min-tier", "premium"]
    )
    import json

    data = json.loads(result.output)
    assert data["tier"] == "premium" and data["model"] == "large-model"
    assert data["reasons"][-1] == "policy: request requires minimum tier premium"


def test_route_command_marks_the_classifier_as_skipped(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        MODELS
        + "routes:\n  auto:\n    strategy: classifier\n    classifier: {model: small-model}\n"
    )
    result = CliRunner().invoke(cli, ["route", "hi", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "classifier: skipped (no model call in `tiergate route`)" in result.output
    assert "default tier standard" in result.output


def test_serve_refuses_to_start_rather_than_route_wrongly(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.yaml"
    path.write_text(MODELS + BAD)
    result = subprocess.run(
        [sys.executable, "-m", "tiergate", "serve", "--config", str(path), "--port", "9"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"routes.auto.rules.2.regex: invalid regular expression" in result.stderr
    assert b"unknown model 'no-such-model'" in result.stderr and b"line " in result.stderr
