"""The `anthropic` wire protocol: the Messages API, `POST {base_url}/v1/messages`.

Building the request is `tiergate.providers.anthropic_request` (its docstring lists the
mapping decisions); this module reads answers, whole and streamed, and maps errors.
Usage is never double-counted: Anthropic's `input_tokens` excludes cache reads and
writes, the canonical figure includes them, and stream figures are cumulative.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from tiergate.chat import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    FunctionCall,
    FunctionDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tiergate.errors import UpstreamError
from tiergate.fleet import Deployment
from tiergate.providers.anthropic_request import messages_body, messages_url
from tiergate.providers.base import SSEEvent, UpstreamCall, classify_status
from tiergate.providers.translate import answer, arguments_text, decode_upstream, key_headers

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# The status each documented error `type` is sent with, for errors that arrive inside a
# 200 stream (the HTTP status is long gone by then).
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# -- wire structs (responses only; requests are built as plain JSON objects) -------------


class _OutputDetails(msgspec.Struct):
    thinking_tokens: int = 0


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = msgspec.Raw()  # kept raw: re-encoded without reordering keys


class _Message(msgspec.Struct):
    id: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct):
    type: str = ""
    message: str = ""


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    index: int = 0
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorBody | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


_message_decoder = msgspec.json.Decoder(_Message)
_event_decoder = msgspec.json.Decoder(_Event)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)
_encoder = msgspec.json.Encoder()


# -- Messages -> canonical ----------------------------------------------------------------


def _finish(stop_reason: str | None) -> FinishReason | None:
    if stop_reason is None:
        return None
    return _STOP.get(stop_reason, "stop")


class _Tokens:
    """Anthropic's usage counters, which arrive piecewise in a stream."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "thinking")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.thinking = 0

    def update(self, usage: _Usage) -> None:
        # Every figure is cumulative, so the latest report replaces the earlier one.
        if usage.input_tokens is not None:
            self.input = usage.input_tokens
        if usage.output_tokens is not None:
            self.output = usage.output_tokens
        if usage.cache_read_input_tokens is not None:
            self.cache_read = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            self.cache_write = usage.cache_creation_input_tokens
        if usage.output_tokens_details is not None:
            self.thinking = usage.output_tokens_details.thinking_tokens

    def canonical(self) -> Usage:
        # Anthropic's input_tokens excludes cache reads and writes; ours includes them.
        return Usage(
            input_tokens=self.input + self.cache_read + self.cache_write,
            output_tokens=self.output,
            cached_input_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self.thinking,
        )


def canonical_usage(usage: _Usage | None) -> Usage:
    tokens = _Tokens()
    if usage is not None:
        tokens.update(usage)
    return tokens.canonical()


def _stream_error(error: _ErrorBody | None) -> UpstreamError:
    kind = error.type if error else "api_error"
    message = error.message if error else "unknown error"
    status = ERROR_STATUS.get(kind, 500)
    return classify_status(status, f"{kind}: {message}", b"", {})


