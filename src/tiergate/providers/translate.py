"""Pure helpers the `anthropic` and `gemini` adapters share.

Both protocols rebuild a conversation from canonical messages (text and image parts,
system text kept apart, consecutive same-role turns merged), carry tool-call arguments as
JSON objects rather than strings, and answer with text plus calls. The wire shapes differ;
these steps do not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import msgspec

from tiergate.chat import ChatRequest, ImagePart, Message, ResponseMessage, ToolCall
from tiergate.errors import BadRequest, UpstreamError
from tiergate.fleet import Provider

T = TypeVar("T")
Piece = dict[str, Any]
"""One content block (Anthropic) or part (Gemini), as it goes on the wire."""

_encoder = msgspec.json.Encoder()


# -- canonical -> wire ---------------------------------------------------------------------


def image_source(part: ImagePart, where: str, accepted: Collection[str]) -> tuple[str, str] | str:
    """A canonical image as `(media_type, base64 data)` from a `data:` URL, or the http(s)
    URL itself. Raises `BadRequest` for anything else, or a type not in `accepted`."""
    url = part.image_url.url
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64":
            raise BadRequest(f"{where}: image data URLs must be base64-encoded", param=where)
        check_image_type(media_type, accepted, where)
        return media_type, data
    if url.startswith(("https://", "http://")):
        return url
    raise BadRequest(f"{where}: image_url must be a data: URL or an http(s) URL", param=where)


def check_image_type(media_type: str, accepted: Collection[str], where: str) -> None:
    """Raises `BadRequest` naming the accepted types when the provider does not take this one."""
    if media_type not in accepted:
        raise BadRequest(
            f"{where}: image type {media_type!r} is not supported "
            f"(use one of {', '.join(sorted(accepted))})",
            param=where,
        )


def content_pieces(
    message: Message,
    where: str,
    text: Callable[[str], Piece],
    image: Callable[[ImagePart, str], Piece],
) -> list[Piece]:
    """A message's text and image parts in order; empty text is left out (both APIs
    reject empty text)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [text(message.content)] if message.content else []
    pieces: list[Piece] = []
    for k, part in enumerate(message.content):
        if isinstance(part, ImagePart):
            pieces.append(image(part, f"{where}.content[{k}]"))
        elif part.text:
            pieces.append(text(part.text))
    return pieces


def system_text(message: Message, where: str) -> str:
    """The text of a system or developer message (images there are a `BadRequest`)."""
    if message.has_image():
        raise BadRequest(f"{where}: system messages cannot contain images", param=where)
    return message.text()


def add_turn(turns: list[Piece], role: str, key: str, pieces: list[Piece]) -> None:
    """Append a turn, merged into the previous one when the role repeats (both APIs want
    alternating turns)."""
    if not pieces:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(pieces)
    else:
        turns.append({"role": role, key: pieces})


def require_turns(turns: list[Piece]) -> None:
    if not turns:
        raise BadRequest("messages: at least one user message with content is required")


def tool_arguments(arguments: str, where: str) -> Any:
    """A tool call's JSON arguments as the object both APIs want."""
    if not arguments.strip():
        return {}  # some clients send "" for a call without arguments
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        raise BadRequest(f"{where}: tool call arguments are not valid JSON", param=where) from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: tool call arguments must be a JSON object", param=where)
    return value


def forced_tool(request: ChatRequest, names: Collection[str]) -> str:
    """The function `tool_choice` forces; a `BadRequest` when it is not among `names`."""
    choice = request.tool_choice
    assert choice is not None and not isinstance(choice, str)
    name = choice.function.name
    if name not in names:
        raise BadRequest(f"tool_choice names {name!r}, which is not in tools", param="tool_choice")
    return name


def key_headers(provider: Provider, key_header: str) -> dict[str, str]:
    """JSON content type, the provider's configured headers, and its key under `key_header`."""
    headers = {"content-type": "application/json", **dict(provider.headers)}
    if provider.api_key:
        headers[key_header] = provider.api_key
    return headers


# -- wire -> canonical ---------------------------------------------------------------------


def decode_upstream(decoder: msgspec.json.Decoder[T], data: bytes | str, what: str) -> T:
    """Decode an upstream body or stream event; garbage is an `UpstreamError` (retryable)."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise UpstreamError(f"upstream sent an unreadable {what}: {exc}") from None


def arguments_text(raw: msgspec.Raw) -> str:
    """A call's JSON arguments object as canonical arguments: compact JSON, key order kept."""
    value = msgspec.json.decode(raw) if bytes(raw).strip() else None
    if value is None:
        return "{}"
    # Re-encoding normalises whitespace only: dicts keep their order, numbers their value.
    return _encoder.encode(value).decode()


def answer(text: list[str], calls: list[ToolCall]) -> ResponseMessage:
    """The assistant message: no content when the answer is only tool calls."""
    return ResponseMessage(
        content="".join(text) if text or not calls else None, tool_calls=calls or None
    )
