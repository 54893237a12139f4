"""The ``judge`` grader: a configured model reads the rubric, the prompt (and the reference
answer, when the case has one) and the answer, and replies with a score in 0..1.

The judge call goes through the gateway's executor like an answer does (same adapters,
retries and failover across the judge model's deployments); its cost is reported apart
from the answer's, because the router must compare what answers cost, not what grading
them cost (see ``judge_cost_usd`` in :mod:`tiergate.evals.runner`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.chat import ChatRequest, Message
from tiergate.config.schema import FallbackConfig
from tiergate.evals.suite import Judge, SuiteCase
from tiergate.execution.executor import Executor
from tiergate.observability.judge import parse_score
from tiergate.routing.router import Router

__all__ = ["JUDGE_MARKER", "JudgeVerdict", "judge_answer", "judge_request"]

# The first line of every judge prompt; the --fake simulator recognises judge calls by it.
JUDGE_MARKER = "You grade an AI assistant's answer for an evaluation."
_DEFAULT_RUBRIC = "The answer is correct, complete and directly addresses the request."
_INSTRUCTIONS = (
    f"{JUDGE_MARKER} Judge the answer only against the rubric (and the reference answer, "
    'when one is given). Reply with only a JSON object {"score": S, "reason": "..."} '
    "where S is a number from 0 (fails the rubric) to 1 (fully meets it).\n\nRubric: "
)
_MAX_CHARS = 8000  # of prompt, reference and answer each: bounds the cost of one judgment


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    """The judge's score (None when its reply held none), what the call cost, and why not."""

    score: float | None
    cost_usd: float
    note: str = ""


def judge_request(judge_model: str, grader: Judge, case: SuiteCase, answer: str) -> ChatRequest:
    """The request that asks ``judge_model`` to grade one answer."""
    parts = [f"## Request\n{case.text[:_MAX_CHARS]}"]
    if case.reference is not None:
        parts.append(f"## Reference answer\n{case.reference[:_MAX_CHARS]}")
    parts.append(f"## Answer\n{answer[:_MAX_CHARS]}")
    return ChatRequest(
        model=judge_model,
        messages=[
            Message(role="system", content=_INSTRUCTIONS + (grader.rubric or _DEFAULT_RUBRIC)),
            Message(role="user", content="\n\n".join(parts)),
        ],
        temperature=0.0,
        max_tokens=300,
    )


async def judge_answer(
    router: Router,
    executor: Executor,
    policy: FallbackConfig,
    judge_model: str,
    grader: Judge,
    case: SuiteCase,
    answer: str,
) -> JudgeVerdict:
    """Ask the judge; raises the executor's `TiergateError` when no deployment answers."""
    request = judge_request(judge_model, grader, case, answer)
    completion = await executor.complete(request, router.decide(request), policy)
    reply = completion.response.message.content
    score = parse_score(reply)
    if score is None:
        return JudgeVerdict(
            None, completion.cost_usd, f"the judge's reply held no score: {reply!r:.80}"
        )
    return JudgeVerdict(score, completion.cost_usd)
