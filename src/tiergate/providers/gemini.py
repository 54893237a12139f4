"""The `gemini` wire protocol: `generateContent` and `streamGenerateContent?alt=sse`.

The key travels in the `x-goog-api-key` header, never in the URL (URLs end up in logs).

Mapping decisions where the two protocols disagree:

- Tool schemas and `json_schema` response formats are translated to Gemini's `Schema`
  subset by `tiergate.providers.jsonschema_subset` (unsupported keywords dropped, `$ref`
  inlined); a tool without parameters gets no `parameters` (Gemini refuses an empty object).
- Gemini has no tool-call ids: a call's id is Gemini's own when it sends one, otherwise a
  stable hash of the response id, position, name and arguments. A tool result's function
  name is recovered from the assistant tool call with the same id.
- Canonical history cannot carry Gemini 3's `thoughtSignature`, which Gemini 3 and later
  require on replayed function calls; those parts get Google's documented
  `skip_thought_signature_validator` sentinel (not sent to Gemini 1.x / 2.x models).
- A tool result must be a JSON object: a result that is not one is sent as
  `{"content": <text>}`.
- Image URLs: `data:` URLs become `inlineData`; http(s) URLs become `fileData` with the
  MIME type taken from the file extension (a URL whose type cannot be told is refused).
- A prompt blocked by safety filters (`promptFeedback.blockReason`, no candidates) becomes
  an empty answer with finish reason `content_filter` and the reason in `refusal`, the
  same shape a content-filtered answer has on the other providers. It is not an error:
  the upstream worked, billed the prompt, and another model would likely refuse too.
- Finish reasons: STOP is `tool_calls` when the answer calls a function, else `stop`;
  MAX_TOKENS is `length`; the safety family (SAFETY, RECITATION, BLOCKLIST,
  PROHIBITED_CONTENT, SPII, IMAGE_*) is `content_filter`; anything else (OTHER,
  MALFORMED_FUNCTION_CALL, ...) is `stop`. Thought parts are never part of the answer.
- `presence_penalty` / `frequency_penalty` are not sent: several Gemini models reject
  them. Gemini accepts at most 5 stop sequences; more is a `BadRequest`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

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
from tiergate.providers.jsonschema_subset import gemini_schema

MAX_STOP_SEQUENCES = 5
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented placeholder for a function call whose thought signature is lost."""

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_IMAGE_EXTENSIONS = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
}
_NO_SIGNATURE_MODELS = re.compile(r"^(models/)?gemini-(1|2)[.-]")

# google.rpc status names -> HTTP status, for errors that arrive inside a 200 stream.
_RPC_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


# -- wire structs (responses) ---------------------------------------------------------------


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: msgspec.Raw = msgspec.Raw()  # kept raw: re-encoded without reordering keys
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0

    def canonical(self) -> Usage:
        # promptTokenCount already includes cached content; thinking is billed as output.
        return Usage(
            input_tokens=self.prompt_token_count + self.tool_use_prompt_token_count,
            output_tokens=self.candidates_token_count + self.thoughts_token_count,
            cached_input_tokens=self.cached_content_token_count,
            reasoning_tokens=self.thoughts_token_count,
        )


class _ErrorBody(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[dict[str, Any]] = []


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: _UsageMetadata | None = None
    response_id: str = ""
    error: _ErrorBody | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope | list[_ErrorEnvelope])
_encoder = msgspec.json.Encoder()


# -- canonical -> generateContent -----------------------------------------------------------


def _image_part(part: ImagePart, where: str) -> dict[str, Any]:
    url = part.image_url.url
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        mime_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not mime_type:
            raise BadRequest(f"{where}: image data URLs must be base64-encoded", param=where)
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    if url.startswith(("https://", "http://")):
        extension = urlsplit(url).path.rpartition(".")[2].lower()
        guessed = _IMAGE_EXTENSIONS.get(extension)
        if guessed is None:
            raise BadRequest(
                f"{where}: cannot tell the image type of this URL for Gemini; "
                "send it as a data: URL or use a URL ending in "
                + "/".join(f".{e}" for e in _IMAGE_EXTENSIONS),
                param=where,
            )
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    raise BadRequest(f"{where}: image_url must be a data: URL or an http(s) URL", param=where)


def _parts(message: Message, where: str) -> list[dict[str, Any]]:
    """Text and image parts; empty text is left out (Gemini rejects empty parts)."""
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    parts: list[dict[str, Any]] = []
    for k, part in enumerate(message.content):
        if isinstance(part, ImagePart):
            parts.append(_image_part(part, f"{where}.content[{k}]"))
        elif part.text:
            parts.append({"text": part.text})
    return parts


