"""Everything per-tenant the request path needs, behind one object on the `Gateway`:
keys kept in step with the store, admission (allow-lists, rate limits, budgets) and the
response cache. Built from the config by `Tenants.from_config`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tiergate.auth.budget import BudgetBackend, MemoryBudgets, to_nano
from tiergate.auth.keys import KeyInfo, KeyRing
from tiergate.auth.ratelimit import MemoryRateLimits, RateLimitBackend
from tiergate.auth.sync import KeySync
from tiergate.auth.tenancy import Tenancy
from tiergate.cache.service import Lookup, ResponseCache
from tiergate.cache.store import CacheBackend, MemoryCache, RedisCache
from tiergate.chat import ChatRequest, ChatResponse
from tiergate.config.schema import Config
from tiergate.ledger import LedgerEntry
from tiergate.routing.decision import Decision
from tiergate.store.db import DatabaseURL

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tiergate.tenants")


class Tenants:
    def __init__(
        self,
        tenancy: Tenancy,
        cache: ResponseCache,
        *,
        key_sync: KeySync | None = None,
        ledger_url: DatabaseURL | None = None,
        redis: Redis | None = None,
    ):
        self.tenancy = tenancy
        self.cache = cache
        self.key_sync = key_sync
        self.ledger_url = ledger_url
        self.redis = redis
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    def memory(cls) -> Tenants:
        """No budgets, limits or database; an in-process cache with default policies."""
        return cls(Tenancy(MemoryBudgets(), MemoryRateLimits()), ResponseCache(MemoryCache(), {}))

    @classmethod
    def from_config(cls, config: Config, ring: KeyRing, *, database: bool = True) -> Tenants:
        """`database=False` (a ledger object was passed in: tests, demo) keeps keys and
        budgets in memory unless `store.url` names a database explicitly."""
        from tiergate.store.db import DatabaseURL
        from tiergate.store.keys import KeyStore

        prefix = config.ledger.table_prefix
        ledger_url = None
        if database and not config.ledger.url.startswith("memory://"):
            ledger_url = DatabaseURL.parse(config.ledger.url, prefix)
        store_url = config.store.url or (ledger_url.describe() if ledger_url else None)
        key_sync = None
        if config.store.url or ledger_url is not None:
            url = DatabaseURL.parse(config.store.url, prefix) if config.store.url else ledger_url
            assert url is not None and store_url is not None
            key_sync = KeySync(KeyStore(url), ring, config.store.refresh_interval)
        redis = None
        budgets: BudgetBackend = MemoryBudgets()
        limits: RateLimitBackend = MemoryRateLimits()
        backend: CacheBackend = MemoryCache(config.cache.max_entries)
        if config.redis is not None:
            from redis.asyncio import Redis

            from tiergate.auth.shared import RedisBudgets, RedisRateLimits

            redis = Redis.from_url(config.redis.url)
            budgets = RedisBudgets(redis, config.redis.prefix)
            limits = RedisRateLimits(redis, config.redis.prefix)
            if config.cache.backend != "memory":
                backend = RedisCache(redis, config.redis.prefix)
        route_budgets = {n: r.budget for n, r in config.routes.items() if r.budget is not None}
        tenancy = Tenancy(budgets, limits, route_budgets)
        policies = {name: r.cache for name, r in config.routes.items()}
        return cls(
            tenancy,
            ResponseCache(backend, policies),
            key_sync=key_sync,
            ledger_url=ledger_url,
            redis=redis,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, ring: KeyRing) -> None:
        if self.key_sync is not None:
            await self.key_sync.start()
        if self.ledger_url is not None:
            await self._seed_budgets(ring)

    async def _seed_budgets(self, ring: KeyRing) -> None:
        """Spend the ledger already holds for the current periods (restarts keep budgets)."""
        from tiergate.ledger.query import LedgerReader

        now = time.time()
        slots = self.tenancy.budget_slots(ring, now)
        if not slots:
            return
        url = self.ledger_url
        assert url is not None

        def read() -> dict[str, int]:
            reader = LedgerReader(url)
            try:
                return {
                    limit.slot(now): to_nano(reader.spend_since(limit.scope, limit.name, start))
                    for limit, start in slots
                }
            finally:
                reader.close()

        await self.tenancy.budgets.seed(await asyncio.to_thread(read))

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self.key_sync is not None:
            await self.key_sync.close()
        await self.tenancy.close()
        await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()

    # -- the request path --------------------------------------------------------------------

    async def admit(self, request_id: str, key: KeyInfo | None, decision: Decision) -> Decision:
        """Allow-lists (403) and rate limits (429)."""
        return await self.tenancy.admit(request_id, key, decision)

    async def precheck(self, request_id: str, key: KeyInfo | None, decision: Decision) -> None:
        """Route allow-list (403), rate limits and spent budgets (429), before the
        classifier's call."""
        await self.tenancy.precheck(request_id, key, decision)

    async def lookup(
        self, key: KeyInfo | None, chat: ChatRequest, decision: Decision, *, bypass: bool
    ) -> Lookup:
        return await self.cache.lookup(key.name if key else None, chat, decision, bypass=bypass)

    async def reserve(
        self,
        request_id: str,
        key: KeyInfo | None,
        decision: Decision,
        bound_usd: Callable[[], float],
    ) -> None:
        """Budgets (429 when spent); call only when an upstream will be called."""
        await self.tenancy.reserve(request_id, key, decision, bound_usd)

    def settle(self, entry: LedgerEntry) -> None:
        self.tenancy.settle(entry)

    def remember(
        self,
        lookup: Lookup,
        request_id: str,
        response: ChatResponse,
        *,
        model: str,
        tier: str,
        deployment: str,
        cost_usd: float,
    ) -> None:
        """Cache a complete answer after a miss, in the background."""
        if lookup.status != "miss" or lookup.key is None:
            return
        call = self.cache.remember(
            lookup,
            request_id,
            response,
            model=model,
            tier=tier,
            deployment=deployment,
            cost_usd=cost_usd,
        )
        task = asyncio.get_running_loop().create_task(self._guard(call))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _guard(call: Any) -> None:
        try:
            await call
        except Exception as exc:  # a cache that cannot store only costs future hits
            log.warning("storing an answer in the cache failed: %s", exc)
