"""The most a request can cost, which its budget reservation holds: answers by execution
strategy, judgements, sub-calls already made."""

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
    "unjudged-2": "  auto:x: {strategy: cascade, cascade: {max_steps: 2}}\n",
    "unjudged-speculative": "  auto:x: {strategy: speculative}\n",
    "plain": "  auto:x: {strategy: rules}\n",
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
    return Strategies(gateway.router, gateway.executor).cost_bound_usd(
        chat, decision, sub_calls or []
    )


# One answer of at most 100 tokens from a 1-token prompt estimate ("hi"), per model.
SMALL, MEDIUM, LARGE = (
    (_in + 100 * out) / 1e6 for _in, out in ((0.05, 0.40), (0.25, 2.00), (2.50, 15.00))
)


def test_answers_one_per_group_the_strategy_may_pay_for() -> None:
    assert _bound("plain") == pytest.approx(LARGE, rel=0.05)  # any candidate may answer
    assert _bound("unjudged-2") == pytest.approx(SMALL + MEDIUM, rel=0.05)  # never premium
    assert _bound("unjudged") == pytest.approx(SMALL + MEDIUM + LARGE, rel=0.05)
    assert _bound("unjudged-speculative") == pytest.approx(SMALL + LARGE, rel=0.05)


def test_one_judgement_per_cheap_cascade_step_and_one_for_speculative() -> None:
    one = _bound("cascade-2") - _bound("unjudged-2")
    assert one > VERDICT_USD
    assert _bound("cascade-3") - _bound("unjudged") == pytest.approx(2 * one)
    assert _bound("speculative") - _bound("unjudged-speculative") == pytest.approx(one)


def test_the_judged_answer_counts_up_to_its_output_limit() -> None:
    judged = _bound("cascade-2", max_tokens=1000) - _bound("unjudged-2", max_tokens=1000)
    # 900 more answer tokens the judge may read, at large-model's input price.
    assert judged - (_bound("cascade-2") - _bound("unjudged-2")) == pytest.approx(900 * 2.50 / 1e6)


def test_sub_calls_already_made_are_held_too() -> None:
    classifier = SubCall("classifier", "small-model", 100, 1, 0.0042)
    assert _bound("plain", sub_calls=[classifier]) == pytest.approx(0.0042 + _bound("plain"))
