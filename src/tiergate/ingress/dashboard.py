"""The operator's views: `GET /metrics` (Prometheus) and the web dashboard.

The dashboard page and its assets are static files shipped in the package; they hold no
data. The data comes from `GET /dashboard/api/summary`, which wants the admin key
(`TIERGATE_ADMIN_KEY`) as a Bearer header. The key is never accepted in a URL: URLs end up
in access logs, browser history and Referer headers.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tiergate.errors import NotFound, TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress.errors import error_response
from tiergate.ingress.operator import refusal, require_admin, require_metrics_token
from tiergate.observability.hub import Observability
from tiergate.observability.metrics import CONTENT_TYPE

_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page needs comes from this origin; nothing may frame it.
_PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def _observability(request: Request) -> Observability:
    gateway: Gateway = request.app.state.gateway
    if gateway.observability is None:
        raise NotFound("observability is off in this gateway", code="not_found")
    return gateway.observability


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics (GET and HEAD: one route)."""
    try:
        obs = _observability(request)
        require_metrics_token(request, obs)
        if obs.metrics is None:
            raise NotFound("metrics are off (observability.metrics: false)", code="not_found")
    except TiergateError as exc:
        return refusal(exc)
    return Response(obs.metrics.render(), media_type=CONTENT_TYPE)


def _asset(name: str) -> bytes:
    return resources.files("tiergate.observability").joinpath("dashboard", name).read_bytes()


async def page(request: Request) -> Response:
    """The dashboard's HTML shell (asks for the admin key; holds no data)."""
    return Response(
        _asset("index.html"), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS
    )


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    media = _ASSETS.get(name)
    if media is None:
        return error_response(NotFound(f"no such asset: {name}", code="not_found"))
    return Response(_asset(name), media_type=media, headers=_PAGE_HEADERS)


async def summary(request: Request) -> Response:
    """Everything the dashboard shows, as JSON."""
    try:
        obs = _observability(request)
        require_admin(request, obs, what="the dashboard", actor="dashboard")
    except TiergateError as exc:
        return refusal(exc)
    return Response(
        orjson.dumps(dashboard_data(request.app.state.gateway, obs)),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def dashboard_data(gateway: Gateway, obs: Observability) -> dict[str, Any]:
    """The aggregator's summary, quality and circuit state; free text redacted."""
    data = obs.aggregator.summary()
    redact = obs.redactor
    for row in data["recent"]:
        row["reasons"] = redact(row["reasons"])
        if row["error"]:
            row["error"] = redact(row["error"])
    quality = obs.quality
    data["quality"] = quality.rows() if quality is not None else []
    data["alerts"] = quality.alerts() if quality is not None else []
    data["judge"] = (
        {"model": quality.judge.config.model, "sample": quality.judge.config.sample}
        if quality is not None and quality.judge is not None
        else None
    )
    data["circuits"] = {
        dep: health.state for dep, health in sorted(gateway.health.snapshot().items())
    }
    data["routes"] = sorted(gateway.routes)
    return data
