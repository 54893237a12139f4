"""Budgets and rate limits, in process and in the real Redis shared by two "instances"."""

import asyncio

import pytest
from redis.asyncio import Redis

from tiergate.auth.budget import NANO, Limit, MemoryBudgets, period_id, period_start, to_nano
from tiergate.auth.keys import KeyInfo
from tiergate.auth.ratelimit import MemoryRateLimits
from tiergate.auth.shared import RedisBudgets, RedisRateLimits
from tiergate.errors import BudgetExceeded, RateLimited
from tiergate.store.testing import REDIS_URL

NOW = 1_790_000_000.0  # 2026-09-21


def test_periods():
    assert period_id("day", NOW) == "d20260921"
    assert period_id("month", NOW) == "m202609"
    assert period_id("total", NOW) == "total"
    assert period_start("month", NOW) == 1788220800.0  # 2026-09-01 00:00 UTC
    assert period_start("total", NOW) == 0.0


async def _race(backends, limit: Limit, max_cost: int, real_cost: int, n: int = 50) -> int:
    """n concurrent requests spread over the backends; returns the total spent."""
    spent = 0

    async def one(i: int) -> None:
        nonlocal spent
        backend = backends[i % len(backends)]
        try:
            reservation = await backend.reserve([limit], max_cost, NOW)
        except BudgetExceeded:
            return
        await asyncio.sleep(0.01)  # the upstream call
        spent += real_cost
        backend.settle(reservation, real_cost)

    await asyncio.gather(*(one(i) for i in range(n)))
    return spent


async def test_memory_budget_overspends_by_at_most_one_request():
    limit = Limit("key", "k", 0.01, "total")
    book = MemoryBudgets()
    spent = await _race([book], limit, max_cost=to_nano(0.003), real_cost=to_nano(0.003))
    assert to_nano(0.01) <= spent <= to_nano(0.01) + to_nano(0.003)
    with pytest.raises(BudgetExceeded, match="budget exhausted"):
        await book.reserve([limit], 1, NOW)


async def test_redis_budget_shared_by_two_instances(redis_prefix):
    limit = Limit("key", "team a:{x}", 0.01, "day")
    clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
    books = [RedisBudgets(c, redis_prefix) for c in clients]
    try:
        await books[0].seed({limit.slot(NOW): to_nano(0.004)})
        await books[1].seed({limit.slot(NOW): to_nano(999)})  # the first seed wins
        spent = await _race(books, limit, max_cost=to_nano(0.002), real_cost=to_nano(0.001))
        for b in books:
            await b.close()  # settles are sent in the background
        total = await books[0].spent(limit, NOW)
        assert total == pytest.approx((to_nano(0.004) + spent) / NANO)
        # in flight, reservations at the maximum cost held the others back
        assert spent < to_nano(0.006)
        # one by one, requests run until the money is gone, then are refused
        while True:
            try:
                r = await books[1].reserve([limit], to_nano(0.002), NOW)
            except BudgetExceeded:
                break
            books[1].settle(r, to_nano(0.001))
            await books[1].close()
        total = await books[0].spent(limit, NOW)
        assert 0.01 <= total <= 0.01 + 0.002
    finally:
        for c in clients:
            await c.aclose()


KEY = KeyInfo("k", "h", rpm=5, tpm=1000)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_rate_limits(backend, redis_prefix):
    clients: list[Redis] = []
    if backend == "memory":
        limiters = [MemoryRateLimits()]
    else:
        clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
        limiters = [RedisRateLimits(c, redis_prefix) for c in clients]
    try:
        t = 1_790_000_010.0
        for i in range(5):
            await limiters[i % len(limiters)].admit(KEY, 10, t)
        with pytest.raises(RateLimited, match="5 requests per minute") as err:
            await limiters[-1].admit(KEY, 10, t)
        assert 0 < err.value.retry_after <= 60
        # two minutes later the window is empty again
        await limiters[0].admit(KEY, 10, t + 120)
        limiters[0].charge(KEY, 995, t + 120)
        await asyncio.sleep(0.05)
        with pytest.raises(RateLimited, match="tokens per minute"):
            await limiters[-1].admit(KEY, 10, t + 121)
    finally:
        for limiter in limiters:
            await limiter.close()
        for c in clients:
            await c.aclose()
