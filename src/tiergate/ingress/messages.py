"""`POST /v1/messages`: the Anthropic Messages ingress, streaming and not.

A Messages request is translated to its canonical form (`messages_wire`) and handed to the
chat completions handler, so it takes exactly the same path as any other request: auth,
limits, controls, routing, tenancy (rate limits, budgets, cache), execution and the
ledger. Only the wire differs: the answer, the event stream and errors go back in
Anthropic's shapes, so the Anthropic SDK and coding agents work unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive

from tiergate.chat import ChatRequest, ChatResponse, Choice, Usage
from tiergate.errors import BadRequest, RateLimited, TiergateError, UpstreamError, UpstreamRejected
from tiergate.gateway import Gateway
from tiergate.ingress.body import read_body
from tiergate.ingress.chat import chat_completions
from tiergate.ingress.messages_answer import MessagesStreamEncoder, chat_response_to_messages
from tiergate.ingress.messages_wire import messages_request_to_chat
from tiergate.providers.openai import OpenAIStreamDecoder
from tiergate.providers.sse import SSEParser

_encoder = msgspec.json.Encoder()
_FIELD_NAMES = dict(
    zip(ChatRequest.__struct_fields__, ChatRequest.__struct_encode_fields__, strict=True)
)
_EVENT_STREAM = "text/event-stream"
ENDPOINT = "messages"
# Headers of the inner answer that describe its body, not the request.
_BODY_HEADERS = frozenset({"content-length", "content-type", "content-encoding"})

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error `type` for an HTTP status."""
    return _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(status: int, message: str) -> bytes:
    """Anthropic's error envelope: `{"type": "error", "error": {"type", "message"}}`."""
    return _encoder.encode(
        {"type": "error", "error": {"type": error_type(status), "message": message}}
    )


def _error_response(exc: TiergateError) -> Response:
    status = exc.client_status if isinstance(exc, UpstreamRejected) else exc.status
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers["retry-after"] = str(max(int(exc.retry_after + 0.999), 1))
    return Response(error_body(status, exc.message), status, headers, media_type="application/json")


class _OpenAIUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None

    def canonical(self) -> Usage:
        cached = (self.prompt_tokens_details or {}).get("cached_tokens") or 0
        reasoning = (self.completion_tokens_details or {}).get("reasoning_tokens") or 0
        return Usage(self.prompt_tokens, self.completion_tokens, cached, 0, reasoning)


class _OpenAIAnswer(msgspec.Struct):
    """The chat handler's JSON answer (OpenAI Chat Completions)."""

    choices: list[Choice]
    model: str = ""
    usage: _OpenAIUsage | None = None


class _OpenAIError(msgspec.Struct):
    message: str = ""


class _OpenAIEnvelope(msgspec.Struct):
    error: _OpenAIError | None = None


_answer_decoder = msgspec.json.Decoder(_OpenAIAnswer)
_error_decoder = msgspec.json.Decoder(_OpenAIEnvelope)


def _chat_body(chat: ChatRequest) -> bytes:
    body = msgspec.to_builtins(chat)
    body.pop(_FIELD_NAMES["extra"], None)
    if chat.stream:
        body["stream_options"] = {"include_usage": True}  # the usage goes in message_delta
    return _encoder.encode(body)


def _inner_request(request: Request, body: bytes) -> Request:
    """The same HTTP request, carrying the translated body to the chat handler."""
    scope = dict(request.scope)
    # For the ledger: the chat handler can read `request.state.endpoint` to book "messages".
    scope["state"] = {**request.scope.get("state", {}), "endpoint": ENDPOINT}
    scope["headers"] = [
        (k, v) for k, v in request.scope["headers"] if k not in (b"content-length", b"content-type")
    ] + [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Afterwards, the real connection: this is how a client disconnect is seen.
        return await request.receive()

    inner_receive: Receive = receive
    return Request(scope, inner_receive)


async def messages(request: Request) -> Response:
    """Handle one Messages API request."""
    gateway: Gateway = request.app.state.gateway
    try:
        gateway.keys.authenticate(request.headers)  # a bad key is a 401 before a bad body
        raw = await read_body(request, gateway.config.server)
        try:
            data = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        chat = messages_request_to_chat(data)
    except TiergateError as exc:
        return _error_response(exc)
    answer = await chat_completions(_inner_request(request, _chat_body(chat)))
    return _translate(answer)


def _headers(answer: Response) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k not in _BODY_HEADERS}


def _translate(answer: Response) -> Response:
    headers = _headers(answer)
    request_id = headers.get("x-tiergate-request-id", "")
    model = headers.get("x-tiergate-model", "")
    if answer.status_code >= 400:
        body = bytes(answer.body)
        try:
            envelope = _error_decoder.decode(body)
            message = envelope.error.message if envelope.error else body.decode("utf-8", "replace")
        except msgspec.DecodeError:
            message = body[:200].decode("utf-8", "replace")
        status = answer.status_code
        return Response(error_body(status, message), status, headers, media_type="application/json")
    encoder = MessagesStreamEncoder(f"msg_{request_id}", model)
    if isinstance(answer, StreamingResponse):
        return StreamingResponse(
            _events(encoder, model, answer.body_iterator), headers=headers, media_type=_EVENT_STREAM
        )
    if (answer.media_type or "").startswith(_EVENT_STREAM):  # a cached stream, replayed whole
        replay = _events(encoder, model, _once(bytes(answer.body)))
        return StreamingResponse(replay, headers=headers, media_type=_EVENT_STREAM)
    try:
        parsed = _answer_decoder.decode(answer.body)
        usage = parsed.usage.canonical() if parsed.usage else Usage()
        resp = ChatResponse(f"msg_{request_id}", parsed.model, parsed.choices, usage)
        body = _encoder.encode(chat_response_to_messages(resp, parsed.model or model))
    except (msgspec.DecodeError, UpstreamError) as exc:
        message = str(exc) if isinstance(exc, UpstreamError) else "unreadable answer"
        return Response(error_body(502, message), 502, headers, media_type="application/json")
    return Response(body, headers=headers, media_type="application/json")


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _events(
    encoder: MessagesStreamEncoder, model: str, chunks: AsyncIterable[Any] | Iterable[Any]
) -> AsyncIterator[bytes]:
    """The chat handler's OpenAI event stream, re-encoded as Messages events."""
    parser = SSEParser()
    decoder = OpenAIStreamDecoder(model)
    yield encoder.start()
    try:
        async for out in _reencode(encoder, parser, decoder, chunks):
            yield out
    finally:
        # Closing the chat handler's stream runs its own cleanup: cancel upstream, book.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _reencode(
    encoder: MessagesStreamEncoder,
    parser: SSEParser,
    decoder: OpenAIStreamDecoder,
    chunks: AsyncIterable[Any] | Iterable[Any],
) -> AsyncIterator[bytes]:
    try:
        async for raw in _aiter(chunks):
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            for event in parser.feed(data):
                for chunk in decoder.feed(event):
                    out = encoder.encode(chunk)
                    if out:
                        yield out
                if decoder.finished:
                    yield encoder.finish()
                    return
    except UpstreamError as exc:
        # The chat handler ended with an error event after the first byte.
        yield encoder.error(exc.message.removeprefix("upstream stream error: "), "api_error")
        return
    # The stream ended without [DONE]: never pretend it was complete.
    yield encoder.error("the answer stream ended early", "api_error")


async def _aiter(chunks: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterator[Any]:
    if hasattr(chunks, "__aiter__"):
        async for item in chunks:
            yield item
    else:
        for item in chunks:
            yield item
