"""`GET /v1/models` and the health endpoints."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tiergate.errors import TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress.errors import error_response

_encoder = msgspec.json.Encoder()


def _json(data: object, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        gateway.keys.authenticate(request.headers)
    except TiergateError as exc:
        return error_response(exc)
    data: list[dict[str, object]] = []
    for model in gateway.fleet.models.values():
        data.append(
            {
                "id": model.name,
                "object": "model",
                "created": 0,
                "owned_by": "tiergate",
                "tiergate": {
                    "kind": "model",
                    "tier": model.tier,
                    "price_per_mtok": {
                        "input": model.price.input,
                        "output": model.price.output,
                        "cached_input": model.price.cached_input,
                    },
                    "context_window": model.context_window,
                    "capabilities": sorted(model.capabilities),
                    "deployments": [d.id for d in model.deployments],
                },
            }
        )
    for route in gateway.routes.values():
        data.append(
            {
                "id": route.name,
                "object": "model",
                "created": 0,
                "owned_by": "tiergate",
                "tiergate": {
                    "kind": "route",
                    "strategy": list(route.strategies),
                    "default_tier": route.default_tier,
                    "baseline": route.baseline.name,
                },
            }
        )
    for tier in gateway.fleet.tiers:
        data.append(
            {
                "id": f"tier:{tier}",
                "object": "model",
                "created": 0,
                "owned_by": "tiergate",
                "tiergate": {
                    "kind": "tier",
                    "models": [m.name for m in gateway.fleet.by_tier[tier]],
                },
            }
        )
    return _json({"object": "list", "data": data})


async def live(request: Request) -> Response:
    return _json({"status": "ok"})


async def ready(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    deployments = {dep_id: health.state for dep_id, health in gateway.health.snapshot().items()}
    ok = gateway.ready
    body: dict[str, object] = {
        "status": "ready" if ok else "not ready",
        "models": len(gateway.fleet.models),
        "routes": sorted(gateway.routes),
        "deployments": deployments,
    }
    if gateway.cluster is not None:  # still ready without Redis: degraded, and it says so
        body["cluster"] = gateway.cluster.describe()
    describe_ledger = getattr(gateway.ledger, "describe", None)
    if describe_ledger is not None:  # the spooled ledger: its backlog and the database
        body["ledger"] = describe_ledger()
    return _json(body, 200 if ok else 503)
