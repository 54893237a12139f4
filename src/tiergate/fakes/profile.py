"""Latency and fault profiles for unscripted answers (demo, soak tests)."""

from __future__ import annotations

import dataclasses
import random
import zlib
from dataclasses import dataclass
from types import MappingProxyType

from tiergate.fakes.answer import Plan
from tiergate.fakes.prompt import Prompt
from tiergate.fakes.script import Fault, Reply, Scripted


@dataclass(frozen=True, slots=True)
class Profile:
    """How an unscripted upstream behaves: latency and a seeded share of faults.

    ``base_latency_ms`` passes before the headers, ``per_token_ms`` per output
    token (between stream chunks, or before a non-streaming body); ``jitter`` varies
    both by up to that fraction. ``fault_rate`` of answers are faults (429, 500,
    overloaded, or a mid-stream error). The same ``seed`` gives the same sequence.
    ``answer_tokens=(low, high)`` gives default answers a length in that range,
    fixed per prompt text (``(0, 0)``: the plain echo).
    """

    base_latency_ms: float = 0.0
    per_token_ms: float = 0.0
    fault_rate: float = 0.0
    seed: int = 0
    jitter: float = 0.25
    answer_tokens: tuple[int, int] = (0, 0)


PROFILES = MappingProxyType(
    {
        "instant": Profile(),
        "demo": Profile(
            base_latency_ms=150, per_token_ms=6, fault_rate=0.04, seed=7, answer_tokens=(40, 400)
        ),
        "soak": Profile(
            base_latency_ms=20, per_token_ms=0.5, fault_rate=0.05, seed=11, answer_tokens=(20, 200)
        ),
    }
)
"""Named profiles for ``python -m tiergate.fakes --profile NAME``."""


class Chaos:
    """Applies a :class:`Profile` with its own seeded random generator."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._rng = random.Random(profile.seed)

    @property
    def active(self) -> bool:
        """Whether the profile changes anything at all."""
        p = self.profile
        return bool(p.base_latency_ms or p.per_token_ms or p.fault_rate or p.answer_tokens[1])

    def default_answer(self, prompt: Prompt) -> Scripted:
        """A plain default reply, or (``fault_rate`` of the time) a fault."""
        p = self.profile
        if not p.fault_rate or self._rng.random() >= p.fault_rate:
            return Reply(length=self._length(prompt))
        overloaded = 529 if prompt.protocol == "anthropic" else 503
        delay = self._scale(p.base_latency_ms) / 1000
        choices: list[Fault] = [
            Fault(status=429, retry_after=1, delay_headers=delay),
            Fault(status=500, delay_headers=delay),
            Fault(status=overloaded, delay_headers=delay),
        ]
        if prompt.stream:
            choices.append(Fault(error_after=3, status=overloaded, delay_headers=delay))
        return self._rng.choice(choices)

    def timed(self, plan: Plan, prompt: Prompt) -> Plan:
        """``plan`` with the profile's latency added."""
        p = self.profile
        headers = self._scale(p.base_latency_ms) / 1000
        per_token = self._scale(p.per_token_ms) / 1000
        if prompt.stream:
            per_chunk = per_token * plan.output_tokens / max(1, len(plan.chunks))
            return dataclasses.replace(plan, delay_headers=headers, chunk_delay=per_chunk)
        return dataclasses.replace(plan, delay_headers=headers + per_token * plan.output_tokens)

    def _length(self, prompt: Prompt) -> int | None:
        low, high = self.profile.answer_tokens
        if high <= 0:
            return None
        # Fixed per prompt text, so a replayed workload costs the same every run.
        return low + zlib.crc32(prompt.last_user_text.encode()) % (high - low + 1)

    def _scale(self, value: float) -> float:
        if not value:
            return 0.0
        jitter = self.profile.jitter
        return value * (1 + self._rng.uniform(-jitter, jitter))
