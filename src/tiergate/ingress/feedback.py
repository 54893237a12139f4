"""`POST /v1/feedback`: a user's verdict on one answer, by its `x-tiergate-request-id`."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tiergate.errors import BadRequest, NotFound, TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress.body import read_body
from tiergate.ingress.errors import error_response


async def feedback(request: Request) -> Response:
    """Body ``{"request_id": ..., "score": 0..1}`` or ``{"request_id": ..., "thumbs": "up"}``."""
    gateway: Gateway = request.app.state.gateway
    try:
        key = gateway.keys.authenticate(request.headers)
        obs = gateway.observability
        if obs is None or obs.quality is None:
            raise NotFound("quality monitoring is off in this gateway", code="not_found")
        body = await read_body(request, gateway.config.server)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadRequest("the body is not valid JSON") from None
        accepted = obs.quality.feedback(data, key.name if key else None)
    except TiergateError as exc:
        return error_response(exc)
    return Response(
        orjson.dumps({"object": "feedback", "status": "recorded", **accepted}),
        media_type="application/json",
    )
