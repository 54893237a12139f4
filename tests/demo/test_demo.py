"""The demo runs the real product end to end: it must route sensibly and book honestly."""

import asyncio

import pytest
from click.testing import CliRunner

from tiergate.demo.run import run_demo, summarize
from tiergate.demo.workload import KINDS, LEGAL, LIVE_CHAT, OPEN_QUESTION, build_workload


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
    # support questions run through a cascade, open questions through the classifier,
    # live chat races cheap against premium, the rest goes through the rules
    assert set(s["strategies"]) == {"rules", "rules>cascade", "classifier", "rules>speculative"}
    assert s["escalated"] >= 1 and s["escalation_usd"] > 0  # seeded: some cheap answers hedge
    legal = 0
    for e in result.entries:
        purposes = [c.purpose for c in e.sub_calls]
        if e.strategy == "rules>cascade" and e.sub_calls:
            # escalated: the hedge was booked, a higher tier served the answer
            assert purposes == ["cascade"] and e.tier != "budget" and e.extra_cost_usd > 0
        if e.strategy == "classifier":
            assert result.kinds[e.request_id] == OPEN_QUESTION
            assert e.reasons.startswith("classifier: ")
            label = e.reasons.split()[1]  # "classifier: COMPLEX (...) -> premium"
            assert e.tier == {"SIMPLE": "budget", "MODERATE": "standard", "COMPLEX": "premium"}.get(
                label,
                "standard",  # the classifier failed: the route's default tier
            ), e.reasons
            assert set(purposes) <= {"classifier"}  # a cached label costs nothing
        if result.kinds.get(e.request_id) == LEGAL:
            # tagged legal: the domain policy lifts a short question to premium and keeps it
            # off the model blocked for legal work
            assert e.tier == "premium" and e.model != "gemini-3.1-pro", e
            assert "policy: domain 'legal' requires minimum tier premium" in e.reasons
            assert "policy: domain 'legal' blocks gemini-3.1-pro" in e.reasons
            legal += 1
        if e.strategy == "rules>speculative":
            assert result.kinds[e.request_id] == LIVE_CHAT
            assert purposes in (["speculative-cancelled"], ["speculative"], [])
    assert s["classifier_calls"] >= 1
    assert legal >= 1
    # the cheap model hedges on some chat prompts (premium serves) and answers the rest
    # in time (the premium call is cancelled)
    assert s["speculative"].get("premium cancelled", 0) >= 2, s
    assert s["speculative"].get("cheap answer rejected", 0) >= 1, s
    kinds = {kind for (kind, _, _), _ in s["rows"]}
    assert f"{LIVE_CHAT}: premium cancelled" in kinds


def test_demo_command_prints_the_bill():
    from tiergate.cli.main import cli

    result = CliRunner().invoke(cli, ["demo", "--requests", "30", "--concurrency", "30"])
    assert result.exit_code == 0, result.output
    assert "saved" in result.output and "Failover" in result.output
    assert "rules>cascade" in result.output and "rules>speculative" in result.output
    assert "classifier" in result.output


def test_demo_ignores_proxies_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    # Everything the demo talks to is on this machine: a proxy set for the outside world
    # (here one that cannot be reached) must not come between them.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = asyncio.run(run_demo(size=20, concurrency=20))
    assert result.failed_requests == 0
    assert len(result.entries) == 20 and all(e.status == 200 for e in result.entries)
