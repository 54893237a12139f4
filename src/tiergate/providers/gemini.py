"""The `gemini` wire protocol: `generateContent` and `streamGenerateContent?alt=sse`.

The key travels in the `x-goog-api-key` header, never in the URL (URLs end up in logs).
Building the request is `tiergate.providers.gemini_request` (its docstring lists the
request-side mapping decisions); this module reads answers and maps errors:

- Gemini has no tool-call ids: a call's id is Gemini's own when it sends one, otherwise a
  stable hash of the response id, position, name and arguments.
- A prompt blocked by safety filters (`promptFeedback.blockReason`, no candidates) becomes
  an empty answer with finish reason `content_filter` and the reason in `refusal`, the
  same shape a content-filtered answer has on the other providers. It is not an error:
  the upstream worked, billed the prompt, and another model would likely refuse too.
- Finish reasons: STOP is `tool_calls` when the answer calls a function, else `stop`;
  MAX_TOKENS is `length`; the safety family (SAFETY, RECITATION, BLOCKLIST,
  PROHIBITED_CONTENT, SPII, IMAGE_*) is `content_filter`; anything else (OTHER,
  MALFORMED_FUNCTION_CALL, ...) is `stop`. Thought parts are never part of the answer.
"""

from __future__ import annotations

import hashlib
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
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tiergate.errors import UpstreamError
from tiergate.fleet import Deployment
from tiergate.providers.base import SSEEvent, UpstreamCall, classify_status
from tiergate.providers.gemini_request import generate_content_body, model_url
from tiergate.providers.translate import answer, arguments_text, decode_upstream, key_headers

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


# -- wire structs (responses) -------------------------------------------------------------


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


# -- generateContent -> canonical ---------------------------------------------------------


def _call_id(response_id: str, index: int, call: _FunctionCall, args: str) -> str:
    if call.id:
        return call.id
    digest = hashlib.sha256(f"{response_id}\0{index}\0{call.name}\0{args}".encode())
    return f"call_{digest.hexdigest()[:24]}"


def _answer_parts(
    candidate: _Candidate, response_id: str, first_call: int
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """A candidate's answer text pieces and its calls as (id, name, arguments); thought
    parts are left out. Calls are numbered from `first_call` (earlier stream chunks)."""
    text: list[str] = []
    calls: list[tuple[str, str, str]] = []
    for part in candidate.content.parts if candidate.content else ():
        if part.function_call is not None:
            args = arguments_text(part.function_call.args)
            call_id = _call_id(response_id, first_call + len(calls), part.function_call, args)
            calls.append((call_id, part.function_call.name, args))
        elif part.text and not part.thought:
            text.append(part.text)
    return text, calls


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
        wire = decode_upstream(_response_decoder, event.data, "stream event")
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
            text, found = _answer_parts(candidate, rid, self._calls)
            calls = [
                ToolCallDelta(
                    index=self._calls + k,
                    id=call_id,
                    type="function",
                    function=FunctionDelta(name=name, arguments=args),
                )
                for k, (call_id, name, args) in enumerate(found)
            ]
            self._calls += len(calls)
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
        headers = key_headers(provider, "x-goog-api-key")
        url = model_url(provider.base_url, deployment.upstream_model, stream=stream)
        return UpstreamCall(url, headers, _encoder.encode(body))

    def parse(self, body: bytes, deployment: Deployment) -> ChatResponse:
        wire = decode_upstream(_response_decoder, body, "response")
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
        text, found = _answer_parts(candidate, rid, 0)
        calls = [ToolCall(call_id, FunctionCall(name, args)) for call_id, name, args in found]
        finish = _finish(candidate.finish_reason or "STOP", bool(calls))
        return ChatResponse(rid, deployment.model, [Choice(answer(text, calls), finish)], usage)

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
