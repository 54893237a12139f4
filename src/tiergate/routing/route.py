"""Routes as prepared at config load: strategies, tables, policies, baseline.

Every semantic problem is collected (not just the first) and carries the YAML line of
the offending entry when the config came from a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tiergate.config.schema import (
    CascadeConfig,
    ClassifierConfig,
    Config,
    FallbackConfig,
    RouteConfig,
    SpeculativeConfig,
)
from tiergate.errors import ConfigError
from tiergate.fleet import Fleet, Model
from tiergate.routing.context import LabelCache
from tiergate.routing.decision import Execution
from tiergate.routing.learned import LearnedStrategy
from tiergate.routing.policy import DomainPolicy, Policy
from tiergate.routing.rules import Rule, RuleTable, compile_rule, default_rules
from tiergate.routing.static import StaticRule

DECIDERS = ("static", "rules", "classifier", "learned")
EXECUTIONS = ("cascade", "speculative")
STRATEGIES = DECIDERS + EXECUTIONS
LABELS = ("SIMPLE", "MODERATE", "COMPLEX")


@dataclass(frozen=True)
class Classifier:
    """The classifier step, prepared: its model, timeout and label -> tier table."""

    model: Model
    timeout: float
    labels: dict[str, str]
    max_prompt_chars: int
    cache: LabelCache  # prompt hash -> label, kept for the life of the config


@dataclass(frozen=True)
class Route:
    """One route: the strategies it runs, in order, and everything they need."""

    name: str
    strategies: tuple[str, ...]  # the deciders, in configured order
    default_tier: str
    baseline: Model
    execution: Execution = "direct"
    tier: str | None = None
    models: tuple[Model, ...] | None = None
    static: tuple[StaticRule, ...] = ()
    rules: RuleTable = field(default_factory=RuleTable)
    classifier: Classifier | None = None
    learned: LearnedStrategy | None = None
    cascade: CascadeConfig | None = None
    speculative: SpeculativeConfig | None = None
    policy: Policy = field(default_factory=Policy)
    fallback: FallbackConfig = field(default_factory=FallbackConfig)

    @property
    def path(self) -> str:
        """Every configured strategy, as in the decision's `strategy` field."""
        return ">".join(self.strategies + ((self.execution,) if self.execution != "direct" else ()))


class _Checker:
    """Collects problems, each prefixed with its YAML line when known."""

    def __init__(self, config: Config, fleet: Fleet):
        self.config = config
        self.fleet = fleet
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = self.config.line_of(path)
        self.problems.append(f"{f'line {line}: ' if line else ''}{path}: {message}")

    def tier(self, path: str, tier: str | None) -> bool:
        if tier is None or tier in self.fleet.tiers:
            return True
        self.add(path, f"tier {tier!r} is not declared in tiers {list(self.fleet.tiers)}")
        return False

    def model(self, path: str, name: str | None) -> Model | None:
        if name is None:
            return None
        model = self.fleet.models.get(name)
        if model is None:
            self.add(path, f"unknown model {name!r}")
        return model

    def models(self, path: str, names: list[str] | None) -> tuple[Model, ...] | None:
        if names is None:
            return None
        found = [self.model(f"{path}.{i}", n) for i, n in enumerate(names)]
        if any(m is None for m in found):
            return None
        return tuple(m for m in found if m is not None)


def _static(where: str, rc: RouteConfig, check: _Checker) -> tuple[StaticRule, ...]:
    out: list[StaticRule] = []
    for i, sc in enumerate(rc.static or ()):
        at = f"{where}.static.{i}"
        if not check.tier(f"{at}.tier", sc.tier):
            continue
        models = check.models(f"{at}.models", sc.models)
        if sc.models is not None and models is None:
            continue
        out.append(
            StaticRule(
                tier=sc.tier,
                models=models,
                endpoint=sc.endpoint,
                key=sc.key,
                tags=frozenset(sc.tags) if sc.tags else None,
                metadata=tuple(sorted((sc.metadata or {}).items())),
            )
        )
    return tuple(out)


def _rules(where: str, rc: RouteConfig, check: _Checker) -> RuleTable:
    if not rc.rules:
        return RuleTable.of(default_rules(check.fleet.tiers))
    out: list[Rule] = []
    for i, rule in enumerate(rc.rules):
        if not check.tier(f"{where}.rules.{i}.tier", rule.tier):
            continue
        try:
            out.append(compile_rule(rule, i))
        except re.error as exc:
            check.add(f"{where}.rules.{i}.regex", f"invalid regular expression: {exc}")
    return RuleTable.of(out)


