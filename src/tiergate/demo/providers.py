"""The demo's simulated providers: one fake upstream speaking all three wire protocols,
with per-tier latency, answer lengths from the workload, and a seeded share of faults."""

from __future__ import annotations

import random

import orjson

from tiergate.execution.classifier import PROMPT as CLASSIFIER_PROMPT
from tiergate.fakes import Fault, Prompt, Reply, Scripted

# (seconds before the first byte, seconds per output token) by upstream model family
_SPEED = {
    "budget": (0.10, 0.002),
    "standard": (0.20, 0.004),
    "premium": (0.35, 0.008),
}
_WORDS = tuple(
    [
        "the",
        "answer",
        "considers",
        "each",
        "point",
        "in",
        "turn",
        "and",
        "explains",
        "the",
        "reasoning",
        "with",
        "a",
        "short",
        "example",
        "before",
        "it",
        "moves",
        "on",
        "to",
        "the",
        "next",
        "part",
        "of",
        "the",
        "question",
    ]
)


class SimulatedProviders:
    """A `Responder` for `FakeUpstream.respond_with`: realistic, reproducible behaviour."""

    def __init__(
        self,
        answer_tokens: dict[str, int],
        tiers: dict[str, str],
        fault_rate: float = 0.06,
        hedge_prompts: frozenset[str] = frozenset(),
        hedge_rate: float = 0.12,
        labels: dict[str, str] | None = None,
        hard_prompts: frozenset[str] = frozenset(),
    ):
        self._tokens = answer_tokens  # last user text -> answer length in tokens
        self._tiers = tiers  # upstream model id -> tier
        self._fault_rate = fault_rate
        # Budget models hedge on a share of these prompts, so the cascade has work to do.
        self._hedge_prompts = hedge_prompts
        self._hedge_rate = hedge_rate
        # What the classifier model answers for each prompt it is asked to label.
        self._labels = labels or {}
        # Budget models always hedge on these (a speculative route then serves premium).
        self._hard_prompts = hard_prompts
        self._rng = random.Random(7)
        self._hedge_rng = random.Random(11)  # its own stream: faults stay as they were

    def __call__(self, prompt: Prompt) -> Scripted | None:
        tokens = self._tokens.get(prompt.last_user_text, 60)
        if prompt.max_tokens is not None:
            tokens = min(tokens, prompt.max_tokens)
        first_byte, per_token = _SPEED.get(self._tiers.get(prompt.model, "standard"), (0.2, 0.004))
        first_byte *= 0.75 + self._rng.random() / 2
        if self._rng.random() < self._fault_rate:
            overloaded = 529 if prompt.protocol == "anthropic" else 503
            status = self._rng.choice((429, 500, overloaded))
            return Fault(status=status, retry_after=0.2 if status == 429 else None)
        label = self._labels.get(prompt.last_user_text)
        if label is not None and _is_classifier_call(prompt):
            return Reply(text=label, output_tokens=1, delay_headers=first_byte)
        text = None if prompt.json_mode else _text(tokens)
        tier = self._tiers.get(prompt.model)
        if tier == "budget" and (
            prompt.last_user_text in self._hard_prompts
            or (
                prompt.last_user_text in self._hedge_prompts
                and self._hedge_rng.random() < self._hedge_rate
            )
        ):
            text, tokens = "I'm not sure, sorry.", 6
        if prompt.stream:
            chunks = max(1, tokens // 6)
            return Reply(
                text=text,
                output_tokens=tokens,
                stream_chunks=chunks,
                delay_headers=first_byte,
                chunk_delay=per_token * tokens / chunks,
            )
        return Reply(text=text, output_tokens=tokens, delay_headers=first_byte + per_token * tokens)


_CLASSIFIER_MARK = orjson.dumps(CLASSIFIER_PROMPT.splitlines()[0]).strip(b'"')


def _is_classifier_call(prompt: Prompt) -> bool:
    """The gateway's classifier asking for a label (its instructions are in the body)."""
    return _CLASSIFIER_MARK in orjson.dumps(prompt.body)


def _text(tokens: int) -> str:
    words = [_WORDS[i % len(_WORDS)] for i in range(max(1, int(tokens * 0.75)))]
    return " ".join(words).capitalize() + "."
