"""The gateway's parts, created once at startup and passed to the HTTP layer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tiergate.auth.keys import KeyInfo, KeyRing, hash_key
from tiergate.config.loader import build_fleet
from tiergate.config.schema import Config
from tiergate.execution.executor import Executor
from tiergate.execution.health import HealthBoard
from tiergate.fleet import Fleet
from tiergate.ledger import Ledger, LedgerEntry, MemoryLedger
from tiergate.providers import builtin_adapters
from tiergate.providers.base import Adapter
from tiergate.providers.transport import Transport
from tiergate.routing.route import Route, build_routes
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
    # fast and must not raise: they run on the request path right after the response.
    sinks: list[Callable[[LedgerEntry], None]] = field(default_factory=list)
    ready: bool = False

    def book(self, entry: LedgerEntry) -> None:
        """Record a finished request in the ledger and tell every observer."""
        self.ledger.record(entry)
        for sink in self.sinks:
            sink(entry)

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
        keys = KeyRing(
            (
                KeyInfo(
                    name=k.name,
                    key_hash=hash_key(k.key),
                    budget_usd=k.budget_usd,
                    rpm=k.rpm,
                    tpm=k.tpm,
                )
                for k in config.keys
            ),
            required=config.server.require_key,
        )
        return cls(
            config=config,
            fleet=fleet,
            routes=routes,
            router=Router(fleet, routes, cooling=health.cooling),
            keys=keys,
            health=health,
            transport=transport,
            executor=Executor(adapters, transport, health),
            ledger=ledger if ledger is not None else MemoryLedger(),
            adapters=adapters,
        )

    async def start(self) -> None:
        await self.transport.start()
        await self.ledger.start()
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        await self.transport.close()
        await self.ledger.close()
