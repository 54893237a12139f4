"""The cost simulator: what a month of traffic costs on one flagship model vs routed by tier.

Traffic is either a named scenario (requests a month, tokens per request, share per tier)
or recorded traffic (JSON lines with tokens and a tier or a model). A plan is a model per
tier plus the flagship it is compared with; plans come from the built-in catalog (one per
provider family) or from a config's models. Everything here is pure arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from tiergate.catalog import Catalog
from tiergate.fleet import Fleet, Model
from tiergate.observability.jsonl import json_object

TIERS = ("budget", "standard", "premium")
MONTH_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Scenario:
    """A traffic mix from a public routing guide: per month, tokens per request, tier shares."""

    name: str
    title: str
    requests: int
    input_tokens: int
    output_tokens: int
    shares: Mapping[str, float]
    share_names: Mapping[str, str]  # what each tier's traffic is, in the scenario's words


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "support-chatbot",
            "Support chatbot",
            500_000,
            200,
            400,
            {"budget": 0.45, "standard": 0.40, "premium": 0.15},
            {"budget": "FAQ", "standard": "standard", "premium": "escalated"},
        ),
        Scenario(
            "code-review",
            "Code review",
            50_000,
            2_000,
            800,
            {"budget": 0.35, "standard": 0.45, "premium": 0.20},
            {"budget": "style / lint", "standard": "logic", "premium": "architecture"},
        ),
        Scenario(
            "content-generation",
            "Content generation",
            200_000,
            500,
            1_500,
            {"budget": 0.30, "standard": 0.45, "premium": 0.25},
            {"budget": "short / templated", "standard": "articles", "premium": "long-form"},
        ),
    )
}
ALIASES = {"support": "support-chatbot", "code": "code-review", "content": "content-generation"}


class TrafficError(ValueError):
    """Recorded traffic cannot be read; names the file and line."""


@dataclass(slots=True)
class TierLoad:
    requests: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0


@dataclass(slots=True)
class Traffic:
    """A month of traffic, by tier."""

    source: str
    by_tier: dict[str, TierLoad] = field(default_factory=dict)
    note: str = ""
    skipped: int = 0  # lines without tokens, failed requests
    untiered: int = 0  # lines whose tier was unknown, counted in the middle tier

    @property
    def requests(self) -> float:
        return sum(t.requests for t in self.by_tier.values())

    def scaled(self, factor: float, note: str) -> Traffic:
        return Traffic(
            self.source,
            {
                tier: TierLoad(
                    t.requests * factor, t.input_tokens * factor, t.output_tokens * factor
                )
                for tier, t in self.by_tier.items()
            },
            note,
            self.skipped,
            self.untiered,
        )


def scenario(name: str) -> Scenario:
    """A scenario by name or alias; raises KeyError listing the known names."""
    key = ALIASES.get(name, name)
    if key not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[key]


def scenario_traffic(s: Scenario) -> Traffic:
    traffic = Traffic(s.title, note=f"{s.requests:,} requests/month")
    for tier, share in s.shares.items():
        n = s.requests * share
        traffic.by_tier[tier] = TierLoad(n, n * s.input_tokens, n * s.output_tokens)
    return traffic


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a number (ledger rows) or an ISO-8601 string (the
    JSON request log's ``ts``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _int(obj: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = obj.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def read_traffic(
    stream: IO[bytes],
    source: str,
    tier_of: Callable[[str], str | None],
    *,
    tiers: tuple[str, ...] = TIERS,
    progress: Callable[[int], None] | None = None,
) -> Traffic:
    """Aggregate JSON lines (ledger exports, outcome records, or ``{"input_tokens", "output_tokens",
    "tier"}``) by tier. ``tier_of`` maps a model name to its tier; ``progress`` gets bytes read."""
    traffic = Traffic(source)
    middle = tiers[len(tiers) // 2]
    first_ts: float | None = None
    last_ts: float | None = None
    done = 0
    for number, line in enumerate(stream, 1):
        done += len(line)
        if progress is not None and number % 4096 == 0:
            progress(done)
        if not line.strip():
            continue
        obj = json_object(line, source, number, TrafficError)
        status = obj.get("status")
        input_tokens = _int(obj, "input_tokens", "prompt_tokens")
        output_tokens = _int(obj, "output_tokens", "completion_tokens")
        if (
            input_tokens is None
            or output_tokens is None
            or (isinstance(status, int) and status >= 400)
        ):
            traffic.skipped += 1
            continue
        tier = obj.get("tier")
        if not isinstance(tier, str) or tier not in tiers:
            model = obj.get("model")
            tier = tier_of(model) if isinstance(model, str) else None
            if tier not in tiers:
                tier = middle
                traffic.untiered += 1
        assert isinstance(tier, str)
        load = traffic.by_tier.setdefault(tier, TierLoad())
        load.requests += 1
        load.input_tokens += input_tokens
        load.output_tokens += output_tokens
        ts = _timestamp(obj.get("ts"))
        if ts is not None:
            first_ts = ts if first_ts is None else min(first_ts, ts)
            last_ts = ts if last_ts is None else max(last_ts, ts)
    if progress is not None:
        progress(done)
    span = last_ts - first_ts if first_ts is not None and last_ts is not None else 0.0
    if span >= 3600:
        return traffic.scaled(
            MONTH_SECONDS / span,
            f"{traffic.requests:,.0f} requests over {span / 3600:.1f} h, scaled to 30 days",
        )
    traffic.note = f"{traffic.requests:,.0f} requests, as recorded"
    return traffic


def read_traffic_file(
    path: str | Path,
    tier_of: Callable[[str], str | None],
    *,
    tiers: tuple[str, ...] = TIERS,
    progress: Callable[[int], None] | None = None,
) -> Traffic:
    with Path(path).open("rb") as stream:
        return read_traffic(stream, str(path), tier_of, tiers=tiers, progress=progress)


@dataclass(frozen=True, slots=True)
class PricedModel:
    name: str
    tier: str
    input: float  # USD per million tokens
    output: float

    def cost(self, load: TierLoad) -> float:
        return (load.input_tokens * self.input + load.output_tokens * self.output) / 1_000_000

    @classmethod
    def of(cls, model: Model) -> PricedModel:
        return cls(model.name, model.tier, model.price.input, model.price.output)


@dataclass(frozen=True, slots=True)
class Plan:
    """A routing configuration: one model per tier, and the flagship it replaces."""

    name: str
    per_tier: Mapping[str, PricedModel]
    flagship: PricedModel


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: str
    flagship: str
    flagship_usd: float
    routed_usd: float
    per_tier: Mapping[str, tuple[str, float]]  # tier -> (model, USD)

    @property
    def saving_usd(self) -> float:
        return self.flagship_usd - self.routed_usd

    @property
    def saving_pct(self) -> float:
        return 100 * self.saving_usd / self.flagship_usd if self.flagship_usd else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "flagship_model": self.flagship,
            "flagship_usd": round(self.flagship_usd, 2),
            "routed_usd": round(self.routed_usd, 2),
            "saving_usd": round(self.saving_usd, 2),
            "saving_pct": round(self.saving_pct, 1),
            "per_tier": {
                t: {"model": m, "usd": round(c, 2)} for t, (m, c) in self.per_tier.items()
            },
        }


def simulate(traffic: Traffic, plans: Iterable[Plan]) -> list[PlanResult]:
    """Monthly cost of the traffic on each plan: flagship only vs routed."""
    results = []
    for plan in plans:
        per_tier: dict[str, tuple[str, float]] = {}
        flagship = routed = 0.0
        for tier, load in traffic.by_tier.items():
            model = plan.per_tier.get(tier) or plan.flagship
            cost = model.cost(load)
            per_tier[tier] = (model.name, cost)
            routed += cost
            flagship += plan.flagship.cost(load)
        results.append(PlanResult(plan.name, plan.flagship.name, flagship, routed, per_tier))
    return results


def _plan(
    name: str, cheapest: Mapping[str, PricedModel], flagship: PricedModel, tiers: tuple[str, ...]
) -> Plan:
    """A plan from each tier's cheapest model; a tier with no model of its own uses the
    next populated tier up (as routing does)."""
    per_tier: dict[str, PricedModel] = {}
    for i, tier in enumerate(tiers):
        model = next((cheapest[t] for t in tiers[i:] if t in cheapest), None)
        if model is not None:
            per_tier[tier] = model
    return Plan(name, per_tier, flagship)


def _weight(m: PricedModel) -> float:
    # The fleet's ordering: a typical request reads about three tokens per one it writes.
    return 3 * m.input + m.output


_FAMILIES = (("OpenAI", "openai"), ("Anthropic", "anthropic"), ("Google", "gemini"))


def catalog_plans(catalog: Catalog, tiers: tuple[str, ...] = TIERS) -> list[Plan]:
    """One plan per provider family of the catalog: its cheapest model per tier, compared
    with its most expensive premium model. Models tied to one provider are left out."""
    plans = []
    for label, kind in _FAMILIES:
        models = [
            PricedModel(e.name, e.tier, e.price["input"], e.price["output"])
            for e in catalog.entries.values()
            if e.kind == kind
            and e.provider_hint is None
            and e.tier in tiers
            and "embeddings" not in e.capabilities
        ]
        if not models:
            continue
        chosen: dict[str, PricedModel] = {}
        for m in sorted(models, key=lambda m: (_weight(m), m.name)):
            chosen.setdefault(m.tier, m)
        top = next(t for t in reversed(tiers) if any(m.tier == t for m in models))
        flagship = max((m for m in models if m.tier == top), key=lambda m: (_weight(m), m.name))
        plans.append(_plan(label, chosen, flagship, tiers))
    return plans


def fleet_plan(fleet: Fleet, name: str = "config") -> Plan:
    """The plan a config describes: each tier's cheapest model, vs the fleet's flagship."""
    cheapest = {tier: PricedModel.of(ms[0]) for tier, ms in fleet.by_tier.items() if ms}
    return _plan(name, cheapest, PricedModel.of(fleet.flagship), fleet.tiers)
