"""The routing decision: a pure function over tables prepared when the config loads.

Order of work for a route: the deciders run in configured order until one decides (static,
rules, classifier, learned); the route's default tier applies when none does. Then the
policies refine: tier floors (route, domain tags, request) and ceilings, the key's
allowed tiers and models, blocked models, the cost cap and the latency budget. Candidates
are the capable models of the chosen tier (cheapest first for this request's expected
input and output tokens, so long answers prefer cheap output prices), then the tiers
above when the route escalates; models whose every deployment is cooling down go last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from tiergate.chat import ChatRequest
from tiergate.errors import BadRequest, NoCandidates, NotFound, PermissionDenied
from tiergate.fleet import Fleet, Model
from tiergate.routing.context import RequestContext
from tiergate.routing.decision import Decision
from tiergate.routing.features import RequestFeatures, extract_features
from tiergate.routing.policy import NO_POLICY, Effective, Policy, effective_policy
from tiergate.routing.route import Route

TIER_PREFIX = "tier:"
_NO_POLICY = Policy()
_NO_CONTEXT = RequestContext()


class Router:
    """Decides tier and candidate order for each request. No I/O."""

    def __init__(
        self,
        fleet: Fleet,
        routes: dict[str, Route],
        cooling: Callable[[str], bool] | None = None,
        latency: Callable[[str], float | None] | None = None,
    ):
        self.fleet = fleet
        self.routes = routes
        self._rank = {t: i for i, t in enumerate(fleet.tiers)}
        self._tiers_from = {t: fleet.tiers[i:] for i, t in enumerate(fleet.tiers)}
        # Health hooks: a deployment id -> True while it is out (circuit open); -> its
        # observed latency (EWMA, ms) or None when it has not answered yet.
        self._cooling = cooling
        self._latency = latency or (lambda _id: None)
        self._deployment_ids = {
            m.name: tuple(d.id for d in m.deployments) for m in fleet.models.values()
        }
        # A request within every model's context window that asks for nothing special
        # (tools, images, JSON schema, an output limit) fits every model: no check needed.
        self._smallest_window = min((m.context_window for m in fleet.models.values()), default=0)

    def decide(
        self,
        request: ChatRequest,
        *,
        features: RequestFeatures | None = None,
        min_tier: str | None = None,
        context: RequestContext | None = None,
    ) -> Decision:
        """Decide for one request; raises `NotFound`, `BadRequest`, `PermissionDenied` or
        `NoCandidates` (never performs I/O)."""
        f = features or extract_features(request)
        ctx = context or _NO_CONTEXT
        if min_tier is not None and min_tier != ctx.min_tier:
            ctx = replace(ctx, min_tier=min_tier)
        if ctx.min_tier is not None and ctx.min_tier not in self._rank:
            raise BadRequest(f"unknown tier {ctx.min_tier!r}; tiers are {list(self.fleet.tiers)}")
        target = request.model
        model = self.fleet.models.get(target)
        if model is not None:
            return self._direct(model, f, ctx)
        if target.startswith(TIER_PREFIX):
            tier = target[len(TIER_PREFIX) :]
            if tier not in self._rank:
                raise NotFound(
                    f"unknown tier {tier!r}; tiers are {list(self.fleet.tiers)}", param="model"
                )
            auto = self.routes.get("auto")
            eff = effective_policy(_NO_POLICY, ctx, self._rank, ctx.tags)
            return self._finish(
                target, "tier", tier, [f"requested {target}"], f, auto, ctx, eff, tier_up=True
            )
        route = self.routes.get(target)
        if route is None:
            raise NotFound(f"unknown model or route {target!r}; see GET /v1/models", param="model")
        return self._route(route, f, ctx)

    # -- strategies ------------------------------------------------------------------------

    def _route(self, route: Route, f: RequestFeatures, ctx: RequestContext) -> Decision:
        reasons: list[str] = []
        path: list[str] = []
        tier: str | None = None
        models: tuple[Model, ...] | None = None
        prefer: Model | None = None
        pending: str | None = None
        eff = effective_policy(route.policy, ctx, self._rank, ctx.tags)
        for strategy in route.strategies:
            path.append(strategy)
            if strategy == "static":
                for rule in route.static:
                    why = rule.match(ctx)
                    if why is not None:
                        tier, models = rule.tier, rule.models
                        reasons.append(f"static: {why} \u2192 {rule.target()}")
                        break
                else:
                    if route.models is not None:
                        models = route.models
                        reasons.append(f"static: models {', '.join(m.name for m in models)}")
                    elif route.tier is not None:
                        tier = route.tier
                        reasons.append(f"static: tier {tier}")
                    else:
                        reasons.append("static: no match")
                if models is not None:
                    tier = models[0].tier
                if tier is not None:
                    break
            elif strategy == "rules":
                picked = route.rules.decide(f, ctx.tags)
                if picked is not None:
                    tier = picked[0]
                    reasons.append(f"rules: {picked[1]} \u2192 {tier}")
                    break
                reasons.append("rules: no rule matched")
            elif strategy == "classifier" and route.classifier is not None:
                verdict = ctx.classifier
                if verdict is None:
                    pending = "classifier"
                    reasons.append("classifier: skipped (not run)")
                    continue
                if verdict.label is None or verdict.label not in route.classifier.labels:
                    tier = route.default_tier
                    reasons.append(f"classifier: {verdict.note} \u2192 default tier {tier}")
                else:
                    tier = route.classifier.labels[verdict.label]
                    reasons.append(f"classifier: {verdict.label} ({verdict.note}) \u2192 {tier}")
                break
            elif strategy == "learned" and route.learned is not None:
                pool = self._pool(self.fleet.tiers, f, ctx, eff, self._floor_rank(eff))
                choice = route.learned.choose(
                    f.text, pool, f.expected_output_tokens, f.prompt_tokens
                )
                if choice is None:
                    reasons.append("learned: the router knows no capable candidate")
                    continue
                prefer, tier = choice.model, choice.model.tier
                reasons.append(
                    f"learned: {choice.model.name} predicted {choice.quality:.2f} "
                    f"(best {choice.best_model} {choice.best_quality:.2f}, "
                    f"tolerance {route.learned.tolerance:g}) \u2192 {tier}"
                )
                break
        if tier is None:
            tier = route.default_tier
            reasons.append(f"default tier {tier}")
        if route.execution != "direct":
            path.append(route.execution)
        tier = self._apply_floors(tier, eff, reasons)
        if models is not None and any(self._rank[m.tier] < self._rank[tier] for m in models):
            models = None  # the static list is below the floor: fall back to the tier
        if prefer is not None and prefer.tier != tier:
            prefer = None
        if (
            route.learned is not None
            and prefer is None
            and models is None
            and "learned" in route.strategies
            and "learned" not in path
        ):
            # An earlier strategy chose the tier; the learned router refines the model in it.
            path.append("learned")
            pool = self._pool((tier,), f, ctx, eff, self._rank[tier])
            choice = route.learned.choose(f.text, pool, f.expected_output_tokens, f.prompt_tokens)
            if choice is not None and len(pool) > 1:
                prefer = choice.model
                reasons.append(
                    f"learned: {prefer.name} predicted {choice.quality:.2f} in {tier} "
                    f"(best {choice.best_model} {choice.best_quality:.2f})"
                )
        strategy = ">".join(path)
        if models is not None:
            decision = self._finish_models(route, strategy, reasons, f, ctx, eff, models)
        else:
            escalate = route.fallback.tier_up or route.execution != "direct"
            decision = self._finish(
                route.name,
                strategy,
                tier,
                reasons,
                f,
                route,
                ctx,
                eff,
                tier_up=escalate,
                prefer=prefer,
            )
        decision.execution = route.execution
        decision.pending = pending
        return decision

    def _direct(self, model: Model, f: RequestFeatures, ctx: RequestContext) -> Decision:
        if ctx.allowed_models and model.name not in ctx.allowed_models:
            raise PermissionDenied(f"this key may not use model {model.name}")
        if ctx.allowed_tiers and model.tier not in ctx.allowed_tiers:
            raise PermissionDenied(f"this key may not use tier {model.tier}")
        problem = self._unfit(model, f)
        if problem:
            raise BadRequest(f"model {model.name} cannot serve this request: {problem}")
        return Decision(
            route=model.name,
            strategy="model",
            tier=model.tier,
            candidates=(model,),
            reasons=[f"requested model {model.name}"],
            estimated_cost_usd=model.estimate_cost(f.prompt_tokens, f.expected_output_tokens),
            baseline=self.routes["auto"].baseline if "auto" in self.routes else model,
            prompt_tokens=f.prompt_tokens,
            expected_output_tokens=f.expected_output_tokens,
        )

    # -- policies --------------------------------------------------------------------------

    def _floor_rank(self, eff: Effective) -> int:
        return self._rank[eff.min_tier] if eff.min_tier is not None else 0

    def _apply_floors(self, tier: str, eff: Effective, reasons: list[str]) -> str:
        rank = self._rank
        if eff.min_tier is not None and rank[eff.min_tier] > rank[tier]:
            tier = eff.min_tier
            reasons.append(f"policy: {eff.min_tier_why} requires minimum tier {tier}")
        if eff.max_tier is not None and rank[tier] > rank[eff.max_tier]:
            if eff.min_tier is not None and rank[eff.min_tier] > rank[eff.max_tier]:
                raise BadRequest(
                    f"minimum tier {eff.min_tier} is above this route's maximum {eff.max_tier}"
                )
            tier = eff.max_tier
            reasons.append(f"policy: maximum tier {tier}")
        return tier

    def _allowed(self, model: Model, ctx: RequestContext, eff: Effective) -> bool:
        if eff.blocked and model.name in eff.blocked:
            return False
        if ctx.allowed_models and model.name not in ctx.allowed_models:
            return False
        return not ctx.allowed_tiers or model.tier in ctx.allowed_tiers

    def _pool(
        self,
        tiers: Sequence[str],
        f: RequestFeatures,
        ctx: RequestContext,
        eff: Effective,
        floor: int,
    ) -> list[Model]:
        """Capable, allowed models of the given tiers (not below `floor`), in tier order."""
        rank = self._rank
        ceiling = rank[eff.max_tier] if eff.max_tier is not None else len(rank)
        # Nothing to filter out: a tier of one model needs neither checks nor ordering.
        open_ = (
            eff is NO_POLICY
            and not ctx.allowed_models
            and not ctx.allowed_tiers
            and self._fits_all(f)
        )
        by_tier = self.fleet.by_tier
        out: list[Model] = []
        for t in tiers:
            if not floor <= rank[t] <= ceiling:
                continue
            models = by_tier[t]
            if open_ and len(models) < 2:
                out.extend(models)
            else:
                out.extend(self._order(models, f, ctx, eff))
        return out

    # -- candidates ------------------------------------------------------------------------

    def _unfit(self, model: Model, f: RequestFeatures) -> str | None:
        needed = f.prompt_tokens + (f.max_output_tokens or 0)
        if needed > model.context_window:
            return f"~{needed} tokens exceed its context window of {model.context_window}"
        if (
            f.max_output_tokens is not None
            and model.max_output
            and (f.max_output_tokens > model.max_output)
        ):
            return f"max_tokens {f.max_output_tokens} exceeds its limit of {model.max_output}"
        if f.has_tools and not model.supports("tools"):
            return "no tool support"
        if f.has_images and not model.supports("vision"):
            return "no image input"
        if f.wants_json_schema and not model.supports("json_schema"):
            return "no json_schema output"
        return None

    def _out(self, model: Model) -> bool:
        """True when every deployment of the model is cooling down."""
        cooling = self._cooling
        return cooling is not None and all(map(cooling, self._deployment_ids[model.name]))

    def _fits_all(self, f: RequestFeatures) -> bool:
        """True when `_unfit` is None for every model of the fleet (checked cheaply)."""
        return (
            f.max_output_tokens is None
            and f.prompt_tokens <= self._smallest_window
            and not (f.has_tools or f.has_images or f.wants_json_schema)
        )

    def _order(
        self, models: Sequence[Model], f: RequestFeatures, ctx: RequestContext, eff: Effective
    ) -> list[Model]:
        """Capable, allowed models, cheapest first for this request's tokens; cooling last."""
        if eff is NO_POLICY and not ctx.allowed_models and not ctx.allowed_tiers:
            fit = [m for m in models if self._unfit(m, f) is None]
        else:
            fit = [m for m in models if self._unfit(m, f) is None and self._allowed(m, ctx, eff)]
        if len(fit) < 2:
            return fit
        p, o = f.prompt_tokens, f.expected_output_tokens
        return sorted(fit, key=lambda m: (self._out(m), m.estimate_cost(p, o), m.name))

    def _p50(self, model: Model) -> float | None:
        seen = [x for d in model.deployments if (x := self._latency(d.id)) is not None]
        return min(seen) if seen else None

    def _refine(
        self,
        candidates: list[Model],
        tier: str,
        f: RequestFeatures,
        ctx: RequestContext,
        eff: Effective,
        reasons: list[str],
    ) -> list[Model]:
        """Apply the cost cap and the latency budget, and report cooling candidates (and the
        blocked models of the chosen tier: the reason says why one was passed over)."""
        if eff.blocked:
            for model in self.fleet.by_tier.get(tier, ()):
                if model.name in eff.blocked:
                    reasons.append(f"policy: {eff.blocked_why[model.name]} blocks {model.name}")
        if eff.max_cost_usd is not None:
            out_tokens = f.max_output_tokens or f.expected_output_tokens
            cap = eff.max_cost_usd

            def fits(m: Model) -> bool:
                return m.estimate_cost(f.prompt_tokens, out_tokens) <= cap

            kept = [m for m in candidates if fits(m)]
            if not kept:
                # Nothing in the decided tier or above fits: a cheaper tier (never below the
                # floor) serves rather than refusing, and the reason says so.
                lower = self.fleet.tiers[self._floor_rank(eff) : self._rank[tier]]
                kept = [m for m in self._pool(lower[::-1], f, ctx, eff, 0) if fits(m)]
                if not kept:
                    raise BadRequest(
                        f"no allowed model can serve this request within the maximum cost of "
                        f"${cap:g} (~{f.prompt_tokens} prompt + {out_tokens} output tokens)",
                        code="max_cost_exceeded",
                    )
            dropped = [m.name for m in candidates if m not in kept]
            if dropped:
                reasons.append(f"policy: max cost ${cap:g} drops {', '.join(dropped)}")
            candidates = kept
        if eff.latency_budget_ms is not None and len(candidates) > 1:
            budget = eff.latency_budget_ms
            slow = []
            for m in candidates:
                p50 = self._p50(m)
                if p50 is not None and p50 > budget:
                    slow.append(m)
            if slow and len(slow) < len(candidates):
                candidates = [m for m in candidates if m not in slow] + slow
                reasons.append(
                    f"policy: latency budget {budget:g} ms moves "
                    + ", ".join(f"{m.name} (p50 {self._p50(m):.0f} ms)" for m in slow)
                    + " back"
                )
        cooling = [m.name for m in candidates if self._out(m)] if self._cooling else []
        if cooling:
            if cooling[0] == candidates[0].name:
                reasons.append(f"{cooling[0]}: every deployment is cooling down")
            else:
                reasons.append(f"cooling down, tried last: {', '.join(cooling)}")
        return candidates

    def _finish(
        self,
        route_name: str,
        strategy: str,
        tier: str,
        reasons: list[str],
        f: RequestFeatures,
        route: Route | None,
        ctx: RequestContext,
        eff: Effective,
        *,
        tier_up: bool,
        prefer: Model | None = None,
    ) -> Decision:
        if ctx.allowed_tiers and tier not in ctx.allowed_tiers:
            above = [t for t in self.fleet.tiers_from(tier) if t in ctx.allowed_tiers]
            if not above:
                raise PermissionDenied(f"this key may not use tier {tier} or any tier above it")
            reasons.append(f"key allows {', '.join(sorted(ctx.allowed_tiers))}: using {above[0]}")
            tier = above[0]
        tiers = self._tiers_from[tier] if tier_up else (tier,)
        candidates = self._pool(tiers, f, ctx, eff, self._rank[tier])
        if prefer is not None and prefer in candidates:
            candidates.remove(prefer)
            candidates.insert(0, prefer)
        if not candidates:
            raise NoCandidates(f"no allowed model in tier {tier} or above can serve this request")
        candidates = self._refine(candidates, tier, f, ctx, eff, reasons)
        chosen = candidates[0]
        if chosen.tier != tier:
            if self._rank[chosen.tier] > self._rank[tier]:
                reasons.append(f"no capable model in {tier}: using {chosen.tier}")
            tier = chosen.tier
        return self._decision(route_name, strategy, tier, candidates, reasons, f, route)

    def _finish_models(
        self,
        route: Route,
        strategy: str,
        reasons: list[str],
        f: RequestFeatures,
        ctx: RequestContext,
        eff: Effective,
        models: tuple[Model, ...],
    ) -> Decision:
        candidates = [m for m in models if self._unfit(m, f) is None and self._allowed(m, ctx, eff)]
        if not candidates:
            raise NoCandidates(f"no model of route {route.name} can serve this request")
        candidates = self._refine(candidates, candidates[0].tier, f, ctx, eff, reasons)
        return self._decision(
            route.name, strategy, candidates[0].tier, candidates, reasons, f, route
        )

    def _decision(
        self,
        route_name: str,
        strategy: str,
        tier: str,
        candidates: list[Model],
        reasons: list[str],
        f: RequestFeatures,
        route: Route | None,
    ) -> Decision:
        chosen = candidates[0]
        return Decision(
            route=route_name,
            strategy=strategy,
            tier=tier,
            candidates=tuple(candidates),
            reasons=reasons,
            estimated_cost_usd=chosen.estimate_cost(f.prompt_tokens, f.expected_output_tokens),
            baseline=route.baseline if route is not None else self.fleet.flagship,
            prompt_tokens=f.prompt_tokens,
            expected_output_tokens=f.expected_output_tokens,
        )
