"""Budgets and rate limits in Redis, shared by every gateway instance.

Each check-and-update is one Lua script, which Redis runs atomically: two instances can
never both take the last of a budget or of a minute's allowance. Updates that need no
answer (settling a budget, charging tokens) are sent in the background so that the
response does not wait for them; `close()` waits for them.

Minutes and budget periods are computed from each instance's clock (keep them in sync,
as NTP does); keys carry the key or route name in `{…}` so a Redis Cluster keeps one
tenant's counters in one slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tiergate.auth.budget import NANO, Limit, Reservation, exhausted
from tiergate.auth.keys import KeyInfo
from tiergate.auth.ratelimit import WINDOW, minute, over_rpm, over_tpm

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tiergate.shared")

_RESERVE = """
local amount = tonumber(ARGV[1])
local n = #KEYS
for i, k in ipairs(KEYS) do
  local spent = tonumber(redis.call('HGET', k, 's') or '0')
  local reserved = tonumber(redis.call('HGET', k, 'r') or '0')
  if spent + reserved >= tonumber(ARGV[i + 1]) then return {i, spent} end
end
for i, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'r', amount)
  local ttl = tonumber(ARGV[n + 1 + i])
  if ttl > 0 then redis.call('EXPIRE', k, ttl) end
end
return {0, 0}
"""

_SETTLE = """
for _, k in ipairs(KEYS) do
  redis.call('HINCRBY', k, 'r', -tonumber(ARGV[1]))
  redis.call('HINCRBY', k, 's', tonumber(ARGV[2]))
end
return 0
"""

_ADMIT = """
local into = tonumber(ARGV[4])
local function used(cur, prev)
  local before = tonumber(redis.call('GET', prev) or '0')
  return before * (1 - into) + tonumber(redis.call('GET', cur) or '0')
end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local p = tonumber(ARGV[3])
if rpm >= 0 and used(KEYS[1], KEYS[2]) + 1 > rpm then return 1 end
if tpm >= 0 then
  local u = used(KEYS[3], KEYS[4])
  if u >= tpm or (u > 0 and u + p > tpm) then return 2 end
end
if rpm >= 0 then redis.call('INCR', KEYS[1]); redis.call('EXPIRE', KEYS[1], 150) end
if tpm >= 0 then redis.call('INCRBY', KEYS[3], p); redis.call('EXPIRE', KEYS[3], 150) end
return 0
"""

_TTL = {"day": 3 * 86400, "month": 40 * 86400, "total": 0}


class _Background:
    """Fire-and-forget Redis updates whose failures are logged, and awaited on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def run(self, what: str, call: Awaitable[Any]) -> None:
        async def guarded() -> None:
            try:
                await call
            except Exception as exc:  # Redis down: the counter is off by this one update
                log.warning("redis %s failed: %s", what, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _slot_key(prefix: str, slot: str) -> str:
    scope, name, period = slot.split("\x1f")
    return f"{prefix}budget:{scope}:{{{quote(name, safe='')}}}:{period}"


class RedisBudgets:
    def __init__(self, client: Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._background = _Background()

    async def reserve(self, limits: Sequence[Limit], amount: int, now: float) -> Reservation:
        slots = tuple(limit.slot(now) for limit in limits)
        keys = [_slot_key(self.prefix, s) for s in slots]
        args: list[Any] = [amount]
        args += [round(limit.usd * NANO) for limit in limits]
        args += [_TTL[limit.period] for limit in limits]
        failed, spent = await self._reserve(keys=keys, args=args)
        if int(failed):
            raise exhausted(limits[int(failed) - 1], int(spent))
        return Reservation(slots, amount)

    def settle(self, reservation: Reservation, actual: int) -> None:
        keys = [_slot_key(self.prefix, s) for s in reservation.slots]
        self._background.run(
            "budget settle", self._settle(keys=keys, args=[reservation.amount, actual])
        )

    async def seed(self, spent: dict[str, int]) -> None:
        for slot, amount in spent.items():
            # The first instance to start seeds the counter; later ones find it in place.
            await self.client.hsetnx(_slot_key(self.prefix, slot), "s", amount)

    async def spent(self, limit: Limit, now: float) -> float:
        value = await self.client.hget(_slot_key(self.prefix, limit.slot(now)), "s")
        return int(value or 0) / NANO

    async def close(self) -> None:
        await self._background.drain()


class RedisRateLimits:
    def __init__(self, client: Redis, prefix: str):
        self.client = client
        self.prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._background = _Background()

    def _key(self, name: str, kind: str, m: int) -> str:
        return f"{self.prefix}rl:{{{quote(name, safe='')}}}:{kind}:{m}"

    async def admit(self, key: KeyInfo, prompt_tokens: int, now: float) -> None:
        m = minute(now)
        keys = [
            self._key(key.name, "r", m),
            self._key(key.name, "r", m - 1),
            self._key(key.name, "t", m),
            self._key(key.name, "t", m - 1),
        ]
        args = [
            key.rpm if key.rpm is not None else -1,
            key.tpm if key.tpm is not None else -1,
            prompt_tokens,
            (now % WINDOW) / WINDOW,
        ]
        verdict = int(await self._admit(keys=keys, args=args))
        if verdict == 1:
            raise over_rpm(key, now)
        if verdict == 2:
            raise over_tpm(key, now)

    def charge(self, key: KeyInfo, tokens: int, now: float) -> None:
        if key.tpm is None or not tokens:
            return
        name = self._key(key.name, "t", minute(now))
        pipe = self.client.pipeline(transaction=False)
        pipe.incrby(name, tokens)
        pipe.expire(name, 150)
        self._background.run("token charge", pipe.execute())

    async def close(self) -> None:
        await self._background.drain()
