"""The `anthropic` wire protocol: the Messages API, `POST {base_url}/v1/messages`.

Mapping decisions where the two protocols disagree:

- `max_tokens` is required upstream. Without a client limit we send `DEFAULT_MAX_TOKENS`
  (4096): every current Claude model can produce at least that much, and it keeps an
  unbounded request from booking a model's whole 32k-64k output window.
- `temperature` is 0..2 in OpenAI and 0..1 here: values above 1 are clamped to 1.0, the
  closest the Messages API can express (rejecting would make `auto` routing fail for a
  request that is fine elsewhere). When both `temperature` and `top_p` are set only
  `temperature` is sent, because current Claude models refuse the pair. From API version
  `2026-10-21` sampling parameters are a 400 at any value, so none are sent then.
- `response_format`: `json_schema` becomes structured output
  (`output_config.format = {"type": "json_schema", "schema": ...}`), which the model is
  constrained by. `json_object` has no schema-less equivalent, so it becomes an explicit
  instruction appended to the system prompt. Neither is ever dropped silently.
- Tool results must open the user turn that carries them, so they are moved before any
  text in a merged user turn. A final assistant turn (a prefill) loses its trailing
  whitespace, which the API rejects.
"""

from __future__ import annotations

import re
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
    ImagePart,
    Message,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tiergate.errors import BadRequest, UpstreamError
from tiergate.fleet import Deployment
from tiergate.providers.base import SSEEvent, UpstreamCall, classify_status

DEFAULT_MAX_TOKENS = 4096
"""`max_tokens` sent when the request sets no output limit (the API requires one)."""

SAMPLING_REMOVED_VERSION = "2026-10-21"
"""The first `anthropic-version` that rejects temperature / top_p / top_k outright."""

JSON_OBJECT_INSTRUCTION = (
    "Respond with a single valid JSON object and nothing else: no prose, no code fences."
)

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

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def tool_use_id(call_id: str) -> str:
    """A tool call id in the form the Messages API accepts (`^[a-zA-Z0-9_-]+$`).

    Ids minted by other providers may hold other characters; the same rewrite is applied
    to the tool_use and to its tool_result, so the pair still matches.
    """
    return _ID_UNSAFE.sub("_", call_id) or "_"


# -- wire structs (responses only; requests are built as plain JSON objects) ---------------


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


# -- canonical -> Messages ------------------------------------------------------------------


def _image_block(part: ImagePart, where: str) -> dict[str, Any]:
    url = part.image_url.url
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64":
            raise BadRequest(f"{where}: image data URLs must be base64-encoded", param=where)
        if media_type not in _IMAGE_TYPES:
            raise BadRequest(
                f"{where}: image type {media_type!r} is not supported "
                f"(use one of {', '.join(sorted(_IMAGE_TYPES))})",
                param=where,
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise BadRequest(f"{where}: image_url must be a data: URL or an http(s) URL", param=where)


def _content_blocks(message: Message, where: str) -> list[dict[str, Any]]:
    """Text and image blocks; empty text is left out (the API rejects empty text blocks)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for k, part in enumerate(message.content):
        if isinstance(part, ImagePart):
            blocks.append(_image_block(part, f"{where}.content[{k}]"))
        elif part.text:
            blocks.append({"type": "text", "text": part.text})
    return blocks


def tool_input(arguments: str, where: str) -> Any:
    """A tool call's JSON arguments as the object the Messages API wants in `input`."""
    if not arguments.strip():
        return {}  # some clients send "" for a call without arguments
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        raise BadRequest(f"{where}: tool call arguments are not valid JSON", param=where) from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: tool call arguments must be a JSON object", param=where)
    return value


def _turn(message: Message, i: int) -> tuple[str, list[dict[str, Any]]]:
    """The Messages role and content blocks for one non-system canonical message."""
    where = f"messages[{i}]"
    if message.role == "user":
        return "user", _content_blocks(message, where)
    if message.role == "tool":
        if not message.tool_call_id:
            raise BadRequest(f"{where}: a tool message needs tool_call_id", param=where)
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": tool_use_id(message.tool_call_id),
        }
        content = _content_blocks(message, where)
        if content:
            # A string when the result is one text block: the common, compact form.
            only_text = len(content) == 1 and content[0]["type"] == "text"
            result["content"] = content[0]["text"] if only_text else content
        return "user", [result]
    # assistant
    blocks = _content_blocks(message, where)
    if any(b["type"] == "image" for b in blocks):
        raise BadRequest(f"{where}: assistant messages cannot contain images", param=where)
    for j, call in enumerate(message.tool_calls or ()):
        arg_where = f"{where}.tool_calls[{j}].function.arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.id),
                "name": call.function.name,
                "input": tool_input(call.function.arguments, arg_where),
            }
        )
    return "assistant", blocks


