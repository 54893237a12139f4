from tiergate.execution.health import HealthBoard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_and_lets_one_probe_in_after_cooldown():
    clock = Clock()
    board = HealthBoard(failure_threshold=2, cooldown=10, clock=clock)
    board.failure("d")
    assert board.available("d")
    board.failure("d")
    assert not board.available("d") and board.cooling("d")
    clock.now += 10.5
    assert board.available("d")  # the probe
    assert not board.available("d")  # only one probe at a time
    board.success("d", 12.0)
    assert board.available("d") and board.get("d").state == "closed"


def test_failed_probe_reopens():
    clock = Clock()
    board = HealthBoard(failure_threshold=1, cooldown=5, clock=clock)
    board.failure("d")
    clock.now += 6
    assert board.available("d")
    board.failure("d")
    assert not board.available("d")


def test_dead_credential_stays_out_long():
    clock = Clock()
    board = HealthBoard(failure_threshold=3, cooldown=10, clock=clock)
    board.failure("d", dead_credential=True)
    clock.now += 60
    assert not board.available("d")
    assert board.get("d").dead_credential


def test_latency_ewma():
    board = HealthBoard()
    board.success("d", 100)
    board.success("d", 200)
    assert board.get("d").latency_ewma_ms == 120
