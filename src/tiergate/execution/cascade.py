"""The `cascade` execution: the cheapest tier first, validate its answer, escalate one tier
at a time when a validator fails. Every escalated attempt's cost is booked to the request.

Streaming requests are answered from the buffered answer once it passes; only the last
tier, whose answer is served whatever it is, streams live.
"""

from __future__ import annotations

from dataclasses import replace

import msgspec

from tiergate.chat import ChatRequest
from tiergate.config.schema import CascadeConfig, FallbackConfig
from tiergate.errors import AllAttemptsFailed, NoCandidates
from tiergate.execution.buffered import BufferedStream
from tiergate.execution.executor import Completion, Executor, LiveStream
from tiergate.execution.validators import JudgeRunner, Verdict, check_answer
from tiergate.fleet import Model
from tiergate.ledger.entry import SubCall
from tiergate.routing.decision import Decision


def tier_steps(decision: Decision, max_steps: int) -> list[tuple[str, tuple[Model, ...]]]:
    """The decision's candidates grouped by tier, in order, at most `max_steps` groups."""
    steps: list[tuple[str, list[Model]]] = []
    for model in decision.candidates:
        if steps and steps[-1][0] == model.tier:
            steps[-1][1].append(model)
        else:
            steps.append((model.tier, [model]))
    return [(tier, tuple(models)) for tier, models in steps[:max_steps]]


async def validate(
    request: ChatRequest,
    completion: Completion,
    config: CascadeConfig | None,
    judge: JudgeRunner | None,
    sub_calls: list[SubCall],
) -> Verdict:
    """The cheap checks, then the judge (only when they pass: the judge costs money)."""
    validators = config.validators if config is not None else None
    if validators is None:
        return Verdict(True)
    verdict = check_answer(request, completion.response, validators)
    if verdict and judge is not None:
        verdict = await judge(request, completion.response, sub_calls)
    return verdict


def book_attempt(sub_calls: list[SubCall], purpose: str, completion: Completion) -> None:
    """An answer that was paid for but not served."""
    u = completion.usage
    sub_calls.append(
        SubCall(
            purpose, completion.model.name, u.input_tokens, u.output_tokens, completion.cost_usd
        )
    )


class Cascade:
    """Runs one decision as a cascade."""

    def __init__(
        self,
        executor: Executor,
        config: CascadeConfig,
        judge: JudgeRunner | None,
    ):
        self.executor = executor
        self.config = config
        self.judge = judge

    def answer_groups(self, decision: Decision) -> list[tuple[Model, ...]]:
        """The candidates of each step: a request may pay for one answer per step."""
        return [models for _, models in tier_steps(decision, self.config.max_steps)]

    def judgements(self, decision: Decision) -> int:
        """The most judge calls a request makes: one per cheap step (the last is served)."""
        if self.judge is None:
            return 0
        return len(tier_steps(decision, self.config.max_steps)) - 1

    async def _cheap_steps(
        self,
        request: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> tuple[Completion | None, Decision]:
        """Every step but the last: (a passing answer, None) or (None, the last step)."""
        steps = tier_steps(decision, self.config.max_steps)
        ask = request
        if request.stream:
            # The answer must be whole to be validated: ask for it unstreamed.
            ask = replace_stream(request)
        reasons = decision.reasons
        for tier, models in steps[:-1]:
            step = replace(decision, tier=tier, candidates=models)
            try:
                done = await self.executor.complete(ask, step, policy)
            except (AllAttemptsFailed, NoCandidates) as exc:
                reasons.append(f"cascade: {tier} failed ({exc.message[:60]}) \u2192 escalate")
                continue
            verdict = await validate(request, done, self.config, self.judge, sub_calls)
            if verdict:
                reasons.append(f"cascade: {done.model.name} passed validation")
                return done, step
            book_attempt(sub_calls, "cascade", done)
            reasons.append(
                f"cascade: {done.model.name} failed validation ({verdict.reason}) \u2192 escalate"
            )
        tier, models = steps[-1]
        if len(steps) > 1:
            reasons.append(f"cascade: serving {tier}")
        return None, replace(decision, tier=tier, candidates=models)

    async def complete(
        self,
        request: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> Completion:
        """The first answer that passes, or the last tier's answer."""
        passed, last = await self._cheap_steps(request, decision, policy, sub_calls)
        if passed is not None:
            return passed
        return await self.executor.complete(request, last, policy)

    async def stream(
        self,
        request: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> LiveStream | BufferedStream:
        """A passing cheap answer replayed as a stream, or the last tier streamed live."""
        passed, last = await self._cheap_steps(request, decision, policy, sub_calls)
        if passed is not None:
            return BufferedStream(passed)
        return await self.executor.stream(request, last, policy)


def replace_stream(request: ChatRequest) -> ChatRequest:
    """The same request, unstreamed (for an answer that must be validated first)."""
    return msgspec.structs.replace(request, stream=False, stream_options=None)
