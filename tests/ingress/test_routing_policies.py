"""Policies and per-request controls through the real server: controls sent as headers can
only tighten what the route and the key allow; refusals make no upstream call."""

import httpx

from tests.conftest import three_tier_config
from tiergate.fakes import Reply

ROUTES = """\
  auto:x:
    strategy: [static, rules]
    static:
      - {key: batch, tier: budget}
    policies:
      max_cost_usd: 0.005
      domains:
        legal: {min_tier: premium}
        medical: {blocked_models: [medium-model]}
"""
KEYS = """\
  - {name: batch, key: tg-batch}
  - {name: auto-only, key: tg-auto, routes: [auto]}
  - {name: budget-only, key: tg-budget, tiers: [budget]}
"""
REASONING = "Prove that the square root of 2 is irrational, step by step."


def _post(
    gw, text: str, key: str = "tg-test-key", model: str = "auto", max_tokens: int = 1000, **headers
):
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **headers},
        timeout=10,
    )


def _gateway(fake, start_gateway):
    text = three_tier_config(fake).replace("routes:\n", "routes:\n" + ROUTES, 1)
    return start_gateway(text.replace("keys:\n", "keys:\n" + KEYS, 1))


def test_header_controls_tighten_and_never_loosen(fake, start_gateway):
    gw = _gateway(fake, start_gateway)
    fake.enqueue(*(Reply("ok", input_tokens=10, output_tokens=5) for _ in range(5)))
    # a request's minimum tier cannot lower what the rules decided
    r = _post(gw, REASONING, x_tiergate_min_tier="budget")
    assert r.headers["x-tiergate-model"] == "large-model", r.headers["x-tiergate-reason"]
    # a request's cost cap lower than the route's (none here) steps the model down
    r = _post(gw, REASONING, x_tiergate_max_cost_usd="0.005")
    assert r.headers["x-tiergate-model"] == "medium-model"
    assert "policy: max cost $0.005 drops large-model" in r.headers["x-tiergate-reason"]
    # a request's cost cap higher than the route's does not loosen the route's cap
    r = _post(gw, REASONING, model="auto:x", x_tiergate_max_cost_usd="1.0")
    assert r.headers["x-tiergate-model"] == "medium-model"
    # tags tighten: legal raises the tier; medical blocks medium-model
    r = _post(gw, "hi", model="auto:x", max_tokens=100, x_tiergate_tags="legal")
    assert r.headers["x-tiergate-model"] == "large-model"
    assert "domain 'legal' requires minimum tier premium" in r.headers["x-tiergate-reason"]
    r = _post(
        gw,
        "Write a Python function that parses ISO dates.",
        max_tokens=100,
        x_tiergate_route="auto:x",
        x_tiergate_tags="medical",
    )
    assert r.headers["x-tiergate-route"] == "auto:x"
    assert r.headers["x-tiergate-model"] == "large-model", r.headers["x-tiergate-reason"]
    assert fake.calls == 5
    served = [e.model for e in gw.ledger.entries]
    assert served == ["large-model", "medium-model", "medium-model", "large-model", "large-model"]


def test_controls_cannot_reach_past_the_key_and_refusals_cost_nothing(fake, start_gateway):
    gw = _gateway(fake, start_gateway)
    # a cost cap no candidate fits: 400, no call
    r = _post(gw, "hi", x_tiergate_max_cost_usd="0.0000000001")
    assert r.status_code == 400 and r.json()["error"]["code"] == "max_cost_exceeded"
    # a route header naming a route the key may not use: 403
    r = _post(gw, "hi", key="tg-auto", x_tiergate_route="auto:x")
    assert r.status_code == 403
    # a minimum tier above what the key may use: 403, not an escalation
    r = _post(gw, "hi", key="tg-budget", x_tiergate_min_tier="premium")
    assert r.status_code == 403
    assert fake.calls == 0
    assert all(e.total_cost_usd == 0 for e in gw.ledger.entries)
    # the key may still use what it is allowed
    fake.enqueue(Reply("ok"))
    r = _post(gw, "hi", key="tg-budget")
    assert r.status_code == 200 and r.headers["x-tiergate-model"] == "small-model"


def test_static_by_virtual_key_through_the_server(fake, start_gateway):
    gw = _gateway(fake, start_gateway)
    fake.enqueue(Reply("cheap"), Reply("rules"))
    r = _post(gw, REASONING, key="tg-batch", model="auto:x")
    assert r.headers["x-tiergate-model"] == "small-model"
    assert r.headers["x-tiergate-reason"].startswith("static: key batch")
    r = _post(gw, REASONING, model="auto:x")  # another key falls through to the rules
    assert r.headers["x-tiergate-reason"].startswith("static: no match; rules:")
