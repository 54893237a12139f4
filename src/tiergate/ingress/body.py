"""Reading a request body safely: content type, size limit before reading it all, JSON."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from tiergate.config.schema import ServerConfig
from tiergate.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from tiergate.ingress.limits import check_json_depth


def check_body_headers(headers: Mapping[str, str], limit: int) -> int | None:
    """Before reading anything: 415 unless the body is declared as JSON (or not declared),
    413 when the declared Content-Length is over `limit`. Returns that length, if any."""
    ctype = headers.get("content-type")
    if ctype is not None:
        media = ctype.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(f"content-type must be application/json, not {media!r}")
    declared = headers.get("content-length")
    if declared is None:
        return None
    try:
        size = int(declared)
    except ValueError:
        raise BadRequest("invalid content-length header") from None
    if size > limit:
        raise PayloadTooLarge(f"request body of {size} bytes is over the {limit}-byte limit")
    return size


def over_limit(limit: int) -> PayloadTooLarge:
    """The 413 for a body that passed the limit while it arrived."""
    return PayloadTooLarge(f"request body is over the {limit}-byte limit")


def check_body(body: bytes, server: ServerConfig) -> bytes:
    """After reading: 400 for an empty body, or one nested deeper than the limit (before any
    decoder recurses into it)."""
    if not body:
        raise BadRequest("the request body is empty; send a JSON object")
    check_json_depth(body, server.max_json_depth)
    return body


async def read_body(request: Request, server: ServerConfig) -> bytes:
    """The raw body, refused with 413 as soon as it passes the limit (never read whole), and
    with 400 when it nests deeper than the limit (before any decoder recurses into it)."""
    limit = server.max_body_bytes
    if check_body_headers(request.headers, limit) is not None:
        body = await request.body()
    else:
        parts: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise over_limit(limit)
            parts.append(chunk)
        body = b"".join(parts)
    return check_body(body, server)
