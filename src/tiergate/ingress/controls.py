"""Per-request controls from `x-tiergate-*` headers and `extra_body={"tiergate": {...}}`.

Only the controls listed here are read from a client; every other `x-tiergate-*` header a
client sends (our own response headers, forged attempt counts or tenants) is ignored.
Controls can only tighten what the key allows; the router and policies enforce that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tiergate.chat import TiergateOptions
from tiergate.errors import BadRequest


@dataclass(frozen=True, slots=True)
class Controls:
    route: str | None = None
    min_tier: str | None = None
    max_cost_usd: float | None = None
    latency_budget_ms: float | None = None
    cache_bypass: bool = False
    tags: tuple[str, ...] = ()


def _float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"header {name} must be a number, got {value[:40]!r}") from None
    if not number >= 0 or number == float("inf"):
        raise BadRequest(f"header {name} must be a finite number >= 0")
    return number


def read_controls(headers: Mapping[str, str], body: TiergateOptions | None) -> Controls:
    """Merge header and body controls; the body wins where both are given."""
    tags = tuple(t.strip() for t in headers.get("x-tiergate-tags", "").split(",") if t.strip())
    cache_header = headers.get("x-tiergate-cache", "").lower()
    controls = Controls(
        route=headers.get("x-tiergate-route") or None,
        min_tier=headers.get("x-tiergate-min-tier") or None,
        max_cost_usd=_float(headers, "x-tiergate-max-cost-usd"),
        latency_budget_ms=_float(headers, "x-tiergate-latency-budget-ms"),
        cache_bypass=cache_header in ("bypass", "no-cache", "off"),
        tags=tags,
    )
    if body is None:
        return controls
    return Controls(
        route=body.route or controls.route,
        min_tier=body.min_tier or controls.min_tier,
        max_cost_usd=body.max_cost_usd if body.max_cost_usd is not None else controls.max_cost_usd,
        latency_budget_ms=body.latency_budget_ms or controls.latency_budget_ms,
        cache_bypass=body.cache == "bypass" or controls.cache_bypass,
        tags=tuple(body.tags or ()) + controls.tags,
    )
