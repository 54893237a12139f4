"""Shared-state backends that keep serving from local state while Redis is unreachable.

Each wrapper holds the Redis backend and an in-process stand-in. While the `RedisLink` is
up, calls go to Redis; the first Redis error marks the link down and that call (and every
one after it) is served locally, without touching Redis, until the link's watcher sees
Redis answer again. What that means for each kind of state:

- Rate limits: each instance counts on its own, so the cluster admits up to N times the
  limit (N instances) during an outage. Counts restart from Redis's when it returns.
- Budgets: each instance reserves against its own book, which only knows its own spend
  since the outage began; a reservation is always settled where it was made.
- Exact cache: a local LRU; entries written during the outage stay local.
"""

from __future__ import annotations

from collections.abc import Sequence

from tiergate.auth.budget import BudgetBackend, Limit, MemoryBudgets, Reservation
from tiergate.auth.keys import KeyInfo
from tiergate.auth.ratelimit import MemoryRateLimits, RateLimitBackend
from tiergate.cache.store import CacheBackend, MemoryCache
from tiergate.cluster.link import RedisLink, redis_errors


class _LocalReservation(Reservation):
    """A reservation made in this process's book while Redis was away."""

    __slots__ = ()


class FailoverBudgets:
    def __init__(self, shared: BudgetBackend, link: RedisLink, local: MemoryBudgets | None = None):
        self.shared = shared
        self.local = local or MemoryBudgets()
        self.link = link

    async def reserve(self, limits: Sequence[Limit], amount: int, now: float) -> Reservation:
        if self.link.up:
            try:
                return await self.shared.reserve(limits, amount, now)
            except redis_errors() as exc:
                self.link.lost(exc)
        made = await self.local.reserve(limits, amount, now)
        return _LocalReservation(made.slots, made.amount, made.created)

    def settle(self, reservation: Reservation, actual: int) -> None:
        if isinstance(reservation, _LocalReservation):
            self.local.settle(reservation, actual)
        else:  # runs in the background; a failure there is logged by the Redis backend
            self.shared.settle(reservation, actual)

    async def seed(self, spent: dict[str, int]) -> None:
        await self.local.seed(spent)
        try:
            await self.shared.seed(spent)
        except redis_errors() as exc:
            self.link.lost(exc)

    async def spent(self, limit: Limit, now: float) -> float:
        if self.link.up:
            try:
                return await self.shared.spent(limit, now)
            except redis_errors() as exc:
                self.link.lost(exc)
        return await self.local.spent(limit, now)

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()


class FailoverRateLimits:
    def __init__(
        self, shared: RateLimitBackend, link: RedisLink, local: MemoryRateLimits | None = None
    ):
        self.shared = shared
        self.local = local or MemoryRateLimits()
        self.link = link

    async def admit(self, key: KeyInfo, prompt_tokens: int, now: float) -> None:
        if self.link.up:
            try:
                await self.shared.admit(key, prompt_tokens, now)
                return
            except redis_errors() as exc:
                self.link.lost(exc)
        await self.local.admit(key, prompt_tokens, now)

    def charge(self, key: KeyInfo, tokens: int, now: float) -> None:
        (self.shared if self.link.up else self.local).charge(key, tokens, now)

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()


class FailoverCache:
    def __init__(self, shared: CacheBackend, link: RedisLink, local: MemoryCache | None = None):
        self.shared = shared
        self.local = local or MemoryCache()
        self.link = link

    async def get(self, key: str) -> bytes | None:
        if self.link.up:
            try:
                return await self.shared.get(key)
            except redis_errors() as exc:
                self.link.lost(exc)
        return await self.local.get(key)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        if self.link.up:
            try:
                await self.shared.put(key, value, ttl)
                return
            except redis_errors() as exc:
                self.link.lost(exc)
        await self.local.put(key, value, ttl)

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()
