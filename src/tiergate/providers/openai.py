"""The `openai` wire protocol: OpenAI and every OpenAI-compatible API."""

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
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tiergate.errors import UpstreamError
from tiergate.fleet import Deployment
from tiergate.providers.base import SSEEvent, UpstreamCall, classify_status

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
    "eos": "stop",  # some OpenAI-compatible servers (vLLM forks, TGI) say this
}


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None

    def canonical(self) -> Usage:
        cached = self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else None
        reasoning = (
            self.completion_tokens_details.reasoning_tokens
            if self.completion_tokens_details
            else None
        )
        return Usage(
            input_tokens=self.prompt_tokens,
            output_tokens=self.completion_tokens,
            cached_input_tokens=cached or 0,
            reasoning_tokens=reasoning or 0,
        )


class _Message(msgspec.Struct):
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None
    index: int = 0


class _Response(msgspec.Struct):
    choices: list[_Choice]
    id: str = ""
    model: str = ""
    created: int = 0
    usage: _Usage | None = None


class _DeltaWire(msgspec.Struct):
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None
    role: str | None = None


class _ChunkChoice(msgspec.Struct):
    delta: _DeltaWire | None = None
    finish_reason: str | None = None
    index: int = 0


class _Chunk(msgspec.Struct):
    id: str = ""
    model: str = ""
    created: int = 0
    choices: list[_ChunkChoice] = []
    usage: _Usage | None = None
    error: dict[str, Any] | None = None


class _ErrorBody(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | str | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_chunk_decoder = msgspec.json.Decoder(_Chunk)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)
_encoder = msgspec.json.Encoder()
_DROP = ("tiergate", "metadata")  # ours, not the upstream's


def _finish(value: str | None) -> FinishReason | None:
    if value is None:
        return None
    return _FINISH.get(value, "stop")


class OpenAIStreamDecoder:
    """Decodes `chat.completion.chunk` events; `[DONE]` ends the stream.

    A first chunk that only says `role: assistant` (with empty content) yields nothing:
    the role rides on the next chunk. So an error event between it and the first content
    is still a failure before the first byte, and can fail over.
    """

    __slots__ = ("_done", "_held_role", "_model")

    def __init__(self, model: str):
        self._model = model
        self._done = False
        self._held_role = False

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        data = event.data
        if data == "[DONE]":
            self._done = True
            return []
        try:
            wire = _chunk_decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable stream event: {exc}") from None
        if wire.error is not None:
            message = str(wire.error.get("message") or wire.error)
            raise UpstreamError(f"upstream stream error: {message}")
        choices = [
            ChunkChoice(
                delta=Delta(
                    role="assistant" if c.delta and c.delta.role else None,
                    content=c.delta.content if c.delta else None,
                    tool_calls=c.delta.tool_calls if c.delta else None,
                    refusal=c.delta.refusal if c.delta else None,
                ),
                finish_reason=_finish(c.finish_reason),
                index=c.index,
            )
            for c in wire.choices
        ]
        usage = wire.usage.canonical() if wire.usage is not None else None
        if len(choices) == 1 and usage is None and _only_role(choices[0]):
            self._held_role = True
            return []
        if self._held_role and choices:
            choices[0].delta.role, self._held_role = "assistant", False
        return [ChatChunk(wire.id, self._model, choices, usage, wire.created)]


def _only_role(choice: ChunkChoice) -> bool:
    d = choice.delta
    return (
        d.role is not None
        and not d.content
        and not d.tool_calls
        and not d.refusal
        and choice.finish_reason is None
    )


class OpenAIAdapter:
    """OpenAI Chat Completions, `POST {base_url}/chat/completions`."""

    kind: ClassVar[str] = "openai"

    def build(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> UpstreamCall:
        body = msgspec.to_builtins(request)
        for name in _DROP:
            body.pop(name, None)
        body.pop("__tiergate_passthrough__", None)
        # Unknown fields go only to OpenAI-compatible upstreams, and only into the body.
        for name, value in request.extra.items():
            body.setdefault(name, value)
        body["model"] = deployment.upstream_model
        if stream:
            body["stream"] = True
            # Always ask for usage: the ledger books what the upstream says it produced.
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)
        provider = deployment.provider
        headers = {"content-type": "application/json", **dict(provider.headers)}
        if provider.api_key:
            headers["authorization"] = f"Bearer {provider.api_key}"
        return UpstreamCall(f"{provider.base_url}/chat/completions", headers, _encoder.encode(body))

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        try:
            wire = _response_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable response: {exc}") from None
        if not wire.choices:
            raise UpstreamError("upstream response has no choices")
        choices = [
            Choice(
                ResponseMessage(
                    content=c.message.content,
                    tool_calls=c.message.tool_calls or None,
                    refusal=c.message.refusal,
                ),
                _finish(c.finish_reason),
                c.index,
            )
            for c in wire.choices
        ]
        usage = wire.usage.canonical() if wire.usage is not None else Usage()
        return ChatResponse(wire.id, deployment.model, choices, usage, wire.created)

    def stream_decoder(self, deployment: Deployment) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(deployment.model)

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        message = body[:200].decode("utf-8", "replace")
        try:
            env = _error_decoder.decode(body)
            if isinstance(env.error, _ErrorBody):
                message = env.error.message or message
            elif isinstance(env.error, str):
                message = env.error
        except msgspec.DecodeError:
            pass  # keep the raw prefix: some upstreams answer errors in plain text or HTML
        return classify_status(status, message, body, headers)
