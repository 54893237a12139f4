"""The adapter contract: build the upstream request, parse the answer, parse one stream
event, map an error. Pure functions of typed inputs; no I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from tiergate.chat import ChatChunk, ChatRequest, ChatResponse
from tiergate.errors import UpstreamError
from tiergate.fleet import Deployment


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One HTTP request to a provider. The URL is always built from config, never from input."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event (`event:` defaults to "message")."""

    data: str
    event: str = "message"


class StreamDecoder(Protocol):
    """Turns one provider's stream events into canonical chunks, keeping per-stream state."""

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        """Chunks for this event (often none). Raises `UpstreamError` for an in-stream error."""
        ...

    @property
    def finished(self) -> bool:
        """True once the provider's own end-of-stream marker has been seen."""
        ...


class Adapter(Protocol):
    """Translation for one wire protocol."""

    kind: ClassVar[str]

    def build(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> UpstreamCall:
        """The upstream request for this canonical request on this deployment.

        Raises `tiergate.errors.BadRequest` when the request cannot be expressed in this
        protocol (the client's mistake: no fallback, no spend).
        """
        ...

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        """The canonical response for a 2xx body; raises `UpstreamError` if it is garbage."""
        ...

    def stream_decoder(self, deployment: Deployment) -> StreamDecoder:
        """A fresh decoder for one streamed response."""
        ...

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        """The typed error for a non-2xx answer."""
        ...


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` (seconds form; the HTTP-date form is rare upstream) or `retry-after-ms`."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def classify_status(
    status: int, message: str, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """The shared status-code policy every adapter's `map_error` uses."""
    from tiergate.errors import UpstreamAuthFailed, UpstreamRejected

    retry_after = retry_after_seconds(headers)
    text = f"upstream {status}: {message}"
    if status in (401, 403):
        # Never the provider's words: they quote (part of) our credential back, as OpenAI's
        # "Incorrect API key provided: sk-****abcd" does, and this text reaches clients.
        text = f"upstream {status}: the provider refused tiergate's credential"
        return UpstreamAuthFailed(text, upstream_status=status, body=body)
    if status in (400, 404, 409, 413, 422):
        return UpstreamRejected(text, upstream_status=status, body=body)
    if status == 408:
        from tiergate.errors import UpstreamTimeout

        return UpstreamTimeout(text, upstream_status=status, body=body)
    return UpstreamError(text, upstream_status=status, retry_after=retry_after, body=body)
