"""The contract every protocol module fulfils, and what they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from tiergate.fakes.answer import Plan
from tiergate.fakes.prompt import Prompt, WireProtocol

JSON = "application/json"
SSE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An HTTP error response: status, body and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)


class Wire(Protocol):
    """Parsing and rendering for one wire protocol; no I/O."""

    name: WireProtocol

    def check_headers(
        self, headers: Mapping[str, str], query: Mapping[str, str], api_key: str | None
    ) -> ErrorAnswer | None:
        """The error for a missing or wrong key or required header, else ``None``."""
        ...

    def parse(self, body: Any, path_model: str | None, path_stream: bool) -> Prompt:
        """The neutral view of a chat request body; raises ``BadRequest``."""
        ...

    def render(self, plan: Plan) -> bytes:
        """The non-streaming response body."""
        ...

    def render_stream(self, plan: Plan, prompt: Prompt) -> list[bytes]:
        """Every SSE frame of the streaming response, in order."""
        ...

    def error(
        self,
        status: int,
        message: str | None,
        retry_after: float | None,
        code: str | None = None,
    ) -> ErrorAnswer:
        """An error response in the protocol's envelope (a scripted 502 never gets
        here: the edge proxy's HTML page is the same for every protocol).

        ``code`` overrides the protocol's error code for the status (OpenAI ``code``,
        Anthropic ``error.type``, Gemini ``status``).
        """
        ...

    def stream_error(self, status: int, message: str | None, code: str | None = None) -> bytes:
        """An in-stream error frame, sent after a 200."""
        ...


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE frame with a JSON payload (and an ``event:`` line when named)."""
    payload = b"data: " + orjson.dumps(data) + b"\n\n"
    if event is None:
        return payload
    return b"event: " + event.encode() + b"\n" + payload


def bad_gateway_page() -> ErrorAnswer:
    """What the providers' edge proxies answer on 502: HTML, not JSON."""
    body = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        b"</body>\r\n</html>\r\n"
    )
    return ErrorAnswer(502, body, "text/html")


def seconds(value: float) -> str:
    """A duration in seconds as servers write it: whole seconds when integral."""
    return str(int(value)) if float(value).is_integer() else str(value)


def retry_headers(retry_after: float | None) -> dict[str, str]:
    """The ``retry-after`` header, when there is a delay to announce."""
    return {} if retry_after is None else {"retry-after": seconds(retry_after)}
