"""The gateway's parts, created once at startup and passed to the HTTP layer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from tiergate.auth.keys import KeyRing, key_from_config
from tiergate.auth.tenants import Tenants
from tiergate.background import stop_task
from tiergate.chat import ChatRequest, ChatResponse
from tiergate.cluster.services import ClusterServices
from tiergate.config.loader import build_fleet
from tiergate.config.schema import Config
from tiergate.execution.executor import Executor
from tiergate.execution.health import HealthBoard
from tiergate.fleet import Fleet
from tiergate.ledger import Ledger, LedgerEntry, open_ledger
from tiergate.observability.hub import Observability
from tiergate.providers import builtin_adapters
from tiergate.providers.base import Adapter
from tiergate.providers.transport import Transport
from tiergate.routing.learned import RouterWatcher
from tiergate.routing.policy import expected_latency_ms
from tiergate.routing.route import Route, build_routes, learned_strategies
from tiergate.routing.router import Router


@dataclass
class Gateway:
    config: Config
    fleet: Fleet
    routes: dict[str, Route]
    router: Router
    keys: KeyRing
    health: HealthBoard
    transport: Transport
    executor: Executor
    ledger: Ledger
    adapters: dict[str, Adapter] = field(default_factory=dict)
    # Observers of every finished request (metrics, logs, quality sampling). Each must be
    # fast and must not raise: they run on the request path, right after the answer is
    # written on the fast path (`ingress.fastpath`), just before it on the ASGI one.
    sinks: list[Callable[[LedgerEntry], None]] = field(default_factory=list)
    # Observers that also need the conversation (LLM-judge sampling). Never persisted.
    answer_sinks: list[Callable[[LedgerEntry, ChatRequest, ChatResponse], None]] = field(
        default_factory=list
    )
    observability: Observability | None = None
    # Keys from the store, allow-lists, budgets, rate limits and the response cache.
    tenants: Tenants = field(default_factory=Tenants.memory)
    ready: bool = False
    # Shared circuits and semantic cache, Redis outage handling (None without `redis:`).
    cluster: ClusterServices | None = None
    # Re-reads changed learned-router files, so a retrained router needs no restart.
    _router_watch: asyncio.Task[None] | None = None

    def book(
        self,
        entry: LedgerEntry,
        request: ChatRequest | None = None,
        answer: ChatResponse | None = None,
    ) -> None:
        """Record a finished request in the ledger and tell every observer."""
        self.tenants.settle(entry)
        self.ledger.record(entry)
        for sink in self.sinks:
            sink(entry)
        if request is not None and answer is not None:
            for answer_sink in self.answer_sinks:
                answer_sink(entry, request, answer)

    @classmethod
    def from_config(cls, config: Config, *, ledger: Ledger | None = None) -> Gateway:
        """Prepare every table; raises `ConfigError` listing every problem."""
        fleet = build_fleet(config)
        routes = build_routes(config, fleet)
        health = HealthBoard(config.circuit.failure_threshold, config.circuit.cooldown)
        adapters = builtin_adapters()
        missing = {p.kind for p in fleet.providers.values()} - adapters.keys()
        if missing:
            from tiergate.errors import ConfigError

            raise ConfigError([f"provider kind {k!r} is not available" for k in sorted(missing)])
        transport = Transport(fleet.providers.values())
        keys = KeyRing(map(key_from_config, config.keys), required=config.server.require_key)
        gateway = cls(
            config=config,
            fleet=fleet,
            routes=routes,
            router=Router(
                fleet,
                routes,
                cooling=health.cooling,
                latency=lambda d: expected_latency_ms(
                    health.get(d).latency_ewma_ms, health.get(d).error_ewma
                ),
            ),
            keys=keys,
            health=health,
            transport=transport,
            executor=Executor(adapters, transport, health),
            ledger=ledger if ledger is not None else open_ledger(**config.ledger.model_dump()),
            adapters=adapters,
            tenants=Tenants.from_config(config, keys, database=ledger is None),
        )
        gateway.observability = Observability.attach(gateway)
        gateway.cluster = ClusterServices.attach(gateway)
        return gateway

    async def start(self) -> None:
        await self.transport.start()
        await self.ledger.start()
        await self.tenants.start(self.keys)
        if self.cluster is not None:
            await self.cluster.start()
        watched = learned_strategies(self.routes)
        if watched:
            self._router_watch = asyncio.create_task(RouterWatcher(watched).run())
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        watch, self._router_watch = self._router_watch, None
        await stop_task(watch)
        await self.transport.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.tenants.close()
        await self.ledger.close()
        if self.observability is not None:
            self.observability.close()
