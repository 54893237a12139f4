"""Routes as prepared at config load: strategies, tables, policies, baseline."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tiergate.config.schema import Config, FallbackConfig, RouteConfig
from tiergate.errors import ConfigError
from tiergate.fleet import Fleet, Model
from tiergate.routing.rules import Rule, compile_rule, default_rules

STRATEGIES = ("static", "rules")


@dataclass(frozen=True)
class Route:
    name: str
    strategies: tuple[str, ...]
    default_tier: str
    baseline: Model
    tier: str | None = None
    models: tuple[Model, ...] | None = None
    rules: tuple[Rule, ...] = ()
    fallback: FallbackConfig = field(default_factory=FallbackConfig)
    options: dict[str, Any] = field(default_factory=dict)


def _build_route(name: str, rc: RouteConfig, fleet: Fleet, problems: list[str]) -> Route | None:
    where = f"routes.{name}"
    strategies = (rc.strategy,) if isinstance(rc.strategy, str) else tuple(rc.strategy)
    ok = True
    for s in strategies:
        if s not in STRATEGIES:
            problems.append(f"{where}.strategy: unknown strategy {s!r} (known: {STRATEGIES})")
            ok = False
    for label, tier in (("tier", rc.tier), ("default_tier", rc.default_tier)):
        if tier is not None and tier not in fleet.tiers:
            problems.append(f"{where}.{label}: tier {tier!r} is not declared in tiers")
            ok = False
    models: tuple[Model, ...] | None = None
    if rc.models is not None:
        unknown = [m for m in rc.models if m not in fleet.models]
        if unknown:
            problems.append(f"{where}.models: unknown models {unknown}")
            ok = False
        else:
            models = tuple(fleet.models[m] for m in rc.models)
    if "static" in strategies and rc.tier is None and models is None:
        problems.append(f"{where}: strategy static needs a tier or a models list")
        ok = False
    rules: list[Rule] = []
    for i, rule in enumerate(rc.rules or ()):
        if rule.tier not in fleet.tiers:
            problems.append(f"{where}.rules.{i}.tier: tier {rule.tier!r} is not declared")
            ok = False
            continue
        try:
            rules.append(compile_rule(rule, i))
        except re.error as exc:
            problems.append(f"{where}.rules.{i}.regex: invalid regular expression: {exc}")
            ok = False
    baseline = fleet.models.get(rc.baseline) if rc.baseline else None
    if rc.baseline and baseline is None:
        problems.append(f"{where}.baseline: unknown model {rc.baseline!r}")
        ok = False
    if not ok or not fleet.models:
        return None
    return Route(
        name=name,
        strategies=strategies,
        default_tier=rc.default_tier or rc.tier or fleet.tiers[len(fleet.tiers) // 2],
        baseline=baseline or fleet.flagship,
        tier=rc.tier,
        models=models,
        rules=tuple(rules) if rc.rules else default_rules(fleet.tiers),
        fallback=rc.fallback,
        options=dict(rc.options),
    )


def build_routes(config: Config, fleet: Fleet) -> dict[str, Route]:
    """Every configured route, plus a default `auto` (rules) when none is configured."""
    problems: list[str] = []
    routes: dict[str, Route] = {}
    for name, rc in config.routes.items():
        if not (name == "auto" or name.startswith("auto:")):
            problems.append(f"routes.{name}: route names are 'auto' or 'auto:NAME'")
            continue
        route = _build_route(name, rc, fleet, problems)
        if route is not None:
            routes[name] = route
    if problems:
        raise ConfigError(problems)
    if "auto" not in routes and fleet.models:
        built = _build_route("auto", RouteConfig(), fleet, problems)
        if built is not None:
            routes["auto"] = built
    return routes
