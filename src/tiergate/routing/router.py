"""The routing decision: a pure function over tables prepared when the config loads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tiergate.chat import ChatRequest
from tiergate.errors import BadRequest, NoCandidates, NotFound
from tiergate.fleet import Fleet, Model
from tiergate.routing.decision import Decision
from tiergate.routing.features import RequestFeatures, extract_features
from tiergate.routing.route import Route
from tiergate.routing.rules import decide_tier

TIER_PREFIX = "tier:"


class Router:
    """Decides tier and candidate order for each request. No I/O."""

    def __init__(
        self,
        fleet: Fleet,
        routes: dict[str, Route],
        cooling: Callable[[str], bool] | None = None,
    ):
        self.fleet = fleet
        self.routes = routes
        # Health hook: a deployment id -> True while it is out (circuit open).
        self._cooling = cooling or (lambda _id: False)

    def decide(
        self,
        request: ChatRequest,
        *,
        features: RequestFeatures | None = None,
        min_tier: str | None = None,
    ) -> Decision:
        f = features or extract_features(request)
        target = request.model
        if min_tier is not None and min_tier not in self.fleet.tiers:
            raise BadRequest(f"unknown tier {min_tier!r}; tiers are {list(self.fleet.tiers)}")
        model = self.fleet.models.get(target)
        if model is not None:
            return self._direct(model, f)
        if target.startswith(TIER_PREFIX):
            tier = target[len(TIER_PREFIX) :]
            if tier not in self.fleet.tiers:
                raise NotFound(
                    f"unknown tier {tier!r}; tiers are {list(self.fleet.tiers)}", param="model"
                )
            route = self.routes.get("auto")
            tier = self._raise_to(tier, min_tier)
            return self._finish(
                target, "tier", tier, [f"requested {target}"], f, route, tier_up=True
            )
        route = self.routes.get(target)
        if route is None:
            raise NotFound(f"unknown model or route {target!r}; see GET /v1/models", param="model")
        return self._route(route, f, min_tier)

    # -- strategies ------------------------------------------------------------------------

    def _route(self, route: Route, f: RequestFeatures, min_tier: str | None) -> Decision:
        reasons: list[str] = []
        path: list[str] = []
        tier: str | None = None
        models: tuple[Model, ...] | None = None
        for strategy in route.strategies:
            path.append(strategy)
            if strategy == "static":
                if route.models is not None:
                    models = route.models
                    tier = models[0].tier
                    reasons.append(f"static: models {[m.name for m in models]}")
                else:
                    tier = route.tier
                    reasons.append(f"static: tier {tier}")
                break
            if strategy == "rules":
                picked = decide_tier(route.rules, f)
                if picked is not None:
                    tier = picked[0]
                    reasons.append(f"rules: {picked[1]} -> {tier}")
                    break
                reasons.append("rules: no rule matched")
        if tier is None:
            tier = route.default_tier
            reasons.append(f"default tier {tier}")
        raised = self._raise_to(tier, min_tier)
        if raised != tier:
            reasons.append(f"minimum tier {raised}")
            tier, models = raised, None
        strategy = ">".join(path)
        if models is not None:
            return self._finish_models(route.name, strategy, tier, reasons, f, route, models)
        return self._finish(
            route.name, strategy, tier, reasons, f, route, tier_up=route.fallback.tier_up
        )

    def _direct(self, model: Model, f: RequestFeatures) -> Decision:
        reasons = [f"requested model {model.name}"]
        problem = self._unfit(model, f)
        if problem:
            raise BadRequest(f"model {model.name} cannot serve this request: {problem}")
        return Decision(
            route=model.name,
            strategy="model",
            tier=model.tier,
            candidates=(model,),
            reasons=reasons,
            estimated_cost_usd=model.estimate_cost(f.prompt_tokens, f.expected_output_tokens),
            baseline=self.routes["auto"].baseline if "auto" in self.routes else model,
            prompt_tokens=f.prompt_tokens,
            expected_output_tokens=f.expected_output_tokens,
        )

    # -- candidates ------------------------------------------------------------------------

    def _raise_to(self, tier: str, min_tier: str | None) -> str:
        if min_tier is None:
            return tier
        rank = self.fleet.tier_rank
        return min_tier if rank(min_tier) > rank(tier) else tier

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

    def _order(self, models: Sequence[Model], f: RequestFeatures) -> list[Model]:
        """Capable models, cheapest first for this request's expected tokens; cooling last."""
        fit = [m for m in models if self._unfit(m, f) is None]

        def key(m: Model) -> tuple[bool, float, str]:
            out = all(self._cooling(d.id) for d in m.deployments)
            return (out, m.estimate_cost(f.prompt_tokens, f.expected_output_tokens), m.name)

        return sorted(fit, key=key)

    def _finish(
        self,
        route_name: str,
        strategy: str,
        tier: str,
        reasons: list[str],
        f: RequestFeatures,
        route: Route | None,
        *,
        tier_up: bool,
    ) -> Decision:
        tiers = self.fleet.tiers_from(tier) if tier_up else (tier,)
        candidates: list[Model] = []
        for t in tiers:
            candidates.extend(self._order(self.fleet.by_tier[t], f))
        if not candidates:
            raise NoCandidates(f"no model in tier {tier} or above can serve this request")
        chosen = candidates[0]
        if chosen.tier != tier:
            reasons.append(f"no capable model in {tier}: using {chosen.tier}")
            tier = chosen.tier
        return self._decision(route_name, strategy, tier, candidates, reasons, f, route)

    def _finish_models(
        self,
        route_name: str,
        strategy: str,
        tier: str,
        reasons: list[str],
        f: RequestFeatures,
        route: Route,
        models: tuple[Model, ...],
    ) -> Decision:
        candidates = [m for m in models if self._unfit(m, f) is None]
        if not candidates:
            raise NoCandidates(f"no model of route {route_name} can serve this request")
        return self._decision(
            route_name, strategy, candidates[0].tier, candidates, reasons, f, route
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
