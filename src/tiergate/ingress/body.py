"""Reading a request body safely: content type, size limit before reading it all, JSON."""

from __future__ import annotations

from starlette.requests import Request

from tiergate.config.schema import ServerConfig
from tiergate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tiergate.ingress.limits import check_json_depth


async def read_body(request: Request, server: ServerConfig) -> bytes:
    """The raw body, refused with 413 as soon as it passes the limit (never read whole), and
    with 400 when it nests deeper than the limit (before any decoder recurses into it)."""
    ctype = request.headers.get("content-type")
    if ctype is not None:
        media = ctype.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(f"content-type must be application/json, not {media!r}")
    limit = server.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("invalid content-length header") from None
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes is over the {limit}-byte limit")
        body = await request.body()
    else:
        parts: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"request body is over the {limit}-byte limit")
            parts.append(chunk)
        body = b"".join(parts)
    if not body:
        raise BadRequest("the request body is empty; send a JSON object")
    check_json_depth(body, server.max_json_depth)
    return body
