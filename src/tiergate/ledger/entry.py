"""What the ledger books for each request, and the interface of every ledger backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SubCall:
    """A model call made on behalf of a request besides its answer (classifier, judge,
    cascade attempt that was escalated): its cost is the request's too."""

    purpose: str  # "classifier", "judge", "cascade", ...
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(slots=True)
class LedgerEntry:
    """One request: its decision, tokens, cost, the baseline's cost, latency and outcome."""

    request_id: str
    ts: float  # unix seconds when the request arrived
    key_name: str | None
    route: str
    strategy: str
    reasons: str
    model: str | None
    tier: str | None
    deployment: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    baseline_model: str | None = None
    baseline_cost_usd: float = 0.0
    latency_ms: float = 0.0
    upstream_ms: float = 0.0  # time spent waiting on providers, every attempt included
    ttft_ms: float | None = None
    status: int = 200
    error: str | None = None
    fallbacks: int = 0
    attempts: str = ""  # "deployment:status,..." for every failed attempt
    cache: str = "miss"
    stream: bool = False
    tags: list[str] = field(default_factory=list)
    endpoint: str = "chat"
    # Cost of sub-calls (see `SubCall`) on top of `cost_usd`; `add_sub_call` keeps it in step.
    extra_cost_usd: float = 0.0
    sub_calls: list[SubCall] = field(default_factory=list)
    # On a cache hit: what the answer cost when it was produced (cost_usd is 0).
    cache_saved_usd: float = 0.0
    cache_match: str | None = None  # the request id whose answer a cache hit served
    # The prompt text, only on routes with `record_prompts`; stored in `<prefix>prompts`,
    # not in the ledger row (see `tiergate.ledger.export`).
    prompt: str | None = None

    def add_sub_call(self, call: SubCall) -> None:
        """Book a classifier / judge / cascade call to this request."""
        self.sub_calls.append(call)
        self.extra_cost_usd += call.cost_usd

    @property
    def total_cost_usd(self) -> float:
        """Everything this request spent: its answer plus its sub-calls."""
        return self.cost_usd + self.extra_cost_usd


class Ledger(Protocol):
    """A ledger backend. `record` never blocks and never raises on the request path."""

    def record(self, entry: LedgerEntry) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Flush everything recorded so far, then release resources."""
        ...


class MemoryLedger:
    """Keeps entries in a list: for tests, `tiergate demo` and `tiergate route`."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
