"""Is a cheap answer good enough? The checks a cascade or speculative route runs on it.

`check_answer` is pure and fast: non-empty, not a refusal or hedge, valid JSON matching the
requested schema, tool-call arguments valid against each tool's schema, length bounds and
a custom regex. The optional LLM judge is I/O and lives in `judge_answer`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema
import orjson

from tiergate.chat import ChatRequest, ChatResponse, Message
from tiergate.config.schema import FallbackConfig, JudgeConfig, ValidatorsConfig
from tiergate.errors import TiergateError
from tiergate.fleet import Model
from tiergate.ledger.entry import SubCall
from tiergate.observability.judge import answer_text, parse_score, prompt_text
from tiergate.routing.decision import Decision

if TYPE_CHECKING:
    from tiergate.execution.executor import Completion

CompleteFn = Callable[[ChatRequest, Decision, FallbackConfig], Awaitable["Completion"]]

# Refusals and hedges, matched against the start of the answer (where models put them).
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry,|i apologi[sz]e|unfortunately,? i|"
    r"i (?:can(?:'|no)?t|cannot|am unable to|am not able to|won'?t|do not have|don'?t have) "
    r"(?:help|assist|answer|provide|comply|do that|access|browse|know|be sure)|"
    r"as an ai(?: language model)?|i'?m not (?:able|sure)|i am not (?:able|sure)|"
    r"it is not possible for me|i'?m unable)",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:i(?:'m| am) not (?:sure|certain)|i don'?t know|i do not know|"
    r"it(?:'s| is) (?:hard|difficult|impossible) to say|i cannot be certain)\b",
    re.IGNORECASE,
)
_JUDGE_POLICY = FallbackConfig(retries=0, other_models=False, tier_up=False)
_JUDGE_CUT = 6000  # characters of the request, and of the answer, the judge sees
_VERDICT_TOKENS = 50
_JUDGE_RUBRIC = (
    "You check whether an AI assistant's answer fully and correctly answers the request. "
    'Reply with only a JSON object {"score": S} where S is from 0 (wrong, evasive or '
    "incomplete) to 1 (correct and complete)."
)
# The rubric and the two headings, in tokens, generously: never more tokens than characters.
_RUBRIC_TOKENS = len(_JUDGE_RUBRIC) + 32


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the answer passed, and if not which check failed and why."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


PASS = Verdict(True)


def _json_of(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):
        # Models often fence JSON even when asked not to; the content is what counts.
        stripped = stripped.strip("`").removeprefix("json").strip()
    return orjson.loads(stripped)


def _schema_error(instance: Any, schema: dict[str, Any]) -> str | None:
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return None  # the client's schema is broken: nothing to hold the answer to
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(instance))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message[:120]}"


def check_answer(request: ChatRequest, response: ChatResponse, config: ValidatorsConfig) -> Verdict:
    """Run every configured cheap check; the first failure is the verdict."""
    if not response.choices:
        return Verdict(False, "no choices")
    message = response.message
    text = message.content or ""
    calls = message.tool_calls or []
    if config.non_empty and not text.strip() and not calls:
        return Verdict(False, "empty answer")
    if message.refusal:
        return Verdict(False, "refusal")
    if response.finish_reason == "content_filter":
        return Verdict(False, "content filtered")
    if config.no_refusal and text and not calls:
        head = text[:300]
        if _REFUSAL.search(head):
            return Verdict(False, "refusal")
        if _HEDGE.search(head):
            return Verdict(False, "hedge")
    if config.json_schema and request.wants_json() and not calls:
        try:
            data = _json_of(text)
        except orjson.JSONDecodeError:
            return Verdict(False, "not valid JSON")
        rf = request.response_format
        schema = rf.json_schema.schema if rf and rf.json_schema else None
        if schema:
            problem = _schema_error(data, schema)
            if problem:
                return Verdict(False, f"JSON does not match the schema: {problem}")
    if config.tool_arguments and calls:
        tools = {t.function.name: t.function.parameters for t in request.tools or ()}
        for call in calls:
            if call.function.name not in tools:
                return Verdict(False, f"called unknown tool {call.function.name!r}")
            try:
                args = orjson.loads(call.function.arguments or "{}")
            except orjson.JSONDecodeError:
                return Verdict(False, f"tool {call.function.name} arguments are not JSON")
            schema = tools[call.function.name]
            if schema:
                problem = _schema_error(args, schema)
                if problem:
                    return Verdict(False, f"tool {call.function.name} arguments: {problem}")
    if config.min_chars is not None and len(text) < config.min_chars and not calls:
        return Verdict(False, f"{len(text)} characters < {config.min_chars}")
    if config.max_chars is not None and len(text) > config.max_chars:
        return Verdict(False, f"{len(text)} characters > {config.max_chars}")
    if config.regex is not None and not calls and not re.search(config.regex, text, re.I):
        return Verdict(False, "does not match the required pattern")
    return PASS


class JudgeRunner:
    """Scores an answer with an LLM judge through the executor; books its cost."""

    def __init__(self, complete: CompleteFn, judge: JudgeConfig, model: Model):
        self._complete = complete  # Executor.complete
        self.judge = judge
        self.model = model

    def max_cost_usd(self, prompt_tokens: int, answer_tokens: int) -> float:
        """The most one judgement can cost: the rubric, the request and the answer (each
        cut at `_JUDGE_CUT` characters, so at most as many tokens) and a `_VERDICT_TOKENS`
        reply. Budgets hold it before the request runs."""
        asked = _RUBRIC_TOKENS + min(prompt_tokens, _JUDGE_CUT) + min(answer_tokens, _JUDGE_CUT)
        return self.model.price.cost(asked, _VERDICT_TOKENS)

    async def __call__(
        self, request: ChatRequest, response: ChatResponse, sub_calls: list[SubCall]
    ) -> Verdict:
        ask = ChatRequest(
            model=self.model.name,
            messages=[
                Message(role="system", content=_JUDGE_RUBRIC),
                Message(
                    role="user",
                    content=f"## Request\n{prompt_text(request)[:_JUDGE_CUT]}\n\n"
                    f"## Answer\n{answer_text(response)[:_JUDGE_CUT]}",
                ),
            ],
            temperature=0.0,
            max_tokens=_VERDICT_TOKENS,
        )
        decision = Decision("judge", "judge", self.model.tier, (self.model,))
        try:
            async with asyncio.timeout(self.judge.timeout):
                done = await self._complete(ask, decision, _JUDGE_POLICY)
        except TimeoutError:
            return Verdict(False, "judge timed out")
        except TiergateError as exc:
            return Verdict(False, f"judge failed: {exc.message[:80]}")
        u = done.usage
        sub_calls.append(
            SubCall("judge", self.model.name, u.input_tokens, u.output_tokens, done.cost_usd)
        )
        score = parse_score(done.response.message.content)
        if score is None:
            return Verdict(False, "judge gave no score")
        if score < self.judge.threshold:
            return Verdict(False, f"judge score {score:.2f} < {self.judge.threshold:g}")
        return Verdict(True, f"judge score {score:.2f}")
