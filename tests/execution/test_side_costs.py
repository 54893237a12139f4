"""What a request may spend besides its answers, held by its budget reservation."""

from __future__ import annotations

import pytest

from tests.conftest import three_tier_config
from tiergate.chat import decode_chat_request
from tiergate.config.loader import parse_config
from tiergate.execution.strategy import Strategies
from tiergate.gateway import Gateway
from tiergate.ledger.entry import SubCall

JUDGE = "validators: {judge: {model: large-model, threshold: 0.8}}"
ROUTES = {
    "cascade-2": f"  auto:x: {{strategy: cascade, cascade: {{max_steps: 2, {JUDGE}}}}}\n",
    "cascade-3": f"  auto:x: {{strategy: cascade, cascade: {{max_steps: 3, {JUDGE}}}}}\n",
    "speculative": f"  auto:x: {{strategy: speculative, speculative: {{{JUDGE}}}}}\n",
    "unjudged": "  auto:x: {strategy: cascade, cascade: {max_steps: 3}}\n",
}
# What one judgement costs at the most on large-model ($2.50 in, $15 out per million), for
# a request and an answer this short: the verdict's 50 tokens alone are $0.00075.
VERDICT_USD = 50 * 15.00 / 1e6


class _Upstream:
    def base_url(self, kind: str) -> str:
        return "http://127.0.0.1:9/v1"  # never called


def _bound(route: str, max_tokens: int = 100, sub_calls: list[SubCall] | None = None) -> float:
    text = three_tier_config(_Upstream()).replace("routes:\n", "routes:\n" + ROUTES[route], 1)
    gateway = Gateway.from_config(parse_config(text))
    chat = decode_chat_request(
        b'{"model": "auto:x", "max_tokens": %d, "messages": [{"role": "user", "content": "hi"}]}'
        % max_tokens
    )
    decision = gateway.router.decide(chat)
    return Strategies(gateway.router, gateway.executor).side_cost_bound_usd(
        chat, decision, sub_calls or []
    )


def test_one_judgement_per_cheap_cascade_step_and_one_for_speculative() -> None:
    one = _bound("cascade-2")
    assert one > VERDICT_USD
    assert _bound("cascade-3") == pytest.approx(2 * one)  # budget and standard are judged
    assert _bound("speculative") == pytest.approx(one)
    assert _bound("unjudged") == 0.0


def test_the_judged_answer_counts_up_to_its_output_limit() -> None:
    # 900 more answer tokens the judge may read, at large-model's input price.
    assert _bound("cascade-2", max_tokens=1000) - _bound("cascade-2") == pytest.approx(
        900 * 2.50 / 1e6
    )


def test_sub_calls_already_made_are_held_too() -> None:
    classifier = SubCall("classifier", "small-model", 100, 1, 0.0042)
    assert _bound("unjudged", sub_calls=[classifier]) == pytest.approx(0.0042)
    assert _bound("cascade-2", sub_calls=[classifier]) == pytest.approx(
        0.0042 + _bound("cascade-2")
    )
