"""Budgets per key and per route: reserve the most a request can cost, settle the real cost.

Admission rule: a request is let in while its limits have money left
(`spent + reserved < limit`), and reserves its maximum cost at once. Concurrent requests
see each other's reservations, so when the money runs out at most one admitted request
can overspend, by at most its own maximum cost. A request whose maximum cost alone
exceeds what is left still runs when it is the only one in flight: refusing it would
strand the last cents of every budget.

Amounts are integer nano-dollars so that the in-process and Redis books add up exactly.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tiergate.errors import BudgetExceeded

NANO = 1_000_000_000


def to_nano(usd: float) -> int:
    return round(usd * NANO)


def period_start(period: str | None, now: float) -> float:
    """Start (UTC, unix seconds) of the budget period that contains `now`."""
    t = time.gmtime(now)
    if period == "day":
        return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0)))
    if period in (None, "month"):
        return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))
    return 0.0  # "total"


def period_id(period: str | None, now: float) -> str:
    t = time.gmtime(now)
    if period == "day":
        return f"d{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"
    if period in (None, "month"):
        return f"m{t.tm_year:04d}{t.tm_mon:02d}"
    return "total"


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget a request is charged to."""

    scope: str  # "key" or "route"
    name: str
    usd: float
    period: str = "month"

    def slot(self, now: float) -> str:
        """The counter's identity for the current period."""
        return f"{self.scope}\x1f{self.name}\x1f{period_id(self.period, now)}"

    def describe(self) -> str:
        per = "in total" if self.period == "total" else f"per {self.period}"
        return f"{self.scope} {self.name!r} has a budget of ${self.usd:.2f} {per}"


@dataclass(slots=True)
class Reservation:
    """What one request holds against its limits until it settles."""

    slots: tuple[str, ...]
    amount: int  # nano-dollars
    created: float = field(default_factory=time.monotonic)


class BudgetBackend(Protocol):
    async def reserve(self, limits: Sequence[Limit], amount: int, now: float) -> Reservation:
        """Raises `BudgetExceeded` when any limit has nothing left."""
        ...

    def settle(self, reservation: Reservation, actual: int) -> None:
        """Release the reservation and book the real cost (never blocks)."""
        ...

    async def seed(self, spent: dict[str, int]) -> None:
        """Spend already in the ledger for the current periods, by slot (at startup)."""
        ...

    async def spent(self, limit: Limit, now: float) -> float:
        """USD spent so far in the current period (as far as this process knows)."""
        ...

    async def close(self) -> None: ...


def exhausted(limit: Limit, spent: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"budget exhausted: {limit.describe()} and has spent ${spent / NANO:.6f}; "
        "no request is sent until the period resets or the budget is raised"
    )


class MemoryBudgets:
    """Budget counters in this process. Check and reserve happen without an await in
    between, so on one event loop they are atomic."""

    def __init__(self) -> None:
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}

    async def reserve(self, limits: Sequence[Limit], amount: int, now: float) -> Reservation:
        slots = tuple(limit.slot(now) for limit in limits)
        for limit, slot in zip(limits, slots, strict=True):
            spent = self._spent.get(slot, 0)
            if spent + self._reserved.get(slot, 0) >= to_nano(limit.usd):
                raise exhausted(limit, spent)
        for slot in slots:
            self._reserved[slot] = self._reserved.get(slot, 0) + amount
        return Reservation(slots, amount)

    def settle(self, reservation: Reservation, actual: int) -> None:
        for slot in reservation.slots:
            self._reserved[slot] = self._reserved.get(slot, 0) - reservation.amount
            self._spent[slot] = self._spent.get(slot, 0) + actual

    async def seed(self, spent: dict[str, int]) -> None:
        for slot, amount in spent.items():
            self._spent[slot] = max(self._spent.get(slot, 0), amount)

    async def spent(self, limit: Limit, now: float) -> float:
        return self._spent.get(limit.slot(now), 0) / NANO

    async def close(self) -> None:
        return None