class AnthropicStreamDecoder:
    """Decodes Messages stream events; `message_stop` ends the stream.

    Tool calls are numbered in the order their blocks start (OpenAI's `index`), whatever
    the block index among text and thinking blocks. `message_start` yields no chunk of
    its own: the assistant role rides on the first chunk with content, so an `error`
    event between `message_start` and the first content (how an `overloaded_error` after
    a 200 arrives) is still a failure before the first byte, and can fail over.
    """

    __slots__ = (
        "_done",
        "_id",
        "_model",
        "_role_sent",
        "_seen_args",
        "_start_input",
        "_tokens",
        "_tools",
    )

    def __init__(self, model: str):
        self._model = model
        self._id = ""
        self._done = False
        self._role_sent = False
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._seen_args: set[int] = set()
        self._start_input: dict[int, str] = {}
        self._tokens = _Tokens()

    @property
    def finished(self) -> bool:
        return self._done

    def _chunk(self, delta: Delta, finish: FinishReason | None = None) -> ChatChunk:
        if not self._role_sent:
            delta.role, self._role_sent = "assistant", True
        return ChatChunk(self._id, self._model, [ChunkChoice(delta, finish)])

    def _call(self, block: int, **fields: Any) -> ChatChunk:
        return self._chunk(Delta(tool_calls=[ToolCallDelta(index=self._tools[block], **fields)]))

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        wire = decode_upstream(_event_decoder, event.data, "stream event")
        kind = wire.type or event.event
        if kind == "message_start" and wire.message is not None:
            self._id = wire.message.id
            if wire.message.usage is not None:
                self._tokens.update(wire.message.usage)
            return []
        if kind == "content_block_start" and wire.content_block is not None:
            return self._block_start(wire.index, wire.content_block)
        if kind == "content_block_delta" and wire.delta is not None:
            d = wire.delta
            if d.type == "text_delta" and d.text:
                return [self._chunk(Delta(content=d.text))]
            if d.type == "input_json_delta" and d.partial_json and wire.index in self._tools:
                self._seen_args.add(wire.index)
                return [self._call(wire.index, function=FunctionDelta(arguments=d.partial_json))]
            return []  # thinking, signature and citation deltas carry no canonical content
        if kind == "content_block_stop":
            if wire.index in self._tools and wire.index not in self._seen_args:
                # No input_json_delta at all: the start event's input is the whole input.
                args = self._start_input.get(wire.index, "{}")
                return [self._call(wire.index, function=FunctionDelta(arguments=args))]
            return []
        if kind == "message_delta":
            if wire.usage is not None:
                self._tokens.update(wire.usage)
            finish = _finish(wire.delta.stop_reason if wire.delta else None)
            return [
                self._chunk(Delta(), finish),
                ChatChunk(self._id, self._model, [], self._tokens.canonical()),
            ]
        if kind == "message_stop":
            self._done = True
            return []
        if kind == "error":
            raise _stream_error(wire.error)
        return []  # ping and event types added after this adapter was written

    def _block_start(self, index: int, block: _Block) -> list[ChatChunk]:
        if block.type == "text":
            return [self._chunk(Delta(content=block.text))] if block.text else []
        if block.type == "tool_use":
            self._tools[index] = len(self._tools)
            self._start_input[index] = arguments_text(block.input)
            return [
                self._call(
                    index,
                    id=block.id or "",
                    type="function",
                    function=FunctionDelta(name=block.name or "", arguments=""),
                )
            ]
        return []  # thinking / redacted_thinking / server tool blocks


class AnthropicAdapter:
    """Anthropic Messages API, `POST {base_url}/v1/messages`."""

    kind: ClassVar[str] = "anthropic"

    def build(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> UpstreamCall:
        body = messages_body(request, deployment, stream=stream)
        provider = deployment.provider
        headers = key_headers(provider, "x-api-key")
        headers["anthropic-version"] = provider.anthropic_version
        return UpstreamCall(messages_url(provider.base_url), headers, _encoder.encode(body))

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        wire = decode_upstream(_message_decoder, body, "response")
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in wire.content:
            if block.type == "text" and block.text:
                text.append(block.text)
            elif block.type == "tool_use":
                args = arguments_text(block.input)
                calls.append(ToolCall(block.id or "", FunctionCall(block.name or "", args)))
        choice = Choice(answer(text, calls), _finish(wire.stop_reason) or "stop")
        return ChatResponse(wire.id, deployment.model, [choice], canonical_usage(wire.usage))

    def stream_decoder(self, deployment: Deployment) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(deployment.model)

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        message = body[:200].decode("utf-8", "replace")
        try:
            env = _error_decoder.decode(body)
            if env.error is not None and env.error.message:
                message = f"{env.error.type}: {env.error.message}"
        except msgspec.DecodeError:
            pass  # keep the raw prefix: edge proxies answer errors in HTML
        return classify_status(status, message, body, headers)
