"""`tiergate report` over a real ledger (SQLite and PostgreSQL)."""

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tiergate.cli.main import cli
from tiergate.ledger import DatabaseLedger, LedgerEntry
from tiergate.ledger.report import parse_since
from tiergate.store.db import DatabaseURL
from tiergate.store.testing import POSTGRES_URL, scratch_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request, tmp_path: Path):
    path = tmp_path / "tiergate.yaml"
    if request.param == "sqlite":
        url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'r.db'}")
        path.write_text(f"ledger: {{url: 'sqlite:///{url.target}'}}\n")
        yield path, url
    else:
        with scratch_postgres() as url:
            path.write_text(f"ledger: {{url: '{POSTGRES_URL}', table_prefix: {url.prefix}}}\n")
            yield path, url


def _e(i, model, cost, baseline, latency, **kw):
    e = LedgerEntry(
        request_id=f"r{i}",
        ts=time.time() - 60,
        key_name="k1",
        route="auto",
        strategy="rules",
        reasons="",
        model=model,
        tier="budget",
        deployment=None,
        cost_usd=cost,
        baseline_cost_usd=baseline,
        latency_ms=latency,
    )
    for k, v in kw.items():
        setattr(e, k, v)
    return e


async def _fill(url: DatabaseURL) -> None:
    ledger = DatabaseLedger(url)
    await ledger.start()
    ledger.record(_e(1, "small", 0.001, 0.010, 100))
    ledger.record(_e(2, "small", 0.001, 0.010, 200, fallbacks=1, extra_cost_usd=0.0005))
    ledger.record(_e(3, "small", 0.0, 0.010, 1, cache="hit", cache_saved_usd=0.001))
    ledger.record(_e(4, "large", 0.010, 0.010, 1000, key_name="o'k%"))
    ledger.record(_e(5, None, 0.0, 0.0, 5, status=429, key_name="k1"))
    ledger.record(_e(6, "small", 9.0, 9.0, 5, ts=time.time() - 10 * 86400))  # outside period
    await ledger.close()


def _report(path, *args):
    result = CliRunner().invoke(
        cli, ["report", "--config", str(path), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_report_groups_and_totals(setup):
    path, url = setup
    await _fill(url)
    data = orjson.loads(_report(path, "--json", "--since", "7d", "--by", "model"))
    groups = {g["group"]: g for g in data["groups"]}
    small = groups["small"]
    assert small["requests"] == 3
    assert small["spend_usd"] == pytest.approx(0.0025)
    assert small["baseline_usd"] == pytest.approx(0.030)
    assert small["savings_usd"] == pytest.approx(0.0275)
    assert small["savings_pct"] == pytest.approx(0.0275 / 0.030 * 100)
    assert small["cache_hit_rate"] == pytest.approx(1 / 3)
    assert small["fallbacks"] == 1
    assert small["latency_p50_ms"] == pytest.approx(100)
    total = data["total"]
    assert total["requests"] == 5 and total["errors"] == 1
    assert total["spend_usd"] == pytest.approx(0.0125)
    by_key = orjson.loads(_report(path, "--json", "--by", "key"))
    assert {g["group"] for g in by_key["groups"]} == {"k1", "o'k%"}
    # filters are parameters: metacharacters match literally, wildcards match nothing else
    only = orjson.loads(_report(path, "--json", "--key", "o'k%"))
    assert only["total"]["requests"] == 1
    assert orjson.loads(_report(path, "--json", "--key", "%"))["total"]["requests"] == 0
    table = _report(path, "--by", "tier")
    assert "budget" in table and "total" in table


def test_parse_since():
    now = 1_800_000_000.0
    assert parse_since("24h", now) == now - 86400
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2026-01-01", now) == 1767225600.0
    with pytest.raises(ValueError, match="cannot read"):
        parse_since("yesterday-ish", now)


async def test_report_by_route_and_literal_model_and_route_filters(setup):
    path, url = setup
    await _fill(url)
    by_route = orjson.loads(_report(path, "--json", "--by", "route"))
    (auto,) = by_route["groups"]
    assert auto["group"] == "auto" and auto["requests"] == 5
    assert auto["latency_p95_ms"] >= auto["latency_p50_ms"] > 0
    # a wildcard or a quote in a filter is a literal value, never a pattern or SQL
    for flag in ("--model", "--route"):
        for value in ("%", "_", "auto' OR '1'='1", "small'; DROP TABLE x; --"):
            data = orjson.loads(_report(path, "--json", flag, value))
            assert data["total"]["requests"] == 0, (flag, value)
    assert orjson.loads(_report(path, "--json", "--model", "small"))["total"]["requests"] == 3
    assert orjson.loads(_report(path, "--json", "--by", "model"))["total"]["requests"] == 5
