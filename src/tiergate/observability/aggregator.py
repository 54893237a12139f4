"""A rolling, in-process summary of recent traffic for the dashboard.

Fed by the ledger sink, so it works with every ledger backend; keeps fixed-size time
buckets over a window (an hour by default), a bounded latency sample per model and the
last requests with their decision reasons. Memory stays bounded whatever the traffic.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiergate.ledger import LedgerEntry

_LATENCY_SAMPLES = 2048  # per model: enough for a stable p95, small enough to sort per poll
_RECENT = 50


@dataclass(slots=True)
class _Bucket:
    requests: int = 0
    errors: int = 0  # status >= 500: the gateway or its providers failed
    rejected: int = 0  # 4xx: the client's mistake, never spend
    fallbacks: int = 0  # requests answered after at least one failed attempt
    cache_hits: int = 0
    cache_lookups: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float = 0.0
    tiers: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _ModelStats:
    tier: str
    requests: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    latencies: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES)
    )


class Aggregator:
    """Time-bucketed counts, spend and latency of recent requests."""

    def __init__(
        self,
        window: float = 3600.0,
        bucket: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.bucket = bucket
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._models: dict[str, _ModelStats] = {}
        self._recent: deque[LedgerEntry] = deque(maxlen=_RECENT)
        self._started = clock()
        self.total_requests = 0
        self.total_cost_usd = 0.0
        self.total_baseline_usd = 0.0

    def observe(self, entry: LedgerEntry) -> None:
        """The ledger sink: add one finished request."""
        index = int(entry.ts // self.bucket)
        b = self._buckets.get(index)
        if b is None:
            b = self._buckets[index] = _Bucket()
            self._expire(index)
        b.requests += 1
        if entry.status >= 500:
            b.errors += 1
        elif entry.status >= 400:
            b.rejected += 1
        if entry.fallbacks:
            b.fallbacks += 1
        if entry.cache != "bypass" and entry.status < 400:
            b.cache_lookups += 1
            if entry.cache == "hit":
                b.cache_hits += 1
        spent = entry.cost_usd + entry.extra_cost_usd  # sub-calls are the request's spend too
        b.cost_usd += spent
        b.baseline_cost_usd += entry.baseline_cost_usd
        if entry.tier is not None:
            b.tiers[entry.tier] = b.tiers.get(entry.tier, 0) + 1
        if entry.model is not None:
            stats = self._models.get(entry.model)
            if stats is None:
                stats = self._models[entry.model] = _ModelStats(entry.tier or "none")
            stats.requests += 1
            stats.cost_usd += entry.cost_usd
            stats.input_tokens += entry.input_tokens
            stats.output_tokens += entry.output_tokens
            if entry.status < 400:
                stats.latencies.append((entry.ts, entry.latency_ms))
        self._recent.append(entry)
        self.total_requests += 1
        self.total_cost_usd += spent
        self.total_baseline_usd += entry.baseline_cost_usd

    def _expire(self, newest: int) -> None:
        oldest = newest - math.ceil(self.window / self.bucket)
        for index in [i for i in self._buckets if i <= oldest]:
            del self._buckets[index]

    def summary(self) -> dict[str, Any]:
        """Everything the dashboard shows, as JSON-ready data over the window."""
        now = self._clock()
        last = int(now // self.bucket)
        first = last - math.ceil(self.window / self.bucket) + 1
        first = max(first, min(self._buckets)) if self._buckets else last
        total = _Bucket()
        series: list[dict[str, Any]] = []
        for index in range(first, last + 1):
            b = self._buckets.get(index) or _Bucket()
            series.append(
                {
                    "t": index * self.bucket,
                    "requests": b.requests,
                    "errors": b.errors,
                    "fallbacks": b.fallbacks,
                    "cost_usd": b.cost_usd,
                    "baseline_cost_usd": b.baseline_cost_usd,
                    "cache_hits": b.cache_hits,
                }
            )
            total.requests += b.requests
            total.errors += b.errors
            total.rejected += b.rejected
            total.fallbacks += b.fallbacks
            total.cache_hits += b.cache_hits
            total.cache_lookups += b.cache_lookups
            total.cost_usd += b.cost_usd
            total.baseline_cost_usd += b.baseline_cost_usd
            for tier, n in b.tiers.items():
                total.tiers[tier] = total.tiers.get(tier, 0) + n
        since = now - self.window
        savings = total.baseline_cost_usd - total.cost_usd
        return {
            "now": now,
            "window_s": self.window,
            "bucket_s": self.bucket,
            "totals": {
                "requests": total.requests,
                "errors": total.errors,
                "rejected": total.rejected,
                "fallbacks": total.fallbacks,
                "cost_usd": total.cost_usd,
                "baseline_cost_usd": total.baseline_cost_usd,
                "savings_usd": savings,
                "savings_pct": _ratio(savings, total.baseline_cost_usd),
                "error_rate": _ratio(total.errors, total.requests),
                "fallback_rate": _ratio(total.fallbacks, total.requests),
                "cache_hit_rate": _ratio(total.cache_hits, total.cache_lookups),
                "cost_per_request_usd": _ratio(total.cost_usd, total.requests),
            },
            "since_start": {
                "started": self._started,
                "requests": self.total_requests,
                "cost_usd": self.total_cost_usd,
                "baseline_cost_usd": self.total_baseline_usd,
            },
            "series": series,
            "tiers": total.tiers,
            "models": [self._model_row(name, s, since) for name, s in sorted(self._models.items())],
            "recent": [_recent_row(e) for e in reversed(self._recent)],
        }

    @staticmethod
    def _model_row(name: str, stats: _ModelStats, since: float) -> dict[str, Any]:
        latencies = sorted(ms for ts, ms in stats.latencies if ts >= since)
        return {
            "model": name,
            "tier": stats.tier,
            "requests": stats.requests,
            "cost_usd": stats.cost_usd,
            "cost_per_request_usd": _ratio(stats.cost_usd, stats.requests),
            "input_tokens": stats.input_tokens,
            "output_tokens": stats.output_tokens,
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
        }


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank percentile of an ascending list; None when it is empty."""
    if not ordered:
        return None
    rank = max(math.ceil(q * len(ordered)) - 1, 0)
    return ordered[rank]


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _recent_row(e: LedgerEntry) -> dict[str, Any]:
    return {
        "ts": e.ts,
        "request_id": e.request_id,
        "key": e.key_name,
        "route": e.route,
        "model": e.model,
        "tier": e.tier,
        "status": e.status,
        "cost_usd": e.cost_usd,
        "baseline_cost_usd": e.baseline_cost_usd,
        "latency_ms": round(e.latency_ms, 1),
        "cache": e.cache,
        "fallbacks": e.fallbacks,
        "reasons": e.reasons,
        "error": e.error,
    }
