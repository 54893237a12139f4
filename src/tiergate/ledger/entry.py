"""What the ledger books for each request, and the interface of every ledger backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
    ttft_ms: float | None = None
    status: int = 200
    error: str | None = None
    fallbacks: int = 0
    attempts: str = ""  # "deployment:status,..." for every failed attempt
    cache: str = "miss"
    stream: bool = False
    tags: list[str] = field(default_factory=list)
    endpoint: str = "chat"


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
