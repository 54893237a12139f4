"""The LLM judge: scores a sample of answers through the gateway's own executor.

A judged answer costs one more model call; it is booked in the ledger like any request
(route "judge", endpoint "judge") so the spend on monitoring is visible, and it runs as a
background task after the client already has its answer, never on the request path.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from typing import TYPE_CHECKING

import orjson

from tiergate.chat import ChatRequest, ChatResponse, Message
from tiergate.config.schema import FallbackConfig, QualityJudgeConfig
from tiergate.errors import TiergateError
from tiergate.ledger import LedgerEntry

if TYPE_CHECKING:
    from tiergate.gateway import Gateway
    from tiergate.observability.quality import QualityMonitor

DEFAULT_RUBRIC = (
    "You are a strict grader of AI assistant answers. Judge whether the answer is correct, "
    "complete and helpful for the user's request. Reply with only a JSON object "
    '{"score": S, "reason": "..."} where S is a number from 0 (useless or wrong) '
    "to 1 (excellent)."
)
_MAX_CHARS = 8000  # of prompt and of answer shown to the judge: bounded cost per judgment
_POLICY = FallbackConfig(retries=1, other_models=False, tier_up=False)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*/\s*(100|10|5)\b)?")


def parse_score(text: str | None) -> float | None:
    """The score in a judge's answer: ``{"score": x}`` or the first number ("8/10" works);
    scales of 10 or 100 are brought to 0..1. None when no score is found."""
    if not text:
        return None
    stripped = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    value: float | None = None
    try:
        data = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("score"), int | float):
        value = float(data["score"])
    elif isinstance(data, int | float) and not isinstance(data, bool):
        value = float(data)
    else:
        match = _NUMBER.search(text)
        if match is None:
            return None
        value = float(match.group(1))
        if match.group(2):
            return min(max(value / float(match.group(2)), 0.0), 1.0)
    if value > 1:
        value = value / 10 if value <= 10 else value / 100
    return min(max(value, 0.0), 1.0)


def prompt_text(chat: ChatRequest) -> str:
    """The conversation as plain text (text parts only), for the judge to read."""
    lines = []
    for message in chat.messages:
        content = message.content
        if isinstance(content, list):
            content = "\n".join(getattr(part, "text", "") for part in content)
        if content:
            lines.append(f"{message.role}: {content}")
    return "\n".join(lines)


def _judge_prompt(prompt: str, answer: str) -> str:
    return f"## Request\n{prompt[:_MAX_CHARS]}\n\n## Answer\n{answer[:_MAX_CHARS]}"


def answer_text(response: ChatResponse) -> str:
    message = response.message
    text = message.content or ""
    for call in message.tool_calls or ():
        text += f"\n[tool call] {call.function.name}({call.function.arguments})"
    return text


class Judge:
    """Samples answers of each route and scores them in the background."""

    def __init__(
        self,
        gateway: Gateway,
        monitor: QualityMonitor,
        config: QualityJudgeConfig,
        rng: random.Random | None = None,
    ) -> None:
        self._gateway = gateway
        self._monitor = monitor
        self.config = config
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[float | None]] = set()
        self.skipped = 0  # sampled but dropped because max_concurrent judgments were running

    def offer(self, entry: LedgerEntry, chat: ChatRequest, response: ChatResponse) -> None:
        """The answer sink: maybe schedule a judgment of this answer."""
        if entry.endpoint == "judge" or entry.status != 200 or entry.model is None:
            return
        share = self._monitor.sample_share(entry.route, self.config.sample)
        if share <= 0 or self._rng.random() >= share:
            return
        if len(self._tasks) >= self.config.max_concurrent:
            self.skipped += 1
            return
        task = asyncio.get_running_loop().create_task(
            self.score(entry, prompt_text(chat), answer_text(response))
        )
        # Keep a reference: the loop holds tasks only weakly.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the judgments in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def score(self, judged: LedgerEntry, prompt: str, answer: str) -> float | None:
        """Ask the judge model about one answer, book the call, record the score."""
        assert judged.model is not None
        rubric = self.config.rubric or DEFAULT_RUBRIC
        request = ChatRequest(
            model=self.config.model,
            messages=[
                Message(role="system", content=rubric),
                Message(role="user", content=_judge_prompt(prompt, answer)),
            ],
            temperature=0.0,
            max_tokens=200,
        )
        arrived, started = time.time(), time.perf_counter()
        entry = LedgerEntry(
            request_id=uuid.uuid4().hex,
            ts=arrived,
            key_name=None,
            route="judge",
            strategy="judge",
            reasons=f"judging {judged.request_id} ({judged.route} -> {judged.model})",
            model=None,
            tier=None,
            deployment=None,
            endpoint="judge",
        )
        gateway = self._gateway
        try:
            decision = gateway.router.decide(request)
            completion = await gateway.executor.complete(request, decision, _POLICY)
        except TiergateError as exc:
            entry.status, entry.error = exc.status, f"{type(exc).__name__}: {exc.message}"[:500]
            entry.latency_ms = (time.perf_counter() - started) * 1000
            gateway.book(entry)
            return None
        usage = completion.usage
        entry.model, entry.tier = completion.model.name, completion.model.tier
        entry.deployment = completion.deployment.id
        entry.input_tokens, entry.output_tokens = usage.input_tokens, usage.output_tokens
        entry.cached_tokens = usage.cached_input_tokens
        entry.cost_usd = completion.cost_usd
        entry.latency_ms = (time.perf_counter() - started) * 1000
        entry.upstream_ms = sum(a.latency_ms for a in completion.attempts)
        entry.fallbacks = completion.fallbacks
        score = parse_score(completion.response.message.content)
        if score is None:
            entry.error = "the judge's answer held no score"
        gateway.book(entry)
        if score is None:
            return None
        self._monitor.record(
            judged.route,
            judged.model,
            score,
            source="judge",
            request_id=judged.request_id,
            prompt=prompt,
            response=answer,
            cost_usd=judged.cost_usd,
        )
        return score