def _conversation(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and alternating turns with consecutive same-role messages merged."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        if message.role in ("system", "developer"):
            if message.has_image():
                where = f"messages[{i}]"
                raise BadRequest(f"{where}: system messages cannot contain images", param=where)
            text = message.text()
            if text:
                system.append(text)
            continue
        role, blocks = _turn(message, i)
        if not blocks:
            continue  # e.g. an assistant message with neither text nor tool calls
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise BadRequest("messages: at least one user message with content is required")
    for turn in turns:
        if turn["role"] == "user":
            # Tool results must come first in their user turn; sort is stable.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    last = turns[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        tail = last["content"][-1]
        tail["text"] = tail["text"].rstrip()
        if not tail["text"]:
            last["content"].pop()
            if not last["content"]:
                turns.pop()
    return system, turns


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    names = {t.function.name for t in request.tools or ()}
    if not names:
        if choice == "required" or (choice is not None and not isinstance(choice, str)):
            raise BadRequest("tool_choice requires tools", param="tool_choice")
        return None
    result: dict[str, Any]
    if choice is None or choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    else:
        if choice.function.name not in names:
            raise BadRequest(
                f"tool_choice names {choice.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        result = {"type": "tool", "name": choice.function.name}
    if request.parallel_tool_calls is False:
        result["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # the upstream default is auto
    return result


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    tools = []
    for tool in request.tools or ():
        fn = tool.function
        spec: dict[str, Any] = {
            "name": fn.name,
            "input_schema": fn.parameters or {"type": "object", "properties": {}},
        }
        if fn.description:
            spec["description"] = fn.description
        if fn.strict:
            spec["strict"] = True
        tools.append(spec)
    return tools


def messages_body(request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
    """The Messages API request body for a canonical request (pure; raises `BadRequest`)."""
    system, turns = _conversation(request)
    body: dict[str, Any] = {
        "model": deployment.upstream_model,
        "max_tokens": request.output_limit or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema and fmt.json_schema.schema:
        body["output_config"] = {
            "format": {"type": "json_schema", "schema": fmt.json_schema.schema}
        }
    elif request.wants_json():
        system.append(JSON_OBJECT_INSTRUCTION)
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = _tools(request)
    choice = _tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    stops = [s for s in request.stop_list() if s]
    if stops:
        body["stop_sequences"] = stops
    if deployment.provider.anthropic_version < SAMPLING_REMOVED_VERSION:
        if request.temperature is not None:
            body["temperature"] = min(request.temperature, 1.0)
        elif request.top_p is not None:
            body["top_p"] = request.top_p
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if stream:
        body["stream"] = True
    return body


def messages_url(base_url: str) -> str:
    """`{base}/v1/messages`; a base that already ends in `/v1` is accepted too."""
    base = base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


# -- Messages -> canonical ------------------------------------------------------------------


def _finish(stop_reason: str | None) -> FinishReason | None:
    if stop_reason is None:
        return None
    return _STOP.get(stop_reason, "stop")


def arguments_text(raw: msgspec.Raw) -> str:
    """A tool_use `input` as canonical arguments: compact JSON, key order preserved."""
    value = msgspec.json.decode(raw) if bytes(raw).strip() else None
    if value is None:
        return "{}"
    # Re-encoding normalises whitespace only: dicts keep their order, numbers their value.
    return _encoder.encode(value).decode()


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
        try:
            wire = _event_decoder.decode(event.data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable stream event: {exc}") from None
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
        headers = {"content-type": "application/json", **dict(provider.headers)}
        if provider.api_key:
            headers["x-api-key"] = provider.api_key
        headers["anthropic-version"] = provider.anthropic_version
        return UpstreamCall(messages_url(provider.base_url), headers, _encoder.encode(body))

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        try:
            wire = _message_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable response: {exc}") from None
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in wire.content:
            if block.type == "text" and block.text:
                text.append(block.text)
            elif block.type == "tool_use":
                args = arguments_text(block.input)
                calls.append(ToolCall(block.id or "", FunctionCall(block.name or "", args)))
        message = ResponseMessage(
            content="".join(text) if text or not calls else None, tool_calls=calls or None
        )
        choice = Choice(message, _finish(wire.stop_reason) or "stop")
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
