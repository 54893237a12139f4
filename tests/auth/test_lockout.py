"""The lockout of addresses that guess a secret wrong too often, on a clock the test moves."""

from tiergate.auth.keys import same_secret
from tiergate.auth.lockout import Lockout


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lockout(clock: Clock, max_addresses: int = 10_000) -> Lockout:
    return Lockout(
        max_failures=3, window=60, duration=300, max_addresses=max_addresses, clock=clock
    )


def test_the_last_allowed_failure_starts_the_lockout_once():
    clock = Clock()
    guard = lockout(clock)
    assert [guard.failed("a") for _ in range(3)] == [False, False, True]
    assert guard.locked_for("a") == 300
    clock.now += 100
    assert guard.locked_for("a") == 200
    assert guard.failed("a") is False  # already locked: no second start
    assert guard.locked_for("a") == 200  # and no extension


def test_the_lockout_ends_with_a_clean_slate():
    clock = Clock()
    guard = lockout(clock)
    for _ in range(3):
        guard.failed("a")
    clock.now += 300
    assert guard.locked_for("a") == 0.0
    assert [guard.failed("a") for _ in range(3)] == [False, False, True]


def test_failures_spread_wider_than_the_window_do_not_lock():
    clock = Clock()
    guard = lockout(clock)
    guard.failed("a")
    guard.failed("a")
    clock.now += 60  # the window that opened at the first failure has closed
    assert guard.failed("a") is False
    assert guard.locked_for("a") == 0.0


def test_a_right_secret_forgets_the_failures():
    clock = Clock()
    guard = lockout(clock)
    guard.failed("a")
    guard.failed("a")
    guard.succeeded("a")
    assert [guard.failed("a") for _ in range(3)] == [False, False, True]


def test_addresses_are_counted_apart():
    guard = lockout(Clock())
    for _ in range(3):
        guard.failed("a")
    assert guard.locked_for("a") > 0
    assert guard.locked_for("b") == 0.0
    assert guard.failed("b") is False


def test_memory_is_capped_by_dropping_the_least_recently_seen_address():
    guard = lockout(Clock(), max_addresses=100)
    for i in range(1000):
        guard.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(guard) == 100
    guard.failed("10.0.3.132")  # the oldest of those kept, seen again: now the newest
    guard.failed("fresh")
    assert len(guard) == 100
    assert guard.failed("10.0.3.132") is True  # its count survived: three failures
    assert guard.locked_for("10.0.3.133") == 0.0 and len(guard) == 100


def test_same_secret():
    assert same_secret("s3cret", "s3cret")
    assert not same_secret("s3cre", "s3cret")
    assert not same_secret("", "s3cret")
