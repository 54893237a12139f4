"""Running a suite through a real gateway's executor against a fake upstream."""

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import three_tier_config
from tiergate.config.loader import parse_config
from tiergate.evals.judge import JUDGE_MARKER
from tiergate.evals.runner import run_suite, write_results
from tiergate.evals.suite import Exact, Judge, SuiteCase
from tiergate.fakes import FakeUpstream, Fault, Prompt, Reply
from tiergate.gateway import Gateway
from tiergate.ledger import MemoryLedger
from tiergate.outcomes import read_outcomes

CAPITAL = SuiteCase("capital", "facts", 1, Exact(("Paris",)), prompt="Capital of France?")
WHY = SuiteCase("why", "explain", 2, Judge(None, "Mentions gravity."), prompt="Why do apples fall?")


@pytest.fixture
async def gateway(fake: FakeUpstream) -> AsyncIterator[Gateway]:
    gateway = Gateway.from_config(parse_config(three_tier_config(fake)), ledger=MemoryLedger())
    await gateway.start()
    yield gateway
    await gateway.close()


async def test_each_case_on_each_model_is_graded_and_booked(
    gateway: Gateway, fake: FakeUpstream
) -> None:
    fake.respond_with(
        lambda p: Reply("Paris" if p.model == "mock-large" else "Lyon", output_tokens=3)
    )
    done = []
    results = await run_suite(
        gateway.router,
        gateway.executor,
        [CAPITAL],
        ["small-model", "large-model"],
        on_done=done.append,
    )
    assert len(done) == 2
    small, large = results
    assert (small.model, small.record.score) == ("small-model", 0.0)
    assert (large.model, large.record.score) == ("large-model", 1.0)
    record = large.record
    assert record.prompt == "Capital of France?" and record.task == "facts"
    assert record.response == "Paris" and record.output_tokens == 3
    assert record.cost_usd == pytest.approx((record.input_tokens * 2.5 + 3 * 15.0) / 1e6)
    assert record.latency_ms > 0
    # the model named, never another one: each upstream model id got exactly one call
    assert fake.calls_for(model="mock-small") == 1 and fake.calls_for(model="mock-large") == 1


async def test_retries_then_an_error_result_without_failover_to_another_model(
    gateway: Gateway, fake: FakeUpstream
) -> None:
    fake.enqueue(Fault(status=503), model="mock-small")
    fake.enqueue(Reply("Paris"), model="mock-small")
    for _ in range(3):
        fake.enqueue(Fault(status=500), model="mock-medium")
    results = await run_suite(
        gateway.router, gateway.executor, [CAPITAL], ["small-model", "medium-model"], retries=2
    )
    small, medium = results
    assert small.record is not None and small.record.score == 1.0
    assert medium.record is None and "AllAttemptsFailed" in (medium.error or "")
    assert fake.calls_for(model="mock-medium") == 3
    assert fake.calls_for(model="mock-large") == 0


async def test_the_judge_scores_and_its_cost_is_kept_apart(
    gateway: Gateway, fake: FakeUpstream, tmp_path: Path
) -> None:
    def respond(prompt: Prompt) -> Reply:
        if JUDGE_MARKER.encode() in orjson.dumps(prompt.body):
            assert "Mentions gravity." in orjson.dumps(prompt.body).decode()
            return Reply('Sure: {"score": 0.8, "reason": "ok"}', output_tokens=10)
        return Reply("Gravity pulls them down.", output_tokens=5)

    fake.respond_with(respond)
    results = await run_suite(
        gateway.router, gateway.executor, [WHY], ["small-model"], judge_model="large-model"
    )
    (result,) = results
    assert result.record is not None and result.record.score == pytest.approx(0.8)
    assert result.judge_cost_usd > result.record.cost_usd > 0  # the judge is the premium model
    out = tmp_path / "outcomes.jsonl"
    assert write_results(str(out), results) == 1
    assert orjson.loads(out.read_bytes())["judge_cost_usd"] == result.judge_cost_usd
    (back,) = read_outcomes(out)  # the extra field does not disturb readers
    assert back == result.record


async def test_a_judge_reply_without_a_score_is_an_error_result(
    gateway: Gateway, fake: FakeUpstream
) -> None:
    fake.respond_with(lambda p: Reply("I would rather not say."))
    (result,) = await run_suite(
        gateway.router, gateway.executor, [WHY], ["small-model"], judge_model="medium-model"
    )
    assert result.record is None and "no score" in (result.error or "")
    assert result.judge_cost_usd > 0  # the judge still cost money


async def test_concurrency_is_bounded(gateway: Gateway, fake: FakeUpstream) -> None:
    peak = 0

    def respond(prompt: Prompt) -> Reply:
        nonlocal peak
        peak = max(peak, fake.in_flight)
        return Reply("Paris", delay_headers=0.05)

    fake.respond_with(respond)
    cases = [
        SuiteCase(f"c{i}", "facts", i, Exact(("Paris",)), prompt=f"Capital {i}?") for i in range(8)
    ]
    results = await run_suite(
        gateway.router, gateway.executor, cases, ["small-model"], concurrency=2
    )
    assert all(r.record is not None for r in results)
    assert 1 <= peak <= 2
