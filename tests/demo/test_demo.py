"""The demo runs the real product end to end: it must route sensibly and book honestly."""

import asyncio

from click.testing import CliRunner

from tiergate.demo.run import run_demo, summarize
from tiergate.demo.workload import KINDS, build_workload


def test_workload_is_deterministic_and_mixed():
    a, b = build_workload(210), build_workload(210)
    assert [x.messages for x in a] == [x.messages for x in b]
    assert len(a) >= 200
    assert {x.kind for x in a} == set(KINDS)


def test_demo_routes_and_books_every_request():
    result = asyncio.run(run_demo(size=60, concurrency=30))
    s = summarize(result)
    assert s["requests"] == 60
    assert result.failed_requests == 0
    assert 0 < s["total"] < s["baseline"]
    counts: dict[str, dict[str, int]] = {}
    for (kind, tier, _), (n, _, _) in s["rows"]:
        counts.setdefault(kind, {}).setdefault(tier, 0)
        counts[kind][tier] += int(n)
    tiers = {kind: max(by_tier, key=by_tier.__getitem__) for kind, by_tier in counts.items()}
    assert tiers["greeting/FAQ"] == "budget"
    assert tiers["multi-step reasoning"] == "premium"
    assert set(s["by_protocol"]) == {"openai", "anthropic", "gemini"}
    # support questions run through a cascade, the rest through the rules
    assert set(s["strategies"]) == {"rules", "rules>cascade"}
    assert s["escalated"] >= 1 and s["escalation_usd"] > 0  # seeded: some cheap answers hedge
    for e in result.entries:
        if e.sub_calls:  # escalated: the hedge was booked, a higher tier served the answer
            assert [c.purpose for c in e.sub_calls] == ["cascade"] and e.tier != "budget"
            assert e.extra_cost_usd > 0 and e.strategy == "rules>cascade"


def test_demo_command_prints_the_bill():
    from tiergate.cli.main import cli

    result = CliRunner().invoke(cli, ["demo", "--requests", "30", "--concurrency", "30"])
    assert result.exit_code == 0, result.output
    assert "saved" in result.output and "Failover" in result.output
    assert "Strategies: rules" in result.output and "rules>cascade" in result.output
