"""`GET /metrics`: Prometheus text fed by real requests through a live gateway."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import three_tier_config
from tiergate.fakes import Fault, Reply


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name, **labels):
    want = tuple(sorted(labels.items()))
    return samples.get((name, want), 0.0)


def total(samples, name, **labels):
    """Sum over every series of `name` whose labels include `labels`."""
    return sum(
        v
        for (n, lbls), v in samples.items()
        if n == name and all(dict(lbls).get(k) == val for k, val in labels.items())
    )


def test_requests_tokens_cost_and_latency(gw, fake):
    fake.enqueue(Reply("Hello!", input_tokens=12, output_tokens=3))
    fake.enqueue(Reply("Again", input_tokens=10, output_tokens=5))
    client = gw.client()
    for _ in range(2):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    s = scrape(gw.url)
    labels = {"route": "auto", "tier": "budget", "model": "small-model", "status": "200"}
    assert value(s, "tiergate_requests_total", **labels) == 2
    assert value(s, "tiergate_request_duration_seconds_count", **labels) == 2
    assert value(s, "tiergate_tokens_total", model="small-model", kind="input") == 22
    assert value(s, "tiergate_tokens_total", model="small-model", kind="output") == 8
    expected_cost = (22 * 0.05 + 8 * 0.40) / 1e6
    assert abs(value(s, "tiergate_cost_usd_total", model="small-model") - expected_cost) < 1e-12
    # the route's baseline is the flagship: the same tokens on large-model
    expected_baseline = (22 * 2.50 + 8 * 15.00) / 1e6
    assert (
        abs(value(s, "tiergate_baseline_cost_usd_total", route="auto") - expected_baseline) < 1e-12
    )
    assert total(s, "tiergate_upstream_duration_seconds_count", route="auto") == 2
    assert total(s, "tiergate_gateway_overhead_seconds_count", route="auto") == 2
    assert value(s, "tiergate_cache_requests_total", route="auto", result="miss") == 2


def test_retries_fallbacks_errors_and_circuit_state(gw, fake):
    # small-model: 503 then 503 again (one retry), then medium-model answers (a fallback).
    fake.enqueue(Fault(status=503), Fault(status=503), Reply("ok"))
    gw.client().chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    s = scrape(gw.url)
    assert value(s, "tiergate_retries_total", route="auto") == 1
    assert value(s, "tiergate_fallbacks_total", route="auto") == 1
    assert (
        value(
            s,
            "tiergate_requests_total",
            route="auto",
            tier="standard",
            model="medium-model",
            status="200",
        )
        == 1
    )
    dep = "small-model@upstream"
    assert value(s, "tiergate_circuit_state", deployment=dep, state="closed") == 1
    assert value(s, "tiergate_circuit_consecutive_failures", deployment=dep) == 2
    # every configured deployment is listed, even one never called
    assert (
        value(s, "tiergate_circuit_state", deployment="large-model@upstream", state="closed") == 1
    )


def test_open_circuit_is_visible(fake, start_gateway):
    live = start_gateway(three_tier_config(fake, "circuit: {failure_threshold: 1, cooldown: 60}\n"))
    fake.enqueue(Fault(status=503), Fault(status=503), Reply("ok"))
    live.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    s = scrape(live.url)
    assert value(s, "tiergate_circuit_state", deployment="small-model@upstream", state="open") == 1
    assert (
        value(s, "tiergate_circuit_state", deployment="small-model@upstream", state="closed") == 0
    )


def test_client_errors_are_counted_by_status(gw):
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        headers={"authorization": "Bearer tg-test-key"},
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    s = scrape(gw.url)
    assert total(s, "tiergate_requests_total", status="404") == 1


def test_budget_remaining_per_key_is_capped(fake, start_gateway):
    keys = "".join(
        f"  - {{name: team{i}, key: tg-team-key-{i:04d}, budget_usd: {10 + i}}}\n" for i in range(5)
    )
    live = start_gateway(
        three_tier_config(fake, "observability: {max_key_labels: 2}\n").replace(
            "keys:\n", "keys:\n" + keys
        )
    )
    fake.enqueue(Reply("x", input_tokens=1_000_000, output_tokens=0))
    live.client(key="tg-team-key-0004").chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    s = scrape(live.url)
    remaining = {
        dict(labels)["key"]: v
        for (name, labels), v in s.items()
        if name == "tiergate_budget_remaining_usd"
    }
    # the two keys closest to their limit, the rest summed
    assert remaining == {"team0": 10, "team1": 11, "other": 12 + 13 + (14 - 0.05)}


def test_metrics_registry_is_per_gateway(fake, start_gateway):
    a = start_gateway(three_tier_config(fake))
    b = start_gateway(three_tier_config(fake))
    fake.enqueue(Reply("x"))
    a.client().chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert total(scrape(a.url), "tiergate_requests_total") == 1
    assert total(scrape(b.url), "tiergate_requests_total") == 0


def test_cache_hits_and_their_saving(fake, start_gateway):
    admin = "admin-key-for-metrics-0123456789"
    gw = start_gateway(three_tier_config(fake, f"observability: {{admin_key: {admin}}}\n"))
    fake.enqueue(Reply("cached answer", input_tokens=10, output_tokens=5))
    for expected in ("miss", "hit"):
        raw = gw.client().chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], temperature=0
        )
        assert raw.headers["x-tiergate-cache"] == expected
    assert fake.calls == 1
    s = scrape(gw.url)
    assert value(s, "tiergate_cache_requests_total", route="auto", result="hit") == 1
    assert value(s, "tiergate_cache_requests_total", route="auto", result="miss") == 1
    assert total(s, "tiergate_cache_saved_usd_total") == pytest.approx((10 * 0.05 + 5 * 0.40) / 1e6)
    summary = httpx.get(
        f"{gw.url}/dashboard/api/summary", headers={"authorization": f"Bearer {admin}"}
    ).json()
    assert summary["totals"]["cache_hit_rate"] == 0.5
