"""Booked costs against hand-computed figures."""

import pytest

from tests.conftest import three_tier_config
from tiergate.catalog import load_catalog
from tiergate.fakes import Reply
from tiergate.fleet import Price
from tiergate.ledger import LedgerEntry, SubCall


def _price(name: str) -> Price:
    p = load_catalog().entries[name].price
    return Price(p["input"], p["output"], p.get("cached_input"), p.get("cache_write"))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4-6", 6000.0),
        ("gpt-5-mini", 725.0),
        ("gpt-5-nano", 145.0),
        ("deepseek-v3.2", 266.0),
    ],
)
def test_routing_guide_cost_table(model, expected):
    """1M requests of 500 input / 300 output tokens, at the built-in catalog's prices."""
    assert _price(model).cost(500, 300) * 1_000_000 == pytest.approx(expected, abs=0.01)


def test_cached_input_tokens_are_priced_at_the_cached_rate():
    p = _price("gpt-5-mini")  # 0.25 in, 0.025 cached, 2.00 out
    assert p.cost(1000, 100, cached_input_tokens=800) == pytest.approx(
        (200 * 0.25 + 800 * 0.025 + 100 * 2.00) / 1e6
    )


def test_sub_calls_add_to_the_request_total():
    e = LedgerEntry("r", 0.0, None, "auto", "cascade", "", "m", "budget", None, cost_usd=0.002)
    e.add_sub_call(SubCall("classifier", "small", 50, 1, 0.0000029))
    e.add_sub_call(SubCall("cascade", "small", 500, 300, 0.000145))
    assert e.extra_cost_usd == pytest.approx(0.0001479)
    assert e.total_cost_usd == pytest.approx(0.0021479)


def test_upstream_usage_with_cached_tokens_is_booked(fake, start_gateway):
    config = three_tier_config(fake).replace(
        "price: {input: 0.05, output: 0.40}",
        "price: {input: 0.05, output: 0.40, cached_input: 0.01}",
    )
    gw = start_gateway(config)
    fake.enqueue(Reply("x", input_tokens=1000, cached_tokens=600, output_tokens=50))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="small-model", messages=[{"role": "user", "content": "hi"}]
    )
    expected = (400 * 0.05 + 600 * 0.01 + 50 * 0.40) / 1e6
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    (entry,) = gw.ledger.entries
    assert entry.cached_tokens == 600 and entry.cost_usd == pytest.approx(expected)
    # the baseline (large-model, no cached price) pays full input price for the same tokens
    assert entry.baseline_cost_usd == pytest.approx((1000 * 2.50 + 50 * 15.00) / 1e6)


def test_streamed_usage_comes_from_the_upstream(fake, start_gateway):
    gw = start_gateway(three_tier_config(fake))
    fake.enqueue(Reply("a b c d", stream_chunks=4, input_tokens=321, output_tokens=45))
    stream = gw.client().chat.completions.create(
        model="small-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(stream)
    import time

    deadline = time.monotonic() + 3
    while not gw.ledger.entries and time.monotonic() < deadline:
        time.sleep(0.01)
    (entry,) = gw.ledger.entries
    assert (entry.input_tokens, entry.output_tokens) == (321, 45)
    assert entry.cost_usd == pytest.approx((321 * 0.05 + 45 * 0.40) / 1e6)
