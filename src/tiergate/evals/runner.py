"""Running a suite: every case through every named model, via the gateway's own executor.

No HTTP hop: each case becomes a `ChatRequest` for one model, the router makes the direct
decision for that model (so capability checks apply), and the executor runs it with the
same adapters, retries and failover across the model's deployments as live traffic. It
never fails over to another model: the eval measures the model it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from tiergate.config.schema import FallbackConfig
from tiergate.errors import TiergateError
from tiergate.evals.graders import grade
from tiergate.evals.judge import judge_answer
from tiergate.evals.suite import Judge, SuiteCase
from tiergate.execution.executor import Executor
from tiergate.observability.judge import answer_text
from tiergate.outcomes import OutcomeRecord
from tiergate.routing.router import Router

__all__ = ["EvalResult", "eval_policy", "run_suite", "write_results"]


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One (case, model) run: its outcome record, or the error that left it unanswered.

    ``judge_cost_usd`` is what grading cost (judge cases); the record's ``cost_usd`` is
    only the answer's, the figure a router compares between models.
    """

    case: SuiteCase
    model: str
    record: OutcomeRecord | None
    judge_cost_usd: float = 0.0
    error: str | None = None


def eval_policy(retries: int) -> FallbackConfig:
    """Retries and deployment failover, never another model (see the module docstring)."""
    return FallbackConfig(
        retries=retries, backoff_base=0.2, backoff_max=5.0, other_models=False, tier_up=False
    )


async def run_suite(
    router: Router,
    executor: Executor,
    cases: Sequence[SuiteCase],
    models: Sequence[str],
    *,
    concurrency: int = 8,
    retries: int = 2,
    judge_model: str | None = None,
    on_done: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Run every case on every model, at most ``concurrency`` at once; results in
    (case, model) order. A failed call is a result with ``error`` set, never an exception."""
    policy = eval_policy(retries)
    gate = asyncio.Semaphore(concurrency)

    async def one(case: SuiteCase, model: str) -> EvalResult:
        async with gate:
            result = await _run_one(router, executor, policy, case, model, judge_model)
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(one(c, m) for c in cases for m in models)))


async def _run_one(
    router: Router,
    executor: Executor,
    policy: FallbackConfig,
    case: SuiteCase,
    model: str,
    judge_model: str | None,
) -> EvalResult:
    request = case.request(model)
    started = time.perf_counter()
    try:
        completion = await executor.complete(request, router.decide(request), policy)
    except TiergateError as exc:
        return EvalResult(case, model, None, error=f"{type(exc).__name__}: {exc.message}"[:300])
    latency_ms = (time.perf_counter() - started) * 1000
    answer = answer_text(completion.response)
    judge_cost = 0.0
    if isinstance(case.grader, Judge):
        judge = case.grader.model or judge_model
        assert judge is not None, "check_models() makes sure every judge case has a judge"
        try:
            verdict = await judge_answer(router, executor, policy, judge, case.grader, case, answer)
        except TiergateError as exc:
            error = f"judge {judge}: {type(exc).__name__}: {exc.message}"[:300]
            return EvalResult(case, model, None, error=error)
        judge_cost = verdict.cost_usd
        if verdict.score is None:
            return EvalResult(case, model, None, judge_cost, error=verdict.note)
        score = verdict.score
    else:
        score = grade(case.grader, answer)
    usage = completion.usage
    record = OutcomeRecord(
        model=model,
        score=score,
        prompt=case.prompt,
        messages=case.messages,
        cost_usd=completion.cost_usd,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        latency_ms=round(latency_ms, 3),
        response=answer,
        task=case.task,
    )
    return EvalResult(case, model, record, judge_cost)


def write_results(path: str, results: Sequence[EvalResult]) -> int:
    """Write the answered results as outcome records; returns how many were written.

    Each line is :meth:`OutcomeRecord.to_json` plus, for judged cases, ``judge_cost_usd``
    (an extra field that :func:`tiergate.outcomes.read_outcomes` ignores).
    """
    written = 0
    with open(path, "wb") as out:
        for result in results:
            if result.record is None:
                continue
            line = result.record.to_json()
            if isinstance(result.case.grader, Judge):
                line["judge_cost_usd"] = result.judge_cost_usd
            out.write(orjson.dumps(line) + b"\n")
            written += 1
    return written
