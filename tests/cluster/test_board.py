"""The health board's hooks that the shared board uses: transitions are told, adopted
verdicts are not echoed back."""

from __future__ import annotations

from tiergate.execution.health import HealthBoard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opening_and_closing_are_told_once_each() -> None:
    clock = Clock()
    board = HealthBoard(failure_threshold=2, cooldown=10, clock=clock)
    told: list[tuple[str, float, bool]] = []
    board.listeners.append(lambda *event: told.append(event))
    board.failure("d")
    assert told == []
    board.failure("d")
    assert told == [("d", 10, False)]
    clock.now += 11
    assert board.available("d")  # the probe
    board.success("d", 5.0)
    assert told[-1] == ("d", 0.0, False)
    board.success("d", 5.0)  # already closed: nothing new
    assert len(told) == 2
    board.failure("e", dead_credential=True)
    assert told[-1] == ("e", board.dead_credential_cooldown, True)


def test_adopted_verdicts_open_and_close_without_echo() -> None:
    clock = Clock()
    board = HealthBoard(clock=clock)
    told: list[object] = []
    board.listeners.append(lambda *event: told.append(event))
    board.adopt("d", 5.0)
    assert board.cooling("d") and not board.available("d")
    clock.now += 6
    assert not board.cooling("d")
    board.adopt("d", 30.0, dead_credential=True)
    assert board.get("d").dead_credential and board.cooling("d")
    board.adopt("d", 0.0)
    assert board.get("d").state == "closed" and board.available("d")
    assert told == []
