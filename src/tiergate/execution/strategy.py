"""The routing step and the execution strategy of one request, as the ingress runs them.

`Strategies.decide` is the pure decision plus the one strategy that needs I/O (the
classifier); `complete` / `stream` run the decision directly, as a cascade or
speculatively, as its route says. Model calls made besides the answer are appended to the
caller's `sub_calls` list so that the ledger books them with the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tiergate.chat import ChatRequest
from tiergate.config.schema import FallbackConfig, ValidatorsConfig
from tiergate.execution.buffered import BufferedStream
from tiergate.execution.cascade import Cascade
from tiergate.execution.classifier import classify
from tiergate.execution.executor import Completion, Executor, LiveStream
from tiergate.execution.speculative import Speculative
from tiergate.execution.validators import JudgeRunner
from tiergate.ledger.entry import SubCall
from tiergate.routing.context import RequestContext
from tiergate.routing.decision import Decision
from tiergate.routing.features import extract_features
from tiergate.routing.router import Router

if TYPE_CHECKING:
    from tiergate.auth.keys import KeyInfo
    from tiergate.ingress.controls import Controls


def request_context(
    key: KeyInfo | None, controls: Controls, chat: ChatRequest, endpoint: str = "chat"
) -> RequestContext:
    """The routing context of one request.

    Tags come from the controls (`x-tiergate-tags`, `extra_body.tiergate.tags`) and from
    the request's `metadata` (`"domain"` and a comma-separated `"tags"`).
    """
    tags = set(controls.tags)
    metadata = chat.metadata or {}
    if metadata:
        tags.update(t.strip() for t in metadata.get("tags", "").split(",") if t.strip())
        if metadata.get("domain"):
            tags.add(metadata["domain"])
    return RequestContext(
        key_name=key.name if key is not None else None,
        endpoint=endpoint,
        tags=frozenset(tags),
        metadata=tuple(sorted(metadata.items())),
        min_tier=controls.min_tier,
        max_cost_usd=controls.max_cost_usd,
        latency_budget_ms=controls.latency_budget_ms,
        allowed_tiers=key.tiers if key is not None else frozenset(),
        allowed_models=key.models if key is not None else frozenset(),
    )


class Strategies:
    """Decides and executes requests for one gateway (cheap to create)."""

    def __init__(self, router: Router, executor: Executor):
        self.router = router
        self.executor = executor

    async def decide(
        self,
        chat: ChatRequest,
        context: RequestContext,
        sub_calls: list[SubCall],
        before_classifier: Callable[[Decision], Awaitable[None]] | None = None,
    ) -> Decision:
        """The decision; runs the classifier first when the route's decision needs it.

        `before_classifier` sees the pending decision and may raise to refuse the request
        before the classifier's model call (a key's route allow-list, a spent budget)."""
        features = extract_features(chat)
        decision = self.router.decide(chat, features=features, context=context)
        if decision.pending != "classifier":
            return decision
        if before_classifier is not None:
            await before_classifier(decision)
        classifier = self.router.routes[decision.route].classifier
        assert classifier is not None  # a pending classifier step implies one
        verdict = await classify(self.executor, classifier, features.text)
        if verdict.cost_usd or verdict.input_tokens:
            sub_calls.append(
                SubCall(
                    "classifier",
                    classifier.model.name,
                    verdict.input_tokens,
                    verdict.output_tokens,
                    verdict.cost_usd,
                )
            )
        return self.router.decide(
            chat, features=features, context=replace(context, classifier=verdict)
        )

    def _judge(self, validators: ValidatorsConfig) -> JudgeRunner | None:
        judge = validators.judge
        if judge is None:
            return None
        return JudgeRunner(self.executor.complete, judge, self.router.fleet.models[judge.model])

    def _runner(self, decision: Decision) -> Cascade | Speculative | None:
        route = self.router.routes.get(decision.route)
        if route is None:
            return None
        if decision.execution == "cascade" and route.cascade is not None:
            return Cascade(self.executor, route.cascade, self._judge(route.cascade.validators))
        if decision.execution == "speculative" and route.speculative is not None:
            spec = route.speculative
            return Speculative(self.executor, spec, self._judge(spec.validators))
        return None

    def cost_bound_usd(
        self, chat: ChatRequest, decision: Decision, sub_calls: list[SubCall]
    ) -> float:
        """The most the request can cost, which its budget reservation holds: the sub-calls
        already made (the classifier's); one answer per group of candidates its execution
        may pay for (all candidates for a plain call, each cascade step, the cheap and the
        premium tier of a speculative call), at the group's dearest model, with its prompt
        estimate and `max_tokens` (or the model's own output limit); and every judgement
        the route may ask for, at the most each can cost."""
        runner = self._runner(decision)
        groups = [decision.candidates] if runner is None else runner.answer_groups(decision)
        limit = chat.output_limit
        prompt = decision.prompt_tokens
        total = sum(call.cost_usd for call in sub_calls)
        for group in groups:
            total += max(
                (m.price.cost(prompt, limit if limit is not None else m.max_output) for m in group),
                default=0.0,
            )
        judgements = runner.judgements(decision) if runner is not None else 0
        if judgements and runner is not None and runner.judge is not None:
            answer = max(
                (limit if limit is not None else m.max_output for m in decision.candidates),
                default=0,
            )
            total += judgements * runner.judge.max_cost_usd(prompt, answer)
        return total

    async def complete(
        self,
        chat: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> Completion:
        """A whole answer, by the route's execution strategy."""
        runner = self._runner(decision)
        if runner is None:
            return await self.executor.complete(chat, decision, policy)
        return await runner.complete(chat, decision, policy, sub_calls)

    async def stream(
        self,
        chat: ChatRequest,
        decision: Decision,
        policy: FallbackConfig,
        sub_calls: list[SubCall],
    ) -> LiveStream | BufferedStream:
        """A stream, by the route's execution strategy (validated answers are buffered)."""
        runner = self._runner(decision)
        if runner is None:
            return await self.executor.stream(chat, decision, policy)
        return await runner.stream(chat, decision, policy, sub_calls)
