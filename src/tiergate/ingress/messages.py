"""`POST /v1/messages`: the Anthropic Messages ingress, streaming and not.

The same path as `/v1/chat/completions` (auth, controls, routing, execution, ledger); only
the wire differs: the body is translated by `messages_wire`, answers and errors go back in
Anthropic's shapes, so the Anthropic SDK and coding agents work unchanged.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tiergate.chat import ChatRequest
from tiergate.errors import BadRequest, RateLimited, TiergateError, UpstreamError, UpstreamRejected
from tiergate.execution.executor import Completion, LiveStream
from tiergate.gateway import Gateway
from tiergate.ingress.body import read_body
from tiergate.ingress.chat import Exchange, _attempts_text, _baseline_cost, _policy
from tiergate.ingress.controls import read_controls
from tiergate.ingress.messages_wire import (
    MessagesStreamEncoder,
    chat_response_to_messages,
    messages_request_to_chat,
)

_encoder = msgspec.json.Encoder()
ENDPOINT = "messages"
"""How the ledger names this endpoint."""

# Anthropic's error `type` for each status we answer with.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    return _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_error_response(exc: TiergateError, headers: dict[str, str]) -> Response:
    """The error in Anthropic's envelope: `{"type": "error", "error": {"type", "message"}}`."""
    status = exc.client_status if isinstance(exc, UpstreamRejected) else exc.status
    out = dict(headers)
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        out["retry-after"] = str(max(int(exc.retry_after + 0.999), 1))
    body = {"type": "error", "error": {"type": error_type(status), "message": exc.message}}
    return Response(
        _encoder.encode(body), status_code=status, headers=out, media_type="application/json"
    )


def _decode(body: bytes) -> ChatRequest:
    try:
        data: Any = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    return messages_request_to_chat(data)


async def messages(request: Request) -> Response:
    """Handle one Messages API request."""
    gateway: Gateway = request.app.state.gateway
    ex = Exchange()
    try:
        key = gateway.keys.authenticate(request.headers)
        ex.key_name = key.name if key else None
        chat = _decode(await read_body(request, gateway.config.server))
        ex.controls = controls = read_controls(request.headers, chat.tiergate)
        if controls.route:
            chat.model = controls.route
        if controls.cache_bypass:
            ex.cache = "bypass"
        ex.decision = decision = gateway.router.decide(chat, min_tier=controls.min_tier)
        policy = _policy(gateway, decision)
        if chat.stream:
            live = await gateway.executor.stream(chat, decision, policy)
            return _stream_response(gateway, ex, chat, live)
        completion = await gateway.executor.complete(chat, decision, policy)
        return _respond(gateway, ex, completion, chat)
    except TiergateError as exc:
        return _fail(gateway, ex, exc)


def _fail(gateway: Gateway, ex: Exchange, exc: TiergateError) -> Response:
    response = anthropic_error_response(exc, ex.headers(None, 0.0))
    gateway.book(
        ex.entry(
            endpoint=ENDPOINT,
            status=response.status_code,
            error=f"{type(exc).__name__}: {exc.message}"[:500],
        )
    )
    return response


def _respond(gateway: Gateway, ex: Exchange, completion: Completion, chat: ChatRequest) -> Response:
    decision = ex.decision
    assert decision is not None
    usage = completion.usage
    cost = completion.cost_usd
    answer = completion.response
    answer.id = f"msg_{ex.request_id}"
    # Encoded before booking: a broken tool call raises here and is answered as an error.
    body = _encoder.encode(chat_response_to_messages(answer, completion.model.name))
    gateway.book(
        ex.entry(
            endpoint=ENDPOINT,
            model=completion.model.name,
            tier=completion.model.tier,
            deployment=completion.deployment.id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_input_tokens,
            cost_usd=cost,
            baseline_cost_usd=_baseline_cost(
                decision, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens
            ),
            fallbacks=completion.fallbacks,
            attempts=_attempts_text(completion.attempts),
            ttft_ms=completion.upstream_ms,
            upstream_ms=sum(a.latency_ms for a in completion.attempts),
        ),
        chat,
        answer,
    )
    headers = ex.headers(completion.model.name, cost)
    headers["x-tiergate-tier"] = completion.model.tier
    return Response(body, headers=headers, media_type="application/json")


def _stream_response(
    gateway: Gateway, ex: Exchange, chat: ChatRequest, live: LiveStream
) -> StreamingResponse:
    decision = ex.decision
    assert decision is not None
    model = live.model.name
    encoder = MessagesStreamEncoder(f"msg_{ex.request_id}", model)

    async def body() -> AsyncIterator[bytes]:
        status: int = 499
        error: str | None = "client disconnected"
        reading = time.perf_counter()
        try:
            yield encoder.start(live.prompt_tokens_estimate)
            async for chunk in live:
                events = encoder.encode(chunk)
                if events:
                    yield events
            yield encoder.finish(live.usage)
            status, error = 200, None
        except UpstreamError as exc:
            # After the first byte there is no failover: end with an `error` event.
            status, error = 502, exc.message
            upstream = exc.upstream_status or 500
            yield encoder.error(exc.message, error_type(upstream))
        finally:
            live.close()
            usage = live.usage
            gateway.book(
                ex.entry(
                    endpoint=ENDPOINT,
                    model=model,
                    tier=live.model.tier,
                    deployment=live.deployment.id,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cached_tokens=usage.cached_input_tokens,
                    cost_usd=live.cost_usd,
                    baseline_cost_usd=_baseline_cost(
                        decision, usage.input_tokens, usage.output_tokens, usage.cached_input_tokens
                    ),
                    fallbacks=len(live.attempts) - 1,
                    attempts=_attempts_text(live.attempts),
                    ttft_ms=live.first_byte_ms,
                    upstream_ms=sum(a.latency_ms for a in live.attempts)
                    + (time.perf_counter() - reading) * 1000,
                    status=status,
                    error=error,
                    stream=True,
                ),
                chat,
                live.response() if status == 200 and gateway.answer_sinks else None,
            )

    # As for chat completions: the cost header is the router's estimate and says so.
    headers = ex.headers(model, decision.estimated_cost_usd)
    headers["x-tiergate-tier"] = live.model.tier
    headers["x-tiergate-cost-basis"] = "estimate"
    headers["cache-control"] = "no-cache"
    return StreamingResponse(body(), headers=headers, media_type="text/event-stream")
