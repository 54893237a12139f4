"""The admin API for virtual keys (admin key from `TIERGATE_ADMIN_KEY` or
`observability.admin_key`, in any of the headers a normal key may use).

- `GET /admin/keys` — every key (never the secret; a short hint instead).
- `POST /admin/keys` — `{"name", "budget_usd", "period", "rpm", "tpm", "models",
  "tiers", "routes"}`; answers 201 with the new secret in `key`, shown this once.
- `DELETE /admin/keys/{name}` — revoke; effective at once on this instance and within
  `store.refresh_interval` seconds on every other one.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tiergate.auth.sync import KeySync
from tiergate.errors import BadRequest, NotFound, TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress.operator import audited, refusal, require_admin
from tiergate.store.keys import KeySpec

_encoder = msgspec.json.Encoder()
_ACTOR = "admin-api"  # who the audit log says acted


class _CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    budget_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    period: str = "month"
    rpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    models: list[str] = []
    tiers: list[str] = []
    routes: list[str] = []


def _key_sync(request: Request) -> KeySync:
    gateway: Gateway = request.app.state.gateway
    require_admin(request, gateway.observability, what="the admin API", actor=_ACTOR)
    sync = gateway.tenants.key_sync
    if sync is None:
        raise NotFound("no key store is configured (ledger.url or store.url)", code="not_found")
    return sync


def _json(data: object, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


async def list_keys(request: Request) -> Response:
    try:
        sync = _key_sync(request)
        keys = await sync.list()
    except TiergateError as exc:
        return refusal(exc)
    return _json({"object": "list", "data": [k.public() for k in keys]})


async def create_key(request: Request) -> Response:
    try:
        sync = _key_sync(request)
        try:
            body = msgspec.json.decode(await request.body(), type=_CreateKey)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BadRequest(f"invalid key request: {exc}") from None
        spec = KeySpec(
            name=body.name,
            budget_usd=body.budget_usd,
            period=body.period,
            rpm=body.rpm,
            tpm=body.tpm,
            models=tuple(body.models),
            tiers=tuple(body.tiers),
            routes=tuple(body.routes),
        )
        secret, stored = await sync.create(spec)
    except TiergateError as exc:
        return refusal(exc)
    audited(request, "key.create", spec.name, actor=_ACTOR, details=stored.public())
    return _json({"key": secret, **stored.public()}, status=201)


async def revoke_key(request: Request) -> Response:
    try:
        sync = _key_sync(request)
        name = request.path_params["name"]
        stored = await sync.revoke(name)
        if stored is None:
            raise NotFound(f"no key named {name!r}", code="not_found")
    except TiergateError as exc:
        return refusal(exc)
    audited(request, "key.revoke", name, actor=_ACTOR)
    return _json(stored.public())


def routes() -> list[Route]:
    """The admin API's routes, for `create_app`."""
    return [
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys/{name:path}", revoke_key, methods=["DELETE"]),
    ]
