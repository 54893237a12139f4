"""Simulated models for ``tiergate eval --fake``: an eval run with no network and no keys.

A `Responder` for `FakeUpstream.respond_with`. Each case gets a fixed difficulty in 0..1
(from a hash of its prompt) and each upstream model a skill (from its tier: the higher,
the more skilled); a model answers a case well when its skill exceeds the difficulty, so
stronger tiers answer a superset of what weaker ones do, as in real evals. A good answer
is the case's ``reference``, else what its exact/contains grader expects; a poor one is a
hedge. Judge calls (recognised by :data:`JUDGE_MARKER`) score an answer high when it
contains the reference. A small seeded share of calls fail with 503, so that retries show.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Mapping, Sequence

import orjson

from tiergate.evals.judge import JUDGE_MARKER
from tiergate.evals.suite import Contains, Exact, SuiteCase
from tiergate.fakes import Fault, Prompt, Reply, Scripted
from tiergate.fleet import Fleet

__all__ = ["SimulatedModels", "skills_by_tier"]

POOR_ANSWER = "I'm not sure; it could be several things."
_REFERENCE = re.compile(r"## Reference answer\n(.*?)\n\n## Answer\n", re.DOTALL)
_ANSWER = re.compile(r"## Answer\n(.*)\Z", re.DOTALL)


def skills_by_tier(fleet: Fleet, models: Sequence[str]) -> dict[str, float]:
    """Upstream model id -> skill: 0.55 for the lowest tier up to 0.97 for the highest."""
    top = max(len(fleet.tiers) - 1, 1)
    skills: dict[str, float] = {}
    for name in models:
        model = fleet.models[name]
        skill = 0.55 + 0.42 * fleet.tier_rank(model.tier) / top
        for deployment in model.deployments:
            skills[deployment.upstream_model] = skill
    return skills


def _good_answer(case: SuiteCase) -> str | None:
    if case.reference is not None:
        return case.reference
    if isinstance(case.grader, Exact):
        return case.grader.expected[0]
    if isinstance(case.grader, Contains):
        return ", ".join(case.grader.expected)
    return None


def _last_user_text(case: SuiteCase) -> str:
    if case.prompt is not None:
        return case.prompt
    for message in reversed(case.messages or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _difficulty(text: str) -> float:
    return (zlib.crc32(text.encode()) % 10_000) / 10_000


class SimulatedModels:
    """Answers eval cases (and judge calls) as models of different skill would."""

    def __init__(
        self,
        cases: Sequence[SuiteCase],
        skills: Mapping[str, float],
        *,
        fault_rate: float = 0.03,
        seed: int = 7,
        latency_s: float = 0.02,
    ) -> None:
        self._cases = {_last_user_text(c): c for c in cases}
        self._skills = dict(skills)
        self._fault_rate = fault_rate
        self._rng = random.Random(seed)
        self._latency_s = latency_s

    def __call__(self, prompt: Prompt) -> Scripted | None:
        skill = self._skills.get(prompt.model, 0.5)
        delay = self._latency_s * (1 + 2 * skill)  # stronger models are slower
        if self._rng.random() < self._fault_rate:
            return Fault(status=503, delay_headers=delay)
        if self._is_judge(prompt):
            return Reply(text=self._judge(prompt.last_user_text), delay_headers=delay)
        case = self._cases.get(prompt.last_user_text)
        if case is None:
            return None  # not a suite prompt: the fake's default echo
        good = _good_answer(case)
        answered_well = good is not None and _difficulty(case.text) < skill
        text = good if answered_well and good is not None else POOR_ANSWER
        return Reply(text=text, delay_headers=delay)

    @staticmethod
    def _is_judge(prompt: Prompt) -> bool:
        # The marker opens the judge's system prompt, wherever each protocol puts it.
        return JUDGE_MARKER.encode() in orjson.dumps(prompt.body)

    @staticmethod
    def _judge(text: str) -> str:
        reference = _REFERENCE.search(text)
        answer = _ANSWER.search(text)
        got = answer.group(1).strip().casefold() if answer else ""
        if reference is not None:
            good = reference.group(1).strip().casefold() in got
        else:
            good = bool(got) and got != POOR_ANSWER.casefold()
        score, reason = (0.95, "meets the rubric") if good else (0.2, "misses the point")
        return orjson.dumps({"score": score, "reason": reason}).decode()
