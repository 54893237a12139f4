"""The `speculative` execution: the cheap and the premium candidate in parallel. When the
cheap answer passes validation within the route's deadline the premium call is cancelled
(the connection is dropped; its partial cost, the prompt it was sent, is booked); otherwise
the premium answer is served and the cheap one's cost is booked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

from tiergate.chat import ChatRequest
from tiergate.config.schema import FallbackConfig, SpeculativeConfig
from tiergate.errors import TiergateError
from tiergate.execution.buffered import BufferedStream
from tiergate.execution.cascade import book_attempt, replace_stream
from tiergate.execution.executor import Completion, Executor
from tiergate.execution.validators import JudgeRunner, Verdict, check_answer
from tiergate.fleet import Model
from tiergate.ledger.entry import SubCall
from tiergate.routing.decision import Decision


def _split(decision: Decision, premium_tier: str | None) -> tuple[Decision, Decision] | None:
    """(cheap, premium) decisions, or None when the decision is already premium."""
    top = premium_tier or decision.candidates[-1].tier
    cheap = tuple(m for m in decision.candidates if m.tier == decision.tier)
    premium = tuple(m for m in decision.candidates if m.tier == top)
    if decision.tier == top or not cheap or not premium:
        return None
    return (
        replace(decision, candidates=cheap),
        replace(decision, tier=top, candidates=premium),
    )


def _cancelled_cost(model: Model, prompt_tokens: int) -> float:
    # A cancelled call has been sent its whole prompt, which the provider bills; the few
    # output tokens it may have produced are not reported, so they are not counted.
    return model.price.cost(prompt_tokens, 0)


async def _cancel(task: asyncio.Task[Completion]) -> None:
    task.cancel()
    # Waiting for the cancellation lets the transport drop the connection now.
    with contextlib.suppress(asyncio.CancelledError, TiergateError):
        await task


class Speculative:
    """Runs one decision speculatively."""

    def __init__(self, executor: Executor, config: SpeculativeConfig, judge: JudgeRunner | None):
        self.executor = executor
        self.config = config
        self.judge = judge

    def answer_groups(self, decision: Decision) -> list[tuple[Model, ...]]:
        """The cheap and the premium candidates (both may answer and be paid for), or all
        of them when the decision is premium already (one plain call)."""
        split = _split(decision, self.config.premium_tier)
        if split is None:
            return [decision.candidates]
        return [split[0].candidates, split[1].candidates]

    def judgements(self, decision: Decision) -> int:
        """The cheap answer is judged, once; a plain call is not."""
        split = _split(decision, self.config.premium_tier)
        return 1 if self.judge is not None and split is not None else 0

    async def complete(
        self,
        request: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> Completion:
        """The cheap answer when it passes in time, else the premium answer."""
        split = _split(decision, self.config.premium_tier)
        ask = replace_stream(request) if request.stream else request
        reasons = decision.reasons
        if split is None:
            return await self.executor.complete(ask, decision, policy)
        cheap_d, premium_d = split
        no_tier_up = policy.model_copy(update={"tier_up": False})
        started = time.perf_counter()
        cheap = asyncio.create_task(self.executor.complete(ask, cheap_d, no_tier_up))
        premium = asyncio.create_task(self.executor.complete(ask, premium_d, no_tier_up))
        deadline = started + self.config.deadline_ms / 1000
        verdict = Verdict(False, "no answer in time")
        answer: Completion | None = None
        try:
            await asyncio.wait({cheap}, timeout=max(deadline - time.perf_counter(), 0))
            if cheap.done():
                answer = cheap.result()
                remaining = deadline - time.perf_counter()
                verdict = await asyncio.wait_for(
                    self._validate(request, answer, sub_calls), max(remaining, 0.001)
                )
        except TimeoutError:
            verdict = Verdict(False, "validation not done in time")
        except TiergateError as exc:
            verdict = Verdict(False, f"failed ({exc.message[:60]})")
        except BaseException:
            # The client went away (or the server is stopping): cancel both calls.
            await _cancel(cheap)
            await _cancel(premium)
            raise
        ms = (time.perf_counter() - started) * 1000
        if verdict and answer is not None:
            premium_model = premium_d.candidates[0]
            if premium.done() and not premium.cancelled() and premium.exception() is None:
                book_attempt(sub_calls, "speculative", premium.result())
            else:
                await _cancel(premium)
                sub_calls.append(
                    SubCall(
                        "speculative-cancelled",
                        premium_model.name,
                        decision.prompt_tokens,
                        0,
                        _cancelled_cost(premium_model, decision.prompt_tokens),
                    )
                )
            reasons.append(
                f"speculative: {answer.model.name} passed in {ms:.0f} ms "
                f"\u2192 cancelled {premium_model.name}"
            )
            return answer
        if answer is None and not cheap.done():
            await _cancel(cheap)
            cheap_model = cheap_d.candidates[0]
            sub_calls.append(
                SubCall(
                    "speculative-cancelled",
                    cheap_model.name,
                    decision.prompt_tokens,
                    0,
                    _cancelled_cost(cheap_model, decision.prompt_tokens),
                )
            )
        reasons.append(
            f"speculative: {cheap_d.candidates[0].name} {verdict.reason} "
            f"within {self.config.deadline_ms:g} ms \u2192 {premium_d.tier}"
        )
        try:
            served = await premium
        except TiergateError:
            if answer is None:
                raise
            # The premium call failed: an answer that missed validation beats an error.
            reasons.append(f"speculative: {premium_d.tier} failed \u2192 serving the cheap answer")
            return answer
        if answer is not None:
            book_attempt(sub_calls, "speculative", answer)
        return served

    async def stream(
        self,
        request: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> BufferedStream:
        """Speculative answers are whole before one is chosen: replayed as a stream."""
        return BufferedStream(await self.complete(request, decision, policy, sub_calls))

    async def _validate(
        self, request: ChatRequest, answer: Completion, sub_calls: list[SubCall]
    ) -> Verdict:
        verdict = check_answer(request, answer.response, self.config.validators)
        if verdict and self.judge is not None:
            verdict = await self.judge(request, answer.response, sub_calls)
        return verdict
