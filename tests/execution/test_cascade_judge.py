"""The optional LLM-judge validator on a cascade route, through the server."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.conftest import three_tier_config
from tiergate.chat import decode_chat_request
from tiergate.config.loader import parse_config
from tiergate.execution.strategy import Strategies
from tiergate.fakes import Reply
from tiergate.gateway import Gateway

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


def test_the_budget_holds_the_judgements_of_a_request_in_flight(start_gateway, fake):
    """A judged cascade reserves what its judge may cost: with one request in flight, a
    second is refused when the answers alone would still fit the budget but not the
    judgement (without it, each request in flight could overspend by a judgement)."""
    route = ROUTE.replace("medium-model", "large-model")
    text = three_tier_config(fake).replace("routes:\n", "routes:\n" + route, 1)
    chat = decode_chat_request(
        b'{"model": "auto:x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}'
    )
    unjudged = text.replace("validators: {judge: {model: large-model, threshold: 0.8}}", "")
    plain = Gateway.from_config(parse_config(unjudged))
    answers = Strategies(plain.router, plain.executor).cost_bound_usd(
        chat, plain.router.decide(chat), []
    )
    verdict = 50 * 15.00 / 1e6  # a judgement on large-model costs at least its verdict
    budget = answers + verdict / 2
    gw = start_gateway(
        text.replace("keys:\n", f"keys:\n  - {{name: poor, key: tg-poor, budget_usd: {budget}}}\n")
    )
    fake.enqueue(Reply("A plausible answer.", delay_headers=1.0), model="mock-small")
    fake.enqueue(Reply('{"score": 0.9}'), model="mock-large")
    client = gw.client("tg-poor")
    ask = {"model": "auto:x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.chat.completions.create, **ask)
        deadline = time.monotonic() + 5
        while fake.calls < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(openai.RateLimitError, match="budget exhausted"):
            client.chat.completions.create(**ask)
        assert first.result().choices[0].message.content == "A plausible answer."
    assert fake.calls == 2  # the first request's answer and judgement; nothing for the second
