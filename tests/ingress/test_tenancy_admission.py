"""A request the key may not make is refused before any model call, classifier included:
no upstream traffic, nothing spent."""

import time

import httpx

from tests.conftest import three_tier_config
from tiergate.fakes import Reply

CLASSIFIED = "  auto:x:\n    strategy: classifier\n    classifier: {model: small-model}\n"


def _config(fake, keys: str) -> str:
    text = three_tier_config(fake).replace("routes:\n", "routes:\n" + CLASSIFIED, 1)
    return text.replace("keys:\n", "keys:\n" + keys, 1)


def _post(gw, key: str, text: str = "hi") -> httpx.Response:
    body = {"model": "auto:x", "messages": [{"role": "user", "content": text}]}
    return httpx.post(
        f"{gw.url}/v1/chat/completions", json=body, headers={"x-api-key": key}, timeout=10
    )


def test_a_route_the_key_may_not_use_is_refused_before_the_classifier(fake, start_gateway):
    gw = start_gateway(_config(fake, "  - {name: auto-only, key: tg-auto, routes: [auto]}\n"))
    r = _post(gw, "tg-auto")
    assert r.status_code == 403 and r.json()["error"]["type"]
    assert fake.calls == 0
    assert all(e.total_cost_usd == 0 and e.sub_calls == [] for e in gw.ledger.entries)


def test_an_exhausted_budget_is_refused_before_the_classifier(fake, start_gateway):
    gw = start_gateway(
        _config(fake, "  - {name: poor, key: tg-poor, budget_usd: 0.0000001, period: day}\n")
    )
    fake.enqueue(Reply("SIMPLE", input_tokens=100, output_tokens=1), model="mock-small")
    fake.enqueue(Reply("answer", input_tokens=1000, output_tokens=1000), model="mock-small")
    assert _post(gw, "tg-poor").status_code == 200  # spends far more than the budget
    calls = fake.calls
    r = _post(gw, "tg-poor", "a new prompt, so the classifier's cache cannot answer")
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
    assert fake.calls == calls  # no classifier call either
    refused = gw.ledger.entries[-1]
    assert refused.status == 429 and refused.total_cost_usd == 0 and refused.sub_calls == []


def test_a_rate_limited_request_is_refused_before_the_classifier(fake, start_gateway):
    gw = start_gateway(_config(fake, "  - {name: slow, key: tg-slow, rpm: 1}\n"))
    fake.enqueue(Reply("SIMPLE"), Reply("answer"), model="mock-small")
    assert _post(gw, "tg-slow").status_code == 200
    calls = fake.calls
    r = _post(gw, "tg-slow", "another prompt, not in the classifier's cache")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert fake.calls == calls


def test_concurrent_cascades_overspend_by_at_most_one_cascade(fake, start_gateway):
    """A cascade can pay for an answer from every tier; its reservation must cover that."""
    import asyncio

    import openai

    text = three_tier_config(fake).replace("routes:\n", "routes:\n  auto:c: {strategy: cascade}\n")
    gw = start_gateway(
        text.replace(
            "keys:\n", "keys:\n  - {name: poor, key: tg-poor, budget_usd: 0.01, period: total}\n"
        )
    )
    for _ in range(50):
        fake.enqueue(Reply("I'm sorry, I can't help.", output_tokens=100), model="mock-small")
        fake.enqueue(Reply("", output_tokens=100), model="mock-medium")
        fake.enqueue(Reply("Answer.", output_tokens=100, delay_headers=0.5), model="mock-large")
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="tg-poor", max_retries=0)

    async def one() -> None:
        try:
            await client.chat.completions.create(
                model="auto:c", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
        except openai.RateLimitError:
            pass

    async def run() -> None:
        async with client:
            await asyncio.gather(*(one() for _ in range(50)))

    asyncio.run(run())
    time.sleep(0.2)
    spent = sum(e.total_cost_usd for e in gw.ledger.entries)
    prompt = 4  # what the fake upstream reports for "hi"
    one_cascade = sum(prompt * i + 100 * o for i, o in ((0.05, 0.40), (0.25, 2.0), (2.5, 15.0)))
    assert 0.01 <= spent <= 0.01 + one_cascade / 1e6
