"""`suggest_tier_changes` and `tiergate report --suggest`."""

import json

import pytest
from click.testing import CliRunner

from tiergate.cli.main import cli
from tiergate.observability.suggest import Score, suggest_tier_changes

TIERS = {"nano": "budget", "mini": "standard", "big": "premium", "pricey": "premium"}


def scores(model, values, prompts=None):
    return [Score(model, v, prompts[i] if prompts else None) for i, v in enumerate(values)]


def test_a_model_as_good_as_the_tier_above_moves_up():
    prompts = [f"p{i}" for i in range(30)]
    data = scores("mini", [0.9] * 30, prompts) + scores("big", [0.91] * 30, prompts)
    (s,) = suggest_tier_changes(data, TIERS)
    assert (s.model, s.direction, s.suggested_tier) == ("mini", "up", "premium")
    assert "same prompts" in s.evidence and "0.90 vs 0.91" in s.evidence


def test_a_model_below_the_threshold_moves_down():
    data = scores("mini", [0.5] * 25) + scores("nano", [0.45] * 25)
    suggestions = {s.model: s for s in suggest_tier_changes(data, TIERS, threshold=0.7)}
    assert suggestions["mini"].direction == "down"
    assert "below the 0.70 threshold" in suggestions["mini"].evidence
    assert "nano" not in suggestions  # the bottom tier has nowhere to go down


def test_a_premium_model_no_better_than_standard_moves_down():
    data = scores("pricey", [0.8] * 25) + scores("mini", [0.81] * 25) + scores("big", [0.95] * 25)
    suggestions = {s.model: s for s in suggest_tier_changes(data, TIERS)}
    assert suggestions["pricey"].direction == "down"
    assert "no better than the cheaper tier" in suggestions["pricey"].evidence
    assert "big" not in suggestions


def test_too_few_samples_change_nothing():
    assert suggest_tier_changes(scores("mini", [0.1] * 5), TIERS) == []


def test_report_suggest_reads_outcome_records(tmp_path):
    path = tmp_path / "outcomes.jsonl"
    rows = [{"prompt": f"q{i}", "model": "gpt-5-mini", "score": 0.95} for i in range(25)]
    rows += [{"prompt": f"q{i}", "model": "gpt-5.4", "score": 0.95} for i in range(25)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = CliRunner().invoke(cli, ["report", "--suggest", "--outcomes", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (s,) = json.loads(result.output)
    assert s["model"] == "gpt-5-mini" and s["suggested_tier"] == "premium"
    text = CliRunner().invoke(cli, ["report", "--suggest", "--outcomes", str(path)])
    assert "move gpt-5-mini from standard to premium" in text.output


def test_a_line_that_is_not_an_object_is_named(tmp_path):
    from tiergate.observability.suggest import read_scores

    path = tmp_path / "outcomes.jsonl"
    path.write_text('{"model": "a", "score": 1, "prompt": "p"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"outcomes.jsonl:2: expected a JSON object"):
        read_scores(path)
