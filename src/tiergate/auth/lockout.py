"""Stopping a guesser: after too many wrong secrets from one address, that address is
locked out for a while, and its attempts are refused without looking at the secret.

Used for the operator's secrets (the admin key, the metrics token). In-process and
per worker: nothing is shared between gateway instances. Not thread-safe; the event loop
is its only caller.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_FAILURES = 10  # wrong secrets from one address ...
FAILURE_WINDOW_S = 60.0  # ... within this many seconds of the first one ...
LOCKOUT_S = 300.0  # ... lock the address out for this long
MAX_ADDRESSES = 10_000  # addresses tracked at once; the least recently seen is dropped


class _Record:
    __slots__ = ("failures", "locked_until", "since")

    def __init__(self, since: float):
        self.failures = 0
        self.since = since
        self.locked_until = 0.0


class Lockout:
    """Failures per client address, within a fixed window that opens at the first one."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW_S,
        duration: float = LOCKOUT_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_failures = max_failures
        self.window = window
        self.duration = duration
        self.max_addresses = max_addresses
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def locked_for(self, address: str) -> float:
        """Seconds left of this address's lockout; 0.0 when it is not locked out."""
        record = self._records.get(address)
        if record is None or not record.locked_until:
            return 0.0
        left = record.locked_until - self._clock()
        if left <= 0:
            del self._records[address]  # served its time: starts again with a clean slate
            return 0.0
        return left

    def failed(self, address: str) -> bool:
        """Count one wrong secret; True when this one starts a lockout."""
        now = self._clock()
        record = self._records.get(address)
        if record is None or (not record.locked_until and now - record.since >= self.window):
            record = self._records[address] = _Record(since=now)
        self._records.move_to_end(address)
        while len(self._records) > self.max_addresses:
            self._records.popitem(last=False)
        if record.locked_until:
            return False
        record.failures += 1
        if record.failures < self.max_failures:
            return False
        record.locked_until = now + self.duration
        return True

    def succeeded(self, address: str) -> None:
        """A right secret: forget this address's failures."""
        self._records.pop(address, None)
