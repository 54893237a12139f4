"""The fleet: providers, deployments and models, as prepared once when the config loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ProviderKind = Literal["openai", "anthropic", "gemini"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 60.0
    inactivity: float = 30.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream API speaking one wire protocol. Credentials come only from config."""

    name: str
    kind: ProviderKind
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    timeouts: Timeouts = Timeouts()
    max_connections: int = 256
    anthropic_version: str = "2023-06-01"
    proxy: str | None = field(default=None, repr=False)
    """A proxy URL (may hold a password), "direct", or None: the environment's."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """Cost in USD; `input_tokens` includes the cached and cache-write tokens."""
        cached_rate = self.input if self.cached_input is None else self.cached_input
        write_rate = self.input if self.cache_write is None else self.cache_write
        fresh = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        return (
            fresh * self.input
            + cached_input_tokens * cached_rate
            + cache_write_tokens * write_rate
            + output_tokens * self.output
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a model can be served: a provider plus the upstream's model id."""

    id: str  # "<model>@<provider>"
    model: str
    provider: Provider
    upstream_model: str
    weight: float = 1.0
    max_output: int | None = None
    """The model's output ceiling (config or catalog), for protocols that need a limit."""


@dataclass(frozen=True, slots=True)
class Model:
    """A model name users see, with its tier, price, limits and deployments."""

    name: str
    tier: str
    price: Price
    deployments: tuple[Deployment, ...]
    context_window: int = 128_000
    max_output: int = 16_384
    capabilities: frozenset[str] = frozenset({"tools", "streaming"})

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float:
        return self.price.cost(input_tokens, output_tokens)


@dataclass(frozen=True)
class Fleet:
    """Every model, by name and by tier (each tier's models ordered cheapest first)."""

    tiers: tuple[str, ...]
    models: dict[str, Model]
    providers: dict[str, Provider]
    by_tier: dict[str, tuple[Model, ...]] = field(init=False)

    def __post_init__(self) -> None:
        by_tier: dict[str, list[Model]] = {t: [] for t in self.tiers}
        for m in self.models.values():
            by_tier[m.tier].append(m)
        for models in by_tier.values():
            models.sort(key=lambda m: (3 * m.price.input + m.price.output, m.name))
        object.__setattr__(self, "by_tier", {t: tuple(ms) for t, ms in by_tier.items()})

    def tier_rank(self, tier: str) -> int:
        return self.tiers.index(tier)

    def tiers_from(self, tier: str) -> tuple[str, ...]:
        """The tier and every tier above it, in order."""
        return self.tiers[self.tier_rank(tier) :]

    @property
    def flagship(self) -> Model:
        """The most expensive model of the highest populated tier: the default baseline."""
        for tier in reversed(self.tiers):
            if self.by_tier[tier]:
                return self.by_tier[tier][-1]
        raise LookupError("the fleet has no models")
