"""The optional LLM-judge validator on a cascade route, through the server."""

from __future__ import annotations

from tests.conftest import three_tier_config
from tiergate.fakes import Reply

ROUTE = """  auto:x:
    strategy: cascade
    cascade:
      max_steps: 2
      validators: {judge: {model: medium-model, threshold: 0.8}}
"""


def test_judge_score_below_threshold_escalates_and_is_booked(start_gateway, fake):
    gw = start_gateway(three_tier_config(fake).replace("routes:\n", "routes:\n" + ROUTE, 1))
    fake.enqueue(Reply("A plausible answer.", input_tokens=10, output_tokens=4), model="mock-small")
    fake.enqueue(Reply('{"score": 0.4}', input_tokens=50, output_tokens=5), model="mock-medium")
    fake.enqueue(Reply("A better answer.", input_tokens=10, output_tokens=4), model="mock-medium")
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto:x", messages=[{"role": "user", "content": "explain tides"}]
    )
    assert raw.parse().choices[0].message.content == "A better answer."
    assert "judge score 0.40 < 0.8" in raw.headers["x-tiergate-reason"]
    (entry,) = gw.ledger.entries
    assert [c.purpose for c in entry.sub_calls] == ["judge", "cascade"]
    judge_cost = (50 * 0.25 + 5 * 2.0) / 1e6
    small_cost = (10 * 0.05 + 4 * 0.40) / 1e6
    assert abs(entry.extra_cost_usd - (judge_cost + small_cost)) < 1e-12


def test_judge_score_above_threshold_serves_the_cheap_answer(start_gateway, fake):
    gw = start_gateway(three_tier_config(fake).replace("routes:\n", "routes:\n" + ROUTE, 1))
    fake.enqueue(Reply("A good answer."), model="mock-small")
    fake.enqueue(Reply('{"score": 0.9}'), model="mock-medium")
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto:x", messages=[{"role": "user", "content": "explain tides"}]
    )
    assert raw.headers["x-tiergate-model"] == "small-model"
    assert fake.calls == 2
