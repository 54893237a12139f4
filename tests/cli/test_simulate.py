"""`tiergate simulate`: scenarios, recorded traffic, a config's models, chart and JSON."""

import json
import textwrap
import time

import pytest
from click.testing import CliRunner

from tiergate.cli.main import cli


def run(*args):
    result = CliRunner().invoke(cli, ["simulate", *args], catch_exceptions=False)
    return result


def as_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def by_plan(data):
    return {r["plan"]: r for r in data["results"]}


def test_support_chatbot_scenario_prices_each_family():
    data = as_json("--scenario", "support-chatbot")
    assert data["traffic"]["requests"] == 500_000
    assert data["traffic"]["by_tier"]["budget"]["requests"] == 225_000
    openai = by_plan(data)["OpenAI"]
    # 500k requests x (200 x $2.50 + 400 x $15.00) per million tokens
    assert openai["flagship_model"] == "gpt-5.4"
    assert openai["flagship_usd"] == pytest.approx(3250.0)
    # budget 225k on gpt-5-nano, standard 200k on gpt-5-mini, premium 75k on gpt-5.4
    routed = (
        225_000 * (200 * 0.05 + 400 * 0.40)
        + 200_000 * (200 * 0.25 + 400 * 2.0)
        + 75_000 * (200 * 2.5 + 400 * 15)
    )
    assert openai["routed_usd"] == pytest.approx(routed / 1e6, abs=0.01)
    assert openai["saving_pct"] == pytest.approx(100 * (1 - routed / 1e6 / 3250), abs=0.1)
    assert set(by_plan(data)) == {"OpenAI", "Anthropic", "Google"}


@pytest.mark.parametrize(
    ("name", "requests", "shares"),
    [("code-review", 50_000, (0.35, 0.45, 0.20)), ("content", 200_000, (0.30, 0.45, 0.25))],
)
def test_other_scenarios(name, requests, shares):
    data = as_json("--scenario", name)
    tiers = data["traffic"]["by_tier"]
    assert [tiers[t]["requests"] for t in ("budget", "standard", "premium")] == pytest.approx(
        [requests * s for s in shares]
    )
    for result in data["results"]:
        assert 0 < result["routed_usd"] < result["flagship_usd"]


def test_table_output_is_readable():
    result = run("--scenario", "code-review")
    assert result.exit_code == 0
    assert "Code review" in result.output and "OpenAI" in result.output
    assert "$850.00" in result.output  # 50k x (2000 x 2.5 + 800 x 15) / 1e6


def test_recorded_traffic_with_tiers_and_models(tmp_path):
    lines = [
        {"input_tokens": 100, "output_tokens": 50, "tier": "budget"},
        {"input_tokens": 1000, "output_tokens": 500, "tier": "premium"},
        # an outcome record: the tier comes from the catalog model
        {"prompt": "x", "model": "gpt-5-mini", "score": 1, "input_tokens": 10, "output_tokens": 20},
        # a ledger row of a failed request: no spend
        {"input_tokens": 10, "output_tokens": 0, "tier": "budget", "status": 502},
        {"prompt": "no tokens", "model": "gpt-5-mini", "score": 0},
    ]
    path = tmp_path / "traffic.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    data = as_json("--traffic", str(path))
    tiers = data["traffic"]["by_tier"]
    assert tiers["budget"] == {"requests": 1, "input_tokens": 100, "output_tokens": 50}
    assert tiers["standard"]["requests"] == 1
    assert data["traffic"]["skipped"] == 2
    openai = by_plan(data)["OpenAI"]
    assert openai["flagship_usd"] == pytest.approx(
        ((100 + 1000 + 10) * 2.5 + (50 + 500 + 20) * 15) / 1e6, abs=0.01
    )


