"""One ledger entry per request carries every field the ledger promises, through the server."""

import time

import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Fault, Reply


def _wait(gw, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(gw.ledger.entries) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_failed_over_request_books_every_field(fake, start_gateway):
    config = three_tier_config(fake).replace(
        "price: {input: 0.05, output: 0.40}",
        "price: {input: 0.05, output: 0.40, cached_input: 0.01}",
    )
    gw = start_gateway(config)
    fake.enqueue(
        Fault(status=500), Reply("ok", input_tokens=1000, cached_tokens=200, output_tokens=50)
    )
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", temperature=0, messages=[{"role": "user", "content": "What are your hours?"}]
    )
    _wait(gw, 1)
    (e,) = gw.ledger.entries
    assert e.request_id == raw.headers["x-tiergate-request-id"]
    assert (e.key_name, e.route, e.strategy) == ("test", "auto", "rules")
    assert e.reasons.startswith("rules: greeting or FAQ")
    assert (e.model, e.tier, e.deployment) == ("small-model", "budget", "small-model@upstream")
    assert (e.input_tokens, e.output_tokens, e.cached_tokens) == (1000, 50, 200)
    assert e.cost_usd == pytest.approx((800 * 0.05 + 200 * 0.01 + 50 * 0.40) / 1e6)
    assert e.baseline_model == "large-model"
    assert e.baseline_cost_usd == pytest.approx((1000 * 2.50 + 50 * 15.00) / 1e6)
    assert e.status == 200 and e.fallbacks == 1 and "500" in e.attempts
    assert e.cache == "miss" and e.latency_ms > 0 and e.ttft_ms is not None


def test_a_stream_books_its_time_to_first_token(fake, start_gateway):
    gw = start_gateway(three_tier_config(fake))
    fake.enqueue(Reply("a b c d e", stream_chunks=5, chunk_delay=0.1))
    stream = gw.client().chat.completions.create(
        model="small-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(stream)
    _wait(gw, 1)
    (e,) = gw.ledger.entries
    assert e.stream and e.ttft_ms is not None
    assert 0 < e.ttft_ms < e.latency_ms - 300  # first token well before the last of 5 x 0.1 s
