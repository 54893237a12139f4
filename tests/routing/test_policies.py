"""Policies and the static strategy, decided without a server."""

from __future__ import annotations

import pytest

from tests.routing.conftest import ask, make_router
from tiergate.errors import BadRequest, PermissionDenied
from tiergate.routing.context import ClassifierVerdict, RequestContext

POLICY_ROUTES = """
routes:
  auto:
    strategy: rules
    policies:
      domains:
        legal: {min_tier: premium}
        medical: {min_tier: standard, blocked_models: [medium-model]}
"""


def test_domain_tag_raises_the_tier_and_says_why():
    router = make_router(POLICY_ROUTES)
    decision = router.decide(ask("hi"), context=RequestContext(tags=frozenset({"legal"})))
    assert decision.tier == "premium" and decision.model.name == "large-model"
    assert "policy: domain 'legal' requires minimum tier premium" in decision.reasons


def test_domain_blocks_models():
    router = make_router(POLICY_ROUTES)
    decision = router.decide(ask("hi"), context=RequestContext(tags=frozenset({"medical"})))
    assert [m.name for m in decision.candidates] == ["large-model"]
    assert decision.tier == "premium"


def test_request_min_tier_only_raises():
    router = make_router()
    assert router.decide(ask("hi"), min_tier="standard").tier == "standard"
    reasoning = ask("prove the theorem step by step")
    assert router.decide(reasoning, min_tier="budget").tier == "premium"
    with pytest.raises(BadRequest):
        router.decide(ask("hi"), min_tier="platinum")


def test_max_cost_drops_expensive_candidates_and_can_step_down():
    router = make_router()
    prompt = ask("prove it step by step", max_tokens=1000)
    # large-model: 1000 output tokens at $15/M = $0.015 > $0.005; medium fits.
    decision = router.decide(prompt, context=RequestContext(max_cost_usd=0.005))
    assert decision.model.name == "medium-model"
    assert any(r.startswith("policy: max cost $0.005 drops large-model") for r in decision.reasons)
    with pytest.raises(BadRequest) as err:
        router.decide(prompt, context=RequestContext(max_cost_usd=0.0000001))
    assert err.value.code == "max_cost_exceeded"


def test_route_cost_cap_and_request_cap_take_the_tighter():
    router = make_router(
        """
        routes:
          auto: {strategy: rules, policies: {max_cost_usd: 0.005}}
        """
    )
    prompt = ask("prove it step by step", max_tokens=1000)
    assert router.decide(prompt).model.name == "medium-model"
    loose = router.decide(prompt, context=RequestContext(max_cost_usd=1.0))
    assert loose.model.name == "medium-model"  # a request cannot loosen the route's cap


def test_latency_budget_prefers_models_that_fit():
    latency = {"medium-model@upstream": 2000.0, "large-model@upstream": 300.0}
    router = make_router(
        "routes:\n  auto: {strategy: static, tier: standard, policies: {latency_budget_ms: 800}}\n",
        latency=latency.get,
    )
    decision = router.decide(ask("hi"))
    assert [m.name for m in decision.candidates] == ["large-model", "medium-model"]
    assert "latency budget 800 ms moves medium-model (p50 2000 ms) back" in "; ".join(
        decision.reasons
    )


def test_cooling_models_go_last_and_are_named():
    router = make_router(cooling=lambda d: d.startswith("small-model"))
    decision = router.decide(ask("hi", model="tier:budget"))
    assert decision.model.name == "cheap-out"
    assert "cooling down, tried last: small-model" in decision.reasons


def test_key_allow_lists_narrow_candidates():
    router = make_router()
    ctx = RequestContext(allowed_tiers=frozenset({"standard"}))
    decision = router.decide(ask("hi"), context=ctx)
    assert decision.tier == "standard"
    assert all(m.tier == "standard" for m in decision.candidates)
    with pytest.raises(PermissionDenied):
        router.decide(ask("hi", model="large-model"), context=ctx)


def test_static_by_key_tags_endpoint_and_metadata():
    router = make_router(
        """
        routes:
          auto:
            strategy: [static, rules]
            static:
              - {key: batch, tier: budget}
              - {tags: [vip], models: [large-model]}
              - {endpoint: messages, tier: standard}
              - {metadata: {team: research}, tier: premium}
        """
    )
    reasoning = ask("prove it step by step")
    assert router.decide(reasoning, context=RequestContext(key_name="batch")).tier == "budget"
    vip = router.decide(ask("hi"), context=RequestContext(tags=frozenset({"vip"})))
    assert vip.model.name == "large-model" and vip.reasons[0].startswith("static: tags ['vip']")
    assert router.decide(ask("hi"), context=RequestContext(endpoint="messages")).tier == "standard"
    research = RequestContext(metadata=(("team", "research"),))
    assert router.decide(ask("hi"), context=research).tier == "premium"
    fallthrough = router.decide(ask("hi"))
    assert fallthrough.strategy == "static>rules" and fallthrough.tier == "budget"
    assert fallthrough.reasons[0] == "static: no match"


def test_classifier_verdicts_map_to_tiers_and_failures_to_the_default():
    router = make_router(
        """
        routes:
          auto:
            strategy: [classifier, cascade]
            default_tier: standard
            classifier: {model: small-model}
        """
    )
    pending = router.decide(ask("hi"))
    assert pending.pending == "classifier" and pending.execution == "cascade"
    assert pending.strategy == "classifier>cascade"
    complex_ = RequestContext(classifier=ClassifierVerdict("COMPLEX", "small-model, 5 ms"))
    assert router.decide(ask("hi"), context=complex_).tier == "premium"
    simple = RequestContext(classifier=ClassifierVerdict("SIMPLE", "cached"))
    decision = router.decide(ask("hi"), context=simple)
    assert decision.tier == "budget" and decision.pending is None
    assert [m.tier for m in decision.candidates] == [
        "budget",
        "budget",
        "standard",
        "premium",
    ]  # a cascade escalates through every tier above
    failed = RequestContext(classifier=ClassifierVerdict(None, "timed out after 2 s"))
    decision = router.decide(ask("hi"), context=failed)
    assert decision.tier == "standard"
    assert decision.reasons == ["classifier: timed out after 2 s \u2192 default tier standard"]


def test_error_rates_stretch_observed_latency():
    from tiergate.routing.policy import expected_latency_ms

    assert expected_latency_ms(None, 0.5) is None
    assert expected_latency_ms(400.0, 0.0) == 400.0
    assert expected_latency_ms(400.0, 0.5) == 800.0  # half the attempts fail: twice the wait
    assert expected_latency_ms(400.0, 1.0) == 4000.0


def test_latency_budget_from_the_live_health_board(start_gateway, fake):
    from tests.conftest import three_tier_config
    from tiergate.fakes import Reply

    gw = start_gateway(
        three_tier_config(fake).replace(
            "routes:\n",
            "routes:\n  auto:x: {strategy: static, tier: standard,"
            " policies: {latency_budget_ms: 500}}\n",
            1,
        )
    )
    health = gw.gateway.health
    health.success("medium-model@upstream", 300.0)
    health.failure("medium-model@upstream")
    for _ in range(8):
        health.failure("medium-model@upstream")
        health.success("medium-model@upstream", 300.0)
    fake.enqueue(Reply("ok"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto:x", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert "latency budget 500 ms moves medium-model" in raw.headers["x-tiergate-reason"]
