"""What a gateway instance needs to run as one of many: attached to a `Gateway` at startup.

With `redis:` configured, `ClusterServices.attach`:

- wraps the Redis-backed rate limits, budgets and exact cache so that they fall back to
  local state while Redis is unreachable (`tiergate.cluster.degraded`);
- shares circuit-breaker transitions between instances (`tiergate.cluster.board`);
- shares the semantic cache's entries (`tiergate.cluster.semantic`) and the classifier's
  labels (`tiergate.cluster.labels`);
- reports the link's state in `/health/ready` and as the `tiergate_redis_up` gauge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from tiergate.cache.store import MemoryCache
from tiergate.cluster.board import SharedHealth
from tiergate.cluster.degraded import FailoverBudgets, FailoverCache, FailoverRateLimits
from tiergate.cluster.labels import SharedLabels
from tiergate.cluster.link import RedisLink
from tiergate.cluster.semantic import SharedSemanticIndex

if TYPE_CHECKING:
    from prometheus_client import Metric

    from tiergate.gateway import Gateway

# Without these a Redis that stops answering (rather than refusing) would hold requests
# for the OS's TCP timeout; one second is far above a healthy Redis round trip.
_SOCKET_TIMEOUT = 1.0


class ClusterServices:
    def __init__(
        self, link: RedisLink, health: SharedHealth, semantic: SharedSemanticIndex
    ) -> None:
        self.link = link
        self.health = health
        self.semantic = semantic

    @classmethod
    def attach(cls, gateway: Gateway) -> ClusterServices | None:
        """Wire the shared-state pieces into a freshly built gateway (None without Redis)."""
        config = gateway.config.redis
        client = gateway.tenants.redis
        if config is None or client is None:
            return None
        from redis.asyncio import Redis

        kwargs = client.connection_pool.connection_kwargs
        kwargs.setdefault("socket_timeout", _SOCKET_TIMEOUT)
        kwargs.setdefault("socket_connect_timeout", _SOCKET_TIMEOUT)
        link = RedisLink(client)
        tenancy = gateway.tenants.tenancy
        tenancy.budgets = FailoverBudgets(tenancy.budgets, link)
        tenancy.limits = FailoverRateLimits(tenancy.limits, link)
        cache = gateway.tenants.cache
        if not isinstance(cache.backend, MemoryCache):
            cache.backend = FailoverCache(cache.backend, link, MemoryCache())
        # Blocking reads (XREAD BLOCK 1 s) need a longer socket timeout than requests do.
        tail = Redis.from_url(
            config.url, socket_timeout=_SOCKET_TIMEOUT + 2, socket_connect_timeout=_SOCKET_TIMEOUT
        )
        health = SharedHealth(gateway.health, client, tail, config.prefix, link)
        semantic = SharedSemanticIndex(client, tail, config.prefix, link)
        cache.semantic = semantic
        for route in gateway.routes.values():
            if route.classifier is not None:
                route.classifier.cache.shared = SharedLabels(client, config.prefix, link)
        services = cls(link, health, semantic)
        obs = gateway.observability
        if obs is not None and obs.metrics is not None:
            obs.metrics.extra_collectors.append(services.collect)
        return services

    async def start(self) -> None:
        await self.link.start()
        await self.health.start()
        await self.semantic.start()

    async def close(self) -> None:
        await self.semantic.close()
        await self.health.close()
        await self.link.close()
        await self.health.tail.aclose()

    def describe(self) -> dict[str, object]:
        """For `/health/ready`: the Redis link, and whether state is shared right now."""
        return {
            "redis": self.link.describe(),
            "shared_state": "shared" if self.link.up else "degraded: local limits and cache",
            "circuits_published": self.health.published,
            "circuits_adopted": self.health.adopted,
        }

    def collect(self) -> Iterable[Metric]:
        """Gauges read at scrape time."""
        return _gauges(self.link)


def _gauges(link: RedisLink) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    yield GaugeMetricFamily(
        "tiergate_redis_up",
        "1 while shared state (limits, budgets, cache, circuits) is in Redis; 0 when degraded.",
        value=1.0 if link.up else 0.0,
    )
    yield CounterMetricFamily(
        "tiergate_redis_outages", "Times this instance lost Redis.", value=float(link.outages)
    )