def _classifier(where: str, cc: ClassifierConfig | None, check: _Checker) -> Classifier | None:
    if cc is None:
        return None
    model = check.model(f"{where}.classifier.model", cc.model)
    tiers = check.fleet.tiers
    labels = cc.labels or dict(
        zip(LABELS, (tiers[0], tiers[len(tiers) // 2], tiers[-1]), strict=True)
    )
    labels = {k.upper(): v for k, v in labels.items()}
    ok = model is not None
    for label, tier in labels.items():
        ok = check.tier(f"{where}.classifier.labels.{label}", tier) and ok
    if not ok or model is None:
        return None
    return Classifier(model, cc.timeout, labels, cc.max_prompt_chars, LabelCache(cc.cache_size))


def _learned(where: str, rc: RouteConfig, check: _Checker) -> LearnedStrategy | None:
    lc = rc.learned
    if lc is None:
        return None
    from tiergate.learned import LearnedRouter, RouterFormatError

    try:
        router = LearnedRouter.load(lc.path)
    except (OSError, RouterFormatError) as exc:
        check.add(f"{where}.learned.path", f"cannot load router {lc.path!r}: {exc}")
        return None
    if not set(router.models) & check.fleet.models.keys():
        check.add(
            f"{where}.learned.path",
            f"the router knows none of the configured models (it knows {router.models})",
        )
        return None
    return LearnedStrategy(router, lc.path, lc.tolerance, lc.reload_interval)


def _policy(where: str, rc: RouteConfig, check: _Checker) -> Policy:
    pc = rc.policies
    at = f"{where}.policies"
    check.tier(f"{at}.min_tier", pc.min_tier)
    check.tier(f"{at}.max_tier", pc.max_tier)
    check.models(f"{at}.blocked_models", pc.blocked_models)
    domains: dict[str, DomainPolicy] = {}
    for name, dc in pc.domains.items():
        check.tier(f"{at}.domains.{name}.min_tier", dc.min_tier)
        check.models(f"{at}.domains.{name}.blocked_models", dc.blocked_models)
        domains[name] = DomainPolicy(dc.min_tier, frozenset(dc.blocked_models))
    return Policy(
        domains=domains,
        min_tier=pc.min_tier,
        max_tier=pc.max_tier,
        latency_budget_ms=pc.latency_budget_ms,
        max_cost_usd=pc.max_cost_usd,
        blocked_models=frozenset(pc.blocked_models),
    )


def _build_route(name: str, rc: RouteConfig, check: _Checker) -> Route | None:
    where = f"routes.{name}"
    before = len(check.problems)
    fleet = check.fleet
    configured = (rc.strategy,) if isinstance(rc.strategy, str) else tuple(rc.strategy)
    for s in configured:
        if s not in STRATEGIES:
            check.add(f"{where}.strategy", f"unknown strategy {s!r} (known: {list(STRATEGIES)})")
    deciders = tuple(s for s in configured if s in DECIDERS)
    executions = [s for s in configured if s in EXECUTIONS]
    if len(executions) > 1:
        check.add(f"{where}.strategy", "cascade and speculative cannot be combined")
    execution: Execution = "cascade" if "cascade" in executions else "direct"
    if "speculative" in executions and execution == "direct":
        execution = "speculative"
    check.tier(f"{where}.tier", rc.tier)
    check.tier(f"{where}.default_tier", rc.default_tier)
    models = check.models(f"{where}.models", rc.models)
    if "static" in deciders and rc.tier is None and models is None and not rc.static:
        check.add(f"{where}.strategy", "strategy static needs a tier, a models list or static:")
    static = _static(where, rc, check)
    rules = _rules(where, rc, check) if "rules" in deciders else RuleTable()
    classifier = _classifier(where, rc.classifier, check)
    if "classifier" in deciders and rc.classifier is None and classifier is None:
        check.add(f"{where}.classifier", "strategy classifier needs a classifier: {model: ...}")
    learned = _learned(where, rc, check) if "learned" in deciders else None
    if "learned" in deciders and rc.learned is None:
        check.add(f"{where}.learned", "strategy learned needs learned: {path: ...}")
    speculative = rc.speculative or (SpeculativeConfig() if execution == "speculative" else None)
    if speculative is not None:
        check.tier(f"{where}.speculative.premium_tier", speculative.premium_tier)
    for kind, cfg in (("cascade", rc.cascade), ("speculative", rc.speculative)):
        if cfg is not None and cfg.validators.judge is not None:
            check.model(f"{where}.{kind}.validators.judge.model", cfg.validators.judge.model)
    policy = _policy(where, rc, check)
    baseline = check.model(f"{where}.baseline", rc.baseline)
    if len(check.problems) > before or not fleet.models:
        return None
    # A route that only escalates starts from the bottom; others from the middle tier.
    fallback_tier = fleet.tiers[0] if not deciders else fleet.tiers[len(fleet.tiers) // 2]
    return Route(
        name=name,
        strategies=deciders,
        default_tier=rc.default_tier or rc.tier or fallback_tier,
        baseline=baseline or fleet.flagship,
        execution=execution,
        tier=rc.tier,
        models=models,
        static=static,
        rules=rules,
        classifier=classifier,
        learned=learned,
        cascade=rc.cascade or (CascadeConfig() if execution == "cascade" else None),
        speculative=speculative,
        policy=policy,
        fallback=rc.fallback,
    )


def build_routes(config: Config, fleet: Fleet) -> dict[str, Route]:
    """Every configured route, plus a default `auto` (rules) when none is configured."""
    check = _Checker(config, fleet)
    routes: dict[str, Route] = {}
    for name, rc in config.routes.items():
        if not (name == "auto" or name.startswith("auto:")):
            check.add(f"routes.{name}", "route names are 'auto' or 'auto:NAME'")
            continue
        route = _build_route(name, rc, check)
        if route is not None:
            routes[name] = route
    if check.problems:
        raise ConfigError(check.problems)
    if "auto" not in routes and fleet.models:
        built = _build_route("auto", RouteConfig(), check)
        if built is not None:
            routes["auto"] = built
    return routes


def learned_strategies(routes: dict[str, Route]) -> list[LearnedStrategy]:
    """Every route's learned router (for the file watcher)."""
    return [r.learned for r in routes.values() if r.learned is not None]
