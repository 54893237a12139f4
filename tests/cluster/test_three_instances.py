"""Three `tiergate serve` processes behind a round-robin "load balancer" (the test), sharing
Redis and PostgreSQL: limits, budgets, the cache and circuit breakers hold for the whole
cluster, and the ledger books every request exactly once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import KEY, Cluster, cluster
from tiergate.fakes import FakeUpstream, Fault, Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _respond(prompt):
    if prompt.model == "mock-flaky":  # this deployment always fails
        return Fault(status=500)
    if prompt.last_user_text == "count to five":  # an expensive answer, for budgets
        return Reply(text="one two three four five", output_tokens=1000)
    return Reply(text="fine")


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread(api_key="sk-upstream") as fake:
        fake.respond_with(_respond)
        yield fake


def test_three_instances_share_limits_budgets_cache_circuits_and_ledger(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """One cluster for every check: starting three processes is the expensive part."""
    with cluster(upstream, tmp_path) as three:
        check_rpm_limit_holds_across_instances_not_three_times(three)
        check_budget_holds_across_instances(three)
        check_an_answer_cached_by_one_instance_is_a_hit_on_the_others(three, upstream)
        check_an_upstream_cooled_down_by_one_instance_is_skipped_by_the_others(three, upstream)
        check_the_ledger_has_exactly_one_row_per_request(three)


def _chat(url: str, key: str = KEY, text: str = "hello", **body: object) -> httpx.Response:
    payload = {"model": "small-model", "messages": [{"role": "user", "content": text}], **body}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )


def _away_from_minute_edge() -> None:
    """Rate limits count per sliding minute built from fixed minutes; a burst that straddles
    a minute boundary is legitimately allowed a few more requests. Keep bursts inside one."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60.5 - into)


def check_rpm_limit_holds_across_instances_not_three_times(three: Cluster) -> None:
    _away_from_minute_edge()
    urls = [three.next().url for _ in range(30)]
    with ThreadPoolExecutor(6) as pool:
        statuses = Counter(r.status_code for r in pool.map(lambda u: _chat(u, "tg-limited"), urls))
    # rpm: 20 for the whole cluster (with per-instance counters all 30 would pass).
    assert statuses == {200: 20, 429: 10}, statuses


def check_budget_holds_across_instances(three: Cluster) -> None:
    urls = [three.next().url for _ in range(24)]
    with ThreadPoolExecutor(6) as pool:
        responses = list(
            pool.map(lambda u: _chat(u, "tg-budgeted", "count to five", max_tokens=1000), urls)
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses[429] > 0 and statuses[200] > 0, statuses
    assert all(
        r.json()["error"]["code"] == "budget_exceeded" for r in responses if r.status_code == 429
    )
    spent = _settled_spend(three, "budgeted", statuses[200])
    # Each answer costs about $0.0004 (1,000 output tokens), so $0.002 admits 5 or 6;
    # three separate books would admit about 15. Reservations bound the overshoot to one
    # request's maximum cost.
    one_request_max = (50 * 0.05 + 1000 * 0.40) / 1e6
    assert statuses[200] <= 6, statuses
    assert spent <= 0.002 + one_request_max, spent


def _settled_spend(three: Cluster, key: str, expect_rows: int) -> float:
    deadline = time.monotonic() + 10
    while True:
        rows = three.ledger_rows("WHERE key_name = ? AND status = 200", (key,))
        if len(rows) >= expect_rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == expect_rows
    return sum(float(r[3]) for r in rows)


def check_an_answer_cached_by_one_instance_is_a_hit_on_the_others(
    three: Cluster, upstream: FakeUpstream
) -> None:
    a, b, c = three.instances
    first = _chat(a.url, text="what is the capital of France?", temperature=0)
    assert first.headers["x-tiergate-cache"] == "miss"
    calls = upstream.calls_for(model="mock-small")
    deadline = time.monotonic() + 5
    for inst in (b, c):
        while True:  # the answer is stored in the background right after the response
            again = _chat(inst.url, text="what is the capital of France?", temperature=0)
            if again.headers["x-tiergate-cache"] == "hit" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert again.headers["x-tiergate-cache"] == "hit"
        assert again.headers["x-tiergate-cache-match"] == first.headers["x-tiergate-request-id"]
    assert upstream.calls_for(model="mock-small") == calls


def check_the_ledger_has_exactly_one_row_per_request(three: Cluster) -> None:
    urls = [three.next().url for _ in range(30)]
    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda u: _chat(u, text=f"ledger {u}"), urls))
    ids = [r.headers["x-tiergate-request-id"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    deadline = time.monotonic() + 10
    while True:
        rows = three.ledger_rows(f"WHERE request_id IN ({', '.join('?' for _ in ids)})", tuple(ids))
        if len(rows) >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    booked = Counter(r[0] for r in rows)
    assert set(booked) == set(ids)
    assert max(booked.values()) == 1


def _open_circuits(url: str) -> dict[str, str]:
    ready = httpx.get(f"{url}/health/ready", timeout=5).json()
    return {dep: state for dep, state in ready["deployments"].items() if state != "closed"}


def check_an_upstream_cooled_down_by_one_instance_is_skipped_by_the_others(
    three: Cluster, upstream: FakeUpstream
) -> None:
    a, b, c = three.instances
    for _ in range(30):  # until instance a has tripped the failing deployment's breaker
        assert _chat(a.url, model="shaky-model").status_code == 200  # fails over to steady
        if _open_circuits(a.url):
            break
    tripped = _open_circuits(a.url)
    assert len(tripped) == 1 and next(iter(tripped)).endswith("@flaky"), tripped
    started = time.monotonic()
    for inst in (b, c):
        while _open_circuits(inst.url) != tripped:
            assert time.monotonic() - started < 5, "the verdict did not reach the other instances"
            time.sleep(0.02)
    flaky_calls = upstream.calls_for(model="mock-flaky")
    for n in range(12):
        response = _chat((b, c)[n % 2].url, text=f"skip {n}", model="shaky-model")
        assert response.status_code == 200
    assert upstream.calls_for(model="mock-flaky") == flaky_calls  # never tried by b or c
    ready = httpx.get(f"{b.url}/health/ready", timeout=5).json()
    assert ready["cluster"]["redis"]["state"] == "up"
    assert ready["cluster"]["circuits_adopted"] >= 1
