"""Small synthetic outcome sets where the best model depends on the prompt's words."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tiergate.outcomes import OutcomeRecord, write_outcomes

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routing"

TOPICS = {
    "code": "write a python function that parses the json list and returns the sorted keys",
    "math": "compute the integral of the polynomial and solve the equation for x",
    "chat": "say hello to my friend and tell a short joke about the weather",
}
# Probability that each model answers a topic well: "big" is good at everything,
# "coder" only at code, "small" only at chat.
SKILL = {
    "big": {"code": 0.95, "math": 0.9, "chat": 0.95},
    "coder": {"code": 0.9, "math": 0.3, "chat": 0.6},
    "small": {"code": 0.2, "math": 0.1, "chat": 0.9},
}
PRICE = {"big": 10.0, "coder": 2.0, "small": 0.5}


def synthetic_records(
    n: int = 240, seed: int = 1, models: tuple[str, ...] = ("big", "coder", "small")
) -> list[OutcomeRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        words = TOPICS[topic].split()
        rng.shuffle(words)
        prompt = f"{' '.join(words)} case {i}"
        for model in models:
            score = 1.0 if rng.random() < SKILL[model][topic] else 0.0
            records.append(
                OutcomeRecord(
                    prompt=prompt,
                    model=model,
                    score=score,
                    task=topic,
                    cost_usd=PRICE[model] * (1 + 0.1 * rng.random()),
                )
            )
    return records


@pytest.fixture
def synthetic_file(tmp_path: Path) -> Path:
    path = tmp_path / "outcomes.jsonl"
    write_outcomes(path, synthetic_records())
    return path
