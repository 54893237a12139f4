"""A request the key may not make is refused before any model call, classifier included:
no upstream traffic, nothing spent."""

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
