"""The one place errors become HTTP responses: the OpenAI error envelope."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from tiergate.errors import AllAttemptsFailed, RateLimited, TiergateError, UpstreamRejected

_encoder = msgspec.json.Encoder()


def error_body(message: str, error_type: str, code: str | None, param: str | None) -> bytes:
    return _encoder.encode(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def error_response(exc: TiergateError, headers: dict[str, str] | None = None) -> Response:
    status = exc.status
    if isinstance(exc, UpstreamRejected):
        status = exc.client_status  # the upstream said the request is bad: say so as it did
    out = dict(headers or {})
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimited | AllAttemptsFailed) and retry_after is not None:
        out["retry-after"] = str(max(int(retry_after + 0.999), 1))
    body = error_body(exc.message, exc.error_type, exc.code, exc.param)
    return Response(body, status_code=status, headers=out, media_type="application/json")
