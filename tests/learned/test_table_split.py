"""Deterministic train / held-out splits of an outcome table."""

from __future__ import annotations

import numpy as np

from tiergate.learned.table import OutcomeTable


def table(prompts: list[str], tasks: list[str | None]) -> OutcomeTable:
    n = len(prompts)
    return OutcomeTable(prompts, tasks, ["a", "b"], np.ones((n, 2)), np.zeros((n, 2)))


def test_split_by_prompt_is_stable_and_independent_of_order():
    prompts = [f"question {i}" for i in range(200)]
    t = table(prompts, [None] * 200)
    train, held = t.split(0.5, seed=3)
    assert (train == ~held).all() and 60 < held.sum() < 140
    rev = table(prompts[::-1], [None] * 200)
    _, held_rev = rev.split(0.5, seed=3)
    assert {p for p, h in zip(prompts, held, strict=True) if h} == {
        p for p, h in zip(prompts[::-1], held_rev, strict=True) if h
    }


def test_split_by_task_keeps_tasks_whole_and_both_sides_filled_for_every_seed():
    tasks = ["math", "law", "code"]
    prompts = [f"{t} {i}" for t in tasks for i in range(5)]
    t = table(prompts, [p.split()[0] for p in prompts])
    for seed in range(40):  # with three tasks, some seeds put them all on one side
        train, held = t.split(0.5, seed=seed, by_task=True)
        assert held.any() and train.any(), seed
        for task in tasks:
            sides = {bool(h) for p, h in zip(prompts, held, strict=True) if p.startswith(task)}
            assert len(sides) == 1, (seed, task)
