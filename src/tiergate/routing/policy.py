"""Route policies as prepared at config load: tier floors and ceilings, blocked models,
latency budget and cost cap. Per-request controls can only tighten them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from tiergate.routing.context import RequestContext


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """What a domain tag (`legal`, `medical`, ...) requires."""

    min_tier: str | None = None
    blocked_models: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Policy:
    """A route's policy."""

    domains: dict[str, DomainPolicy] = field(default_factory=dict)
    min_tier: str | None = None
    max_tier: str | None = None
    latency_budget_ms: float | None = None
    max_cost_usd: float | None = None
    blocked_models: frozenset[str] = frozenset()


@dataclass(slots=True)
class Effective:
    """The policy for one request: the route's, its domains', the key's and the caller's."""

    min_tier: str | None = None
    min_tier_why: str = ""
    max_tier: str | None = None
    blocked: set[str] = field(default_factory=set)
    blocked_why: dict[str, str] = field(default_factory=dict)
    latency_budget_ms: float | None = None
    max_cost_usd: float | None = None


_PLAIN = Policy()
NO_POLICY = Effective()  # shared: never mutated (callers only read an Effective)


def _tighter(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def effective_policy(
    policy: Policy, ctx: RequestContext, tier_rank: dict[str, int], tags: Collection[str]
) -> Effective:
    """Merge every source; the strictest wins on each point."""
    if (
        policy is _PLAIN
        or (
            policy.min_tier is None
            and policy.max_tier is None
            and not policy.domains
            and not policy.blocked_models
            and policy.latency_budget_ms is None
            and policy.max_cost_usd is None
        )
    ) and (ctx.min_tier is None and ctx.max_cost_usd is None and ctx.latency_budget_ms is None):
        return NO_POLICY  # the common case, without allocating
    eff = Effective(
        max_tier=policy.max_tier,
        latency_budget_ms=_tighter(policy.latency_budget_ms, ctx.latency_budget_ms),
        max_cost_usd=_tighter(policy.max_cost_usd, ctx.max_cost_usd),
    )

    def floor(tier: str | None, why: str) -> None:
        if tier is not None and (eff.min_tier is None or tier_rank[tier] > tier_rank[eff.min_tier]):
            eff.min_tier, eff.min_tier_why = tier, why

    floor(policy.min_tier, "route policy")
    for name in policy.blocked_models:
        eff.blocked.add(name)
        eff.blocked_why[name] = "route policy"
    if policy.domains:
        for tag in tags:
            domain = policy.domains.get(tag)
            if domain is None:
                continue
            floor(domain.min_tier, f"domain {tag!r}")
            for name in domain.blocked_models:
                eff.blocked.add(name)
                eff.blocked_why[name] = f"domain {tag!r}"
    floor(ctx.min_tier, "request")
    return eff


def expected_latency_ms(latency_ewma_ms: float | None, error_rate: float) -> float | None:
    """What the latency policy compares with the budget: the observed latency stretched by
    the observed error rate, since a failed attempt costs a retry elsewhere (the expected
    time to an answer is latency / (1 - error rate))."""
    if latency_ewma_ms is None:
        return None
    return latency_ewma_ms / max(1.0 - error_rate, 0.1)