def _call_args(arguments: str, where: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        raise BadRequest(f"{where}: tool call arguments are not valid JSON", param=where) from None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: tool call arguments must be a JSON object", param=where)
    return value


def _tool_response(message: Message, where: str) -> dict[str, Any]:
    """A tool result as a JSON object: the result itself if it is one, else wrapped."""
    if message.has_image():
        raise BadRequest(f"{where}: Gemini does not accept images in tool results", param=where)
    text = message.text()
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _contents(request: ChatRequest, sign_calls: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts, and turns with consecutive same-role messages merged."""
    names = {call.id: call.function.name for m in request.messages for call in m.tool_calls or ()}
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            if message.has_image():
                raise BadRequest(f"{where}: system messages cannot contain images", param=where)
            if message.text():
                system.append(message.text())
            continue
        if message.role == "tool":
            name = names.get(message.tool_call_id or "") or message.name
            if not name:
                raise BadRequest(
                    f"{where}: tool_call_id does not match any assistant tool call",
                    param=f"{where}.tool_call_id",
                )
            role = "user"
            parts = [
                {"functionResponse": {"name": name, "response": _tool_response(message, where)}}
            ]
        elif message.role == "assistant":
            role = "model"
            parts = _parts(message, where)
            if any("text" not in p for p in parts):
                raise BadRequest(f"{where}: assistant messages cannot contain images", param=where)
            for j, call in enumerate(message.tool_calls or ()):
                args = _call_args(call.function.arguments, f"{where}.tool_calls[{j}].function")
                part: dict[str, Any] = {"functionCall": {"name": call.function.name, "args": args}}
                if sign_calls:
                    part["thoughtSignature"] = SKIP_SIGNATURE
                parts.append(part)
        else:
            role = "user"
            parts = _parts(message, where)
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    if not turns:
        raise BadRequest("messages: at least one user message with content is required")
    return system, turns


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    names = {t.function.name for t in request.tools or ()}
    if choice is None:
        return None
    if not names:
        if choice in ("auto", "none"):
            return None
        raise BadRequest("tool_choice requires tools", param="tool_choice")
    if choice == "auto":
        config: dict[str, Any] = {"mode": "AUTO"}
    elif choice == "none":
        config = {"mode": "NONE"}
    elif choice == "required":
        config = {"mode": "ANY"}
    else:
        name = choice.function.name
        if name not in names:
            raise BadRequest(
                f"tool_choice names {name!r}, which is not in tools", param="tool_choice"
            )
        config = {"mode": "ANY", "allowedFunctionNames": [name]}
    return {"functionCallingConfig": config}


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    declarations = []
    for k, tool in enumerate(request.tools or ()):
        fn = tool.function
        declaration: dict[str, Any] = {"name": fn.name}
        if fn.description:
            declaration["description"] = fn.description
        if fn.parameters:
            schema = gemini_schema(fn.parameters, f"tools[{k}].function.parameters")
            if schema and (schema.get("properties") or schema.get("type") != "OBJECT"):
                declaration["parameters"] = schema
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.output_limit is not None:
        config["maxOutputTokens"] = request.output_limit
    stops = [s for s in request.stop_list() if s]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise BadRequest(
            f"stop: Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences", param="stop"
        )
    if stops:
        config["stopSequences"] = stops
    if request.seed is not None:
        config["seed"] = request.seed
    fmt = request.response_format
    if request.wants_json():
        config["responseMimeType"] = "application/json"
        if fmt is not None and fmt.json_schema is not None and fmt.json_schema.schema:
            config["responseSchema"] = gemini_schema(
                fmt.json_schema.schema, "response_format.json_schema.schema"
            )
    return config


def generate_content_body(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The `GenerateContentRequest` for a canonical request (pure; raises `BadRequest`)."""
    sign = not _NO_SIGNATURE_MODELS.match(deployment.upstream_model)
    system, contents = _contents(request, sign)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    if request.tools:
        body["tools"] = _tools(request)
    tool_config = _tool_config(request)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def model_url(base_url: str, model: str, *, stream: bool) -> str:
    """The method URL; the model id may be given with or without its `models/` prefix."""
    name = quote(model.removeprefix("models/"), safe="-._~")
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base_url.rstrip('/')}/models/{name}:{method}"


# -- generateContent -> canonical -----------------------------------------------------------


def _args_text(raw: msgspec.Raw) -> str:
    value = msgspec.json.decode(raw) if bytes(raw).strip() else None
    return "{}" if value is None else _encoder.encode(value).decode()


def _call_id(response_id: str, index: int, call: _FunctionCall, args: str) -> str:
    if call.id:
        return call.id
    digest = hashlib.sha256(f"{response_id}\0{index}\0{call.name}\0{args}".encode())
    return f"call_{digest.hexdigest()[:24]}"


def _finish(reason: str | None, has_calls: bool) -> FinishReason | None:
    if reason is None:
        return None
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if has_calls else "stop"


def _blocked(feedback: _PromptFeedback | None) -> str | None:
    """The refusal text for a prompt Gemini blocked, or None."""
    if feedback is None or not feedback.block_reason:
        return None
    detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
    return f"prompt blocked by the provider's safety filter ({feedback.block_reason}){detail}"


def _rpc_error(error: _ErrorBody) -> UpstreamError:
    status = error.code or _RPC_STATUS.get(error.status, 500)
    return _classify(status, error, b"", {})


def _classify(
    status: int, error: _ErrorBody, body: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    reasons = {d.get("reason") for d in error.details}
    if "API_KEY_INVALID" in reasons:
        status = 401  # Gemini answers a bad key with 400 INVALID_ARGUMENT
    if "retry-after" not in headers:
        for detail in error.details:
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                headers = {**headers, "retry-after": delay[:-1]}
    label = f"{error.status}: {error.message}" if error.status else error.message
    return classify_status(status, label, body, headers)


class GeminiStreamDecoder:
    """Decodes `streamGenerateContent?alt=sse` chunks; a finishReason ends the stream."""

    __slots__ = ("_calls", "_done", "_model", "_started", "_usage")

    def __init__(self, model: str):
        self._model = model
        self._done = False
        self._started = False
        self._calls = 0
        self._usage: Usage | None = None

    @property
    def finished(self) -> bool:
        return self._done

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        try:
            wire = _response_decoder.decode(event.data)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable stream event: {exc}") from None
        if wire.error is not None:
            raise _rpc_error(wire.error)
        rid = wire.response_id
        if wire.usage_metadata is not None:
            self._usage = wire.usage_metadata.canonical()
        chunks: list[ChatChunk] = []
        refusal = _blocked(wire.prompt_feedback)
        if refusal is not None and not wire.candidates:
            self._done = True
            delta = Delta(role="assistant", refusal=refusal)
            return [
                ChatChunk(rid, self._model, [ChunkChoice(delta, "content_filter")]),
                *([ChatChunk(rid, self._model, [], self._usage)] if self._usage else []),
            ]
        for candidate in wire.candidates[:1]:
            text: list[str] = []
            calls: list[ToolCallDelta] = []
            for part in candidate.content.parts if candidate.content else ():
                if part.function_call is not None:
                    args = _args_text(part.function_call.args)
                    calls.append(
                        ToolCallDelta(
                            index=self._calls,
                            id=_call_id(rid, self._calls, part.function_call, args),
                            type="function",
                            function=FunctionDelta(name=part.function_call.name, arguments=args),
                        )
                    )
                    self._calls += 1
                elif part.text and not part.thought:
                    text.append(part.text)
            if text or calls:
                delta = Delta(content="".join(text) or None, tool_calls=calls or None)
                if not self._started:
                    delta.role, self._started = "assistant", True
                chunks.append(ChatChunk(rid, self._model, [ChunkChoice(delta)]))
            if candidate.finish_reason is not None:
                self._done = True
                finish = _finish(candidate.finish_reason, self._calls > 0)
                chunks.append(ChatChunk(rid, self._model, [ChunkChoice(Delta(), finish)]))
                if self._usage is not None:
                    chunks.append(ChatChunk(rid, self._model, [], self._usage))
        return chunks


class GeminiAdapter:
    """Gemini API `models.generateContent` / `models.streamGenerateContent`."""

    kind: ClassVar[str] = "gemini"

    def build(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> UpstreamCall:
        body = generate_content_body(request, deployment)
        provider = deployment.provider
        headers = {"content-type": "application/json", **dict(provider.headers)}
        if provider.api_key:
            headers["x-goog-api-key"] = provider.api_key
        url = model_url(provider.base_url, deployment.upstream_model, stream=stream)
        return UpstreamCall(url, headers, _encoder.encode(body))

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        try:
            wire = _response_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise UpstreamError(f"upstream sent an unreadable response: {exc}") from None
        if wire.error is not None:
            raise _rpc_error(wire.error)
        usage = wire.usage_metadata.canonical() if wire.usage_metadata else Usage()
        rid = wire.response_id
        if not wire.candidates:
            refusal = _blocked(wire.prompt_feedback)
            if refusal is None:
                raise UpstreamError("upstream response has no candidates")
            message = ResponseMessage(content="", refusal=refusal)
            return ChatResponse(rid, deployment.model, [Choice(message, "content_filter")], usage)
        candidate = wire.candidates[0]
        text: list[str] = []
        calls: list[ToolCall] = []
        for part in candidate.content.parts if candidate.content else ():
            if part.function_call is not None:
                args = _args_text(part.function_call.args)
                call_id = _call_id(rid, len(calls), part.function_call, args)
                calls.append(ToolCall(call_id, FunctionCall(part.function_call.name, args)))
            elif part.text and not part.thought:
                text.append(part.text)
        message = ResponseMessage(
            content="".join(text) if text or not calls else None, tool_calls=calls or None
        )
        finish = _finish(candidate.finish_reason or "STOP", bool(calls))
        return ChatResponse(rid, deployment.model, [Choice(message, finish)], usage)

    def stream_decoder(self, deployment: Deployment) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(deployment.model)

    def map_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
        try:
            env = _error_decoder.decode(body)
        except msgspec.DecodeError:
            # Keep the raw prefix: edge proxies answer errors in HTML.
            return classify_status(status, body[:200].decode("utf-8", "replace"), body, headers)
        if isinstance(env, list):  # the streaming endpoint wraps its error in a list
            env = env[0] if env else _ErrorEnvelope()
        error = env.error or _ErrorBody(message=body[:200].decode("utf-8", "replace"))
        return _classify(status, error, body, headers)
