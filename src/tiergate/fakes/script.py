"""What a fake upstream should answer: protocol-neutral replies, faults and the queue.

A test scripts the next answers with :class:`Reply` and :class:`Fault` objects; each
wire protocol renders the same script in its own format (JSON body or SSE events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tiergate.fakes.prompt import Prompt, WireProtocol

Finish = Literal["stop", "length", "tool_calls", "content_filter", "stop_sequence"]
"""Why an answer ended, in neutral words; each protocol maps it to its own value."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the fake model makes.

    ``arguments`` is a mapping (serialized for OpenAI, passed as an object to
    Anthropic and Gemini) or a raw JSON string (sent verbatim where the wire wants a
    string, parsed where it wants an object). ``id`` defaults to a generated one.
    """

    name: str
    arguments: Mapping[str, Any] | str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer.

    ``text=None`` (and no tool calls) means "the default answer for this request".
    ``input_tokens`` counts every prompt token including ``cached_tokens`` and
    ``cache_write_tokens`` (prompt tokens written to the provider's cache: only the
    Anthropic protocol reports them, as ``cache_creation_input_tokens``); ``None``
    means "estimate from the request" (about four characters per token).
    ``length`` makes the default answer about that many tokens long.
    ``stream_chunks`` splits the text into that many deltas (the default answer is
    lengthened to at least that many words; explicit text is never changed).
    ``delay_headers`` waits before sending the status line; ``chunk_delay`` waits
    before each streamed event. ``prompt_blocked`` answers as if the prompt itself was
    refused (Gemini ``promptFeedback.blockReason``; a content-filter finish elsewhere).
    """

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish: Finish | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    length: int | None = None
    stream_chunks: int | None = None
    chunk_delay: float = 0.0
    delay_headers: float = 0.0
    model: str | None = None
    prompt_blocked: bool = False


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure, rendered in the protocol's own error format.

    - ``status`` alone: an HTTP error with the protocol's error envelope
      (``retry_after`` adds a ``retry-after`` header or Gemini ``RetryInfo``).
      502 answers with an HTML page, as the providers' edge proxies do.
    - ``delay_headers``: wait before answering (the fault or, without ``status``,
      the reply); a client timeout shorter than this sees no headers.
    - ``garbage``: 200 with a body (or SSE event) that is not valid JSON.
    - ``truncate_after=n``: a 200 stream that ends cleanly after ``n`` events, with no
      final event / ``[DONE]``; a non-streaming body is cut in half.
    - ``error_after=n``: a 200 stream with an in-stream error event after ``n`` events
      (its kind from ``status``, default 529 "overloaded").
    - ``drop_connection``: close the TCP connection without an answer, or, with
      ``truncate_after``, abort mid-stream instead of ending cleanly.

    ``code`` replaces the protocol's usual error code for the status: OpenAI
    ``error.code`` (e.g. ``"context_length_exceeded"``, ``"insufficient_quota"``),
    Anthropic ``error.type``, Gemini ``error.status``. ``message`` replaces the text.

    ``reply`` is the content of the partial answer sent before a mid-stream fault.
    """

    status: int | None = None
    message: str | None = None
    code: str | None = None
    retry_after: float | None = None
    delay_headers: float = 0.0
    garbage: bool = False
    truncate_after: int | None = None
    error_after: int | None = None
    drop_connection: bool = False
    reply: Reply = Reply()


Scripted = Reply | Fault
"""One scripted answer."""

Responder = Callable[[Prompt], Scripted | None]
"""A function from the parsed request to an answer (``None``: use the default)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    item: Scripted
    model: str | None
    protocol: WireProtocol | None

    def matches(self, prompt: Prompt) -> bool:
        return (self.model is None or self.model == prompt.model) and (
            self.protocol is None or self.protocol == prompt.protocol
        )


class Script:
    """FIFO queue of scripted answers, optionally per upstream model or protocol.

    Thread-safe: a sync test may enqueue while the server runs in another thread.
    """

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()
        self.responder: Responder | None = None

    def enqueue(
        self,
        *items: Scripted,
        model: str | None = None,
        protocol: WireProtocol | None = None,
    ) -> None:
        """Queue answers, served in order to requests that match ``model``/``protocol``."""
        for item in items:
            if not isinstance(item, Reply | Fault):
                raise TypeError(f"expected Reply or Fault, got {type(item).__name__}")
        with self._lock:
            self._entries.extend(_Entry(item, model, protocol) for item in items)

    def next_for(self, prompt: Prompt) -> Scripted | None:
        """Pop the first queued answer for this request, else ask the responder."""
        if self._entries:
            with self._lock:
                for i, entry in enumerate(self._entries):
                    if entry.matches(prompt):
                        del self._entries[i]
                        return entry.item
        if self.responder is not None:
            return self.responder(prompt)
        return None

    @property
    def pending(self) -> int:
        """How many queued answers have not been served yet."""
        return len(self._entries)

    def clear(self) -> None:
        """Drop every queued answer and the responder."""
        with self._lock:
            self._entries.clear()
        self.responder = None