def test_recorded_traffic_is_scaled_to_a_month(tmp_path):
    # 10 requests over 2 hours -> 30 days holds 360 times as many
    rows = [
        {
            "ts": 1_700_000_000 + i * 800,
            "input_tokens": 100,
            "output_tokens": 100,
            "tier": "standard",
        }
        for i in range(10)
    ]
    path = tmp_path / "ledger.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = as_json("--traffic", str(path))
    span = 9 * 800
    assert data["traffic"]["requests"] == pytest.approx(10 * 30 * 24 * 3600 / span, rel=1e-3)
    assert "scaled to 30 days" in data["traffic"]["note"]
    explicit = as_json("--traffic", str(path), "--requests-per-month", "1000")
    assert explicit["traffic"]["requests"] == pytest.approx(1000)


def test_config_models_per_tier(tmp_path):
    config = tmp_path / "tiergate.yaml"
    config.write_text(
        textwrap.dedent(
            """
            use_catalog: false
            providers:
              upstream: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
            models:
              small-model:  {provider: upstream, tier: budget,   price: {input: 0.05, output: 0.40}}
              medium-model: {provider: upstream, tier: standard, price: {input: 0.25, output: 2.00}}
              large-model:  {provider: upstream, tier: premium,  price: {input: 2.50, output: 15.00}}
            """
        )
    )
    data = as_json("--scenario", "support", "--config", str(config))
    (result,) = data["results"]
    assert result["flagship_model"] == "large-model"
    assert result["per_tier"]["budget"]["model"] == "small-model"
    assert result["flagship_usd"] == pytest.approx(3250.0)


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "cost.png"
    result = run("--scenario", "support", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_large_file_with_progress(tmp_path):
    path = tmp_path / "big.jsonl"
    row = json.dumps({"input_tokens": 200, "output_tokens": 400, "tier": "budget"}) + "\n"
    path.write_text(row * 40_000)  # ~2 MB: the progress bar is on
    data = as_json("--traffic", str(path))
    assert data["traffic"]["requests"] == 40_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of"),
        (("--scenario", "support", "--traffic", "x"), "exactly one of"),
        (("--scenario", "nope"), "unknown scenario"),
    ],
)
def test_usage_errors(args, message, tmp_path):
    if "--traffic" in args:
        (tmp_path / "x").write_text("")
        args = tuple(str(tmp_path / "x") if a == "x" else a for a in args)
    result = CliRunner().invoke(cli, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_bad_traffic_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input_tokens": 1, "output_tokens": 1}\nnot json\n')
    result = CliRunner().invoke(cli, ["simulate", "--traffic", str(path)])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output


def test_the_gateways_request_log_is_recorded_traffic(fake, start_gateway, tmp_path):
    from tests.conftest import three_tier_config
    from tiergate.fakes import Reply

    log = tmp_path / "requests.log"
    gw = start_gateway(three_tier_config(fake, f'observability: {{request_log: "{log}"}}\n'))
    for _ in range(3):
        fake.enqueue(Reply("ok", input_tokens=100, output_tokens=40))
        gw.client().chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    fake.enqueue(Reply("long", input_tokens=1000, output_tokens=400))
    gw.client().chat.completions.create(
        model="tier:premium", messages=[{"role": "user", "content": "design it"}]
    )
    deadline = time.monotonic() + 5
    while not log.exists() or log.read_text().count("\n") < 4:
        assert time.monotonic() < deadline, "request log not written"
        time.sleep(0.02)
    data = as_json("--traffic", str(log))
    tiers = data["traffic"]["by_tier"]
    assert tiers["budget"] == {"requests": 3, "input_tokens": 300, "output_tokens": 120}
    assert tiers["premium"] == {"requests": 1, "input_tokens": 1000, "output_tokens": 400}


def test_iso_timestamps_of_the_request_log_scale_to_a_month(tmp_path):
    rows = [
        {
            "ts": f"2026-11-22T1{h}:00:00.000Z",
            "input_tokens": 10,
            "output_tokens": 10,
            "tier": "budget",
        }
        for h in range(3)  # three requests over two hours
    ]
    path = tmp_path / "requests.log"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = as_json("--traffic", str(path))
    assert data["traffic"]["requests"] == pytest.approx(3 * 30 * 24 / 2)
    assert "scaled to 30 days" in data["traffic"]["note"]
