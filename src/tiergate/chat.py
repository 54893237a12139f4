"""Canonical chat types: what every ingress produces and every provider adapter consumes.

The shape follows OpenAI Chat Completions, the lingua franca of LLM clients, so the OpenAI
ingress decodes straight into these types and other protocols translate to and from them.
Decoding is done by msgspec: it validates while it parses and names the offending field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]

PositiveInt = Annotated[int, Meta(ge=1, le=10_000_000)]
UnitFloat = Annotated[float, Meta(ge=0.0, le=2.0)]


class ImageURL(Struct, omit_defaults=True):
    url: str
    detail: str | None = None


class TextPart(Struct, tag="text", tag_field="type", omit_defaults=True):
    text: str


class ImagePart(Struct, tag="image_url", tag_field="type", omit_defaults=True):
    image_url: ImageURL


ContentPart = TextPart | ImagePart


class FunctionCall(Struct, omit_defaults=True):
    name: str
    arguments: str  # JSON text, exactly as the model produced it


class ToolCall(Struct):  # no omit_defaults: `type` must always be on the wire
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class Message(Struct, omit_defaults=True):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def text(self) -> str:
        """The message's text parts joined; images are left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def has_image(self) -> bool:
        return isinstance(self.content, list) and any(
            isinstance(p, ImagePart) for p in self.content
        )


class FunctionDef(Struct, omit_defaults=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_.\-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Struct):  # no omit_defaults: `type` must always be on the wire
    function: FunctionDef
    type: Literal["function"] = "function"


class NamedFunction(Struct):
    name: str


class NamedToolChoice(Struct):  # no omit_defaults: `type` must always be on the wire
    function: NamedFunction
    type: Literal["function"] = "function"


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(Struct, omit_defaults=True):
    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(Struct, omit_defaults=True):
    include_usage: bool | None = None


class TiergateOptions(Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Per-request controls (`extra_body={"tiergate": {...}}` or `x-tiergate-*` headers)."""

    route: str | None = None
    min_tier: str | None = None
    max_cost_usd: Annotated[float, Meta(ge=0)] | None = None
    latency_budget_ms: Annotated[float, Meta(gt=0)] | None = None
    cache: Literal["bypass", "default"] | None = None
    tags: list[str] | None = None


class ChatRequest(Struct, omit_defaults=True):
    """An OpenAI Chat Completions request, validated."""

    model: Annotated[str, Meta(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Meta(min_length=1, max_length=100_000)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: UnitFloat | None = None
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    stop: str | Annotated[list[str], Meta(max_length=16)] | None = None
    seed: int | None = None
    n: Annotated[int, Meta(ge=1, le=1)] | None = None
    tools: Annotated[list[Tool], Meta(max_length=512)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: Annotated[float, Meta(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2.0, le=2.0)] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    tiergate: TiergateOptions | None = None
    # Fields this type does not model, kept only for OpenAI-compatible upstreams.
    # (Named so that no client field can land here by accident.)
    extra: dict[str, Any] = field(default_factory=dict, name="__tiergate_passthrough__")

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def wants_json(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    def has_images(self) -> bool:
        return any(m.has_image() for m in self.messages)


class Usage(Struct, omit_defaults=True):
    """Token counts as the upstream reported them.

    `input_tokens` includes cached and cache-write tokens (OpenAI's convention); the
    anthropic adapter adds its separately reported cache figures in.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


class ResponseMessage(Struct, omit_defaults=True):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None


class Choice(Struct, omit_defaults=True):
    message: ResponseMessage
    finish_reason: FinishReason | None = "stop"
    index: int = 0


class ChatResponse(Struct, omit_defaults=True):
    """A complete answer, in canonical form."""

    id: str
    model: str
    choices: list[Choice]
    usage: Usage = field(default_factory=Usage)
    created: int = 0

    @property
    def message(self) -> ResponseMessage:
        return self.choices[0].message

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.choices[0].finish_reason


class FunctionDelta(Struct, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(Struct, omit_defaults=True):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta | None = None


class Delta(Struct, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    refusal: str | None = None


class ChunkChoice(Struct, omit_defaults=True):
    delta: Delta
    finish_reason: FinishReason | None = None
    index: int = 0


class ChatChunk(Struct, omit_defaults=True):
    """One streamed event in canonical form; the last one may carry only `usage`."""

    id: str
    model: str
    choices: list[ChunkChoice] = field(default_factory=list)
    usage: Usage | None = None
    created: int = 0


_request_decoder = msgspec.json.Decoder(ChatRequest)
_KNOWN_FIELDS = frozenset(ChatRequest.__struct_encode_fields__) - {"__tiergate_passthrough__"}


def decode_chat_request(body: bytes) -> ChatRequest:
    """Parse and validate an OpenAI chat request; unknown fields are kept in `extra`.

    Raises `msgspec.ValidationError` / `msgspec.DecodeError`; the ingress maps them to 400.
    """
    request = _request_decoder.decode(body)
    raw = msgspec.json.decode(body)
    if isinstance(raw, dict) and len(raw) > len(_KNOWN_FIELDS & raw.keys()):
        request.extra = {k: v for k, v in raw.items() if k not in _KNOWN_FIELDS}
    return request


def convert_chat_request(data: dict[str, Any]) -> ChatRequest:
    """Build a `ChatRequest` from an already-parsed JSON object (used by other ingresses)."""
    request = msgspec.convert(data, ChatRequest)
    extras = {k: v for k, v in data.items() if k not in _KNOWN_FIELDS}
    if extras:
        request.extra = extras
    return request


def accumulate(chunks: list[ChatChunk]) -> ChatResponse:
    """Fold a stream of chunks into the complete response it represents."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: FinishReason | None = None
    usage = Usage()
    refusal: list[str] = []
    rid, model, created = "", "", 0
    for chunk in chunks:
        rid, model, created = chunk.id or rid, chunk.model or model, chunk.created or created
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            d = choice.delta
            if d.content:
                text.append(d.content)
            if d.refusal:
                refusal.append(d.refusal)
            for tc in d.tool_calls or ():
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": []})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function is not None:
                    if tc.function.name:
                        slot["name"] += tc.function.name
                    if tc.function.arguments:
                        slot["arguments"].append(tc.function.arguments)
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    tool_calls = [
        ToolCall(id=c["id"], function=FunctionCall(c["name"], "".join(c["arguments"])))
        for _, c in sorted(calls.items())
    ]
    message = ResponseMessage(
        content="".join(text) if text or not tool_calls else None,
        tool_calls=tool_calls or None,
        refusal="".join(refusal) or None,
    )
    return ChatResponse(
        id=rid, model=model, created=created, choices=[Choice(message, finish)], usage=usage
    )
