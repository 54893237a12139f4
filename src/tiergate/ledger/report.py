"""Spend, savings against the baseline, cache hit rate, latency and fallbacks per group."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from tiergate.ledger.query import Row

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`24h`, `7d`, `30m`, `2w`, an ISO date or time (UTC unless it says otherwise), or
    unix seconds. Raises `ValueError` with a readable message."""
    now = time.time() if now is None else now
    m = _RELATIVE.match(text)
    if m:
        return now - float(m.group(1)) * _SECONDS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time: use e.g. 24h, 7d, 2026-01-31 or 2026-01-31T12:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Summary:
    group: str
    requests: int
    errors: int
    spend_usd: float
    baseline_usd: float
    savings_usd: float
    savings_pct: float | None  # of the baseline; None when the baseline is 0
    cache_hits: int
    cache_hit_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    fallbacks: int  # requests that needed at least one fallback

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(group: str, rows: list[Row]) -> Summary:
    spend = sum(r.cost_usd for r in rows)
    baseline = sum(r.baseline_cost_usd for r in rows)
    hits = sum(1 for r in rows if r.cache == "hit")
    latencies = np.fromiter((r.latency_ms for r in rows if r.status < 400), dtype=float)
    p50, p95 = (
        (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)))
        if latencies.size
        else (None, None)
    )
    return Summary(
        group=group,
        requests=len(rows),
        errors=sum(1 for r in rows if r.status >= 400),
        spend_usd=spend,
        baseline_usd=baseline,
        savings_usd=baseline - spend,
        savings_pct=(baseline - spend) / baseline * 100 if baseline > 0 else None,
        cache_hits=hits,
        cache_hit_rate=hits / len(rows) if rows else 0.0,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        fallbacks=sum(1 for r in rows if r.fallbacks > 0),
    )


def report(rows: Iterable[Row]) -> tuple[list[Summary], Summary]:
    """One summary per group (most spend first) and the total."""
    groups: dict[str, list[Row]] = {}
    every: list[Row] = []
    for r in rows:
        groups.setdefault(r.group if r.group is not None else "(none)", []).append(r)
        every.append(r)
    summaries = [summarize(g, rs) for g, rs in groups.items()]
    summaries.sort(key=lambda s: (-s.spend_usd, -s.requests, s.group))
    return summaries, summarize("total", every)
