"""Who is asking and under what constraints: everything the decision needs besides the body."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ClassifierVerdict:
    """What the classifier said for this prompt (computed by the ingress, before deciding)."""

    label: str | None  # SIMPLE / MODERATE / COMPLEX; None when it failed
    note: str  # "cached", "12 ms", or why it failed ("timeout", "unparseable 'maybe'")
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class SharedLabelStore(Protocol):
    """Where instances share labels (Redis, in `tiergate.cluster.labels`)."""

    async def get(self, key: bytes) -> str | None: ...

    def put(self, key: bytes, label: str) -> None: ...


class LabelCache:
    """A small LRU of prompt hash -> label, one per classifier route; optionally backed by
    a store shared with the other gateway instances."""

    def __init__(self, size: int):
        self.size = size
        self._labels: OrderedDict[bytes, str] = OrderedDict()
        self.shared: SharedLabelStore | None = None

    async def lookup(self, key: bytes) -> str | None:
        """Local first, then the shared store (whose answer is kept locally)."""
        label = self.get(key)
        if label is None and self.shared is not None:
            label = await self.shared.get(key)
            if label is not None:
                self._remember(key, label)
        return label

    def put(self, key: bytes, label: str) -> None:
        self._remember(key, label)
        if self.shared is not None:
            self.shared.put(key, label)

    def get(self, key: bytes) -> str | None:
        label = self._labels.get(key)
        if label is not None:
            self._labels.move_to_end(key)
        return label

    def _remember(self, key: bytes, label: str) -> None:
        if self.size <= 0:
            return
        self._labels[key] = label
        self._labels.move_to_end(key)
        while len(self._labels) > self.size:
            self._labels.popitem(last=False)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The request's caller, endpoint, tags and per-request controls.

    Per-request controls (`min_tier`, `max_cost_usd`, `latency_budget_ms`) can only
    tighten the route's policy; `allowed_tiers` / `allowed_models` are the key's limits
    (empty: everything).
    """

    key_name: str | None = None
    endpoint: str = "chat"
    tags: frozenset[str] = frozenset()
    metadata: tuple[tuple[str, str], ...] = ()
    min_tier: str | None = None
    max_cost_usd: float | None = None
    latency_budget_ms: float | None = None
    allowed_tiers: frozenset[str] = field(default_factory=frozenset)
    allowed_models: frozenset[str] = field(default_factory=frozenset)
    classifier: ClassifierVerdict | None = None
