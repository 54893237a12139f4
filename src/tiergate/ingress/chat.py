"""`POST /v1/chat/completions`: the OpenAI ingress, streaming and not."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tiergate.cache.entry import CachedAnswer
from tiergate.cache.replay import replay_chunks
from tiergate.cache.service import BYPASS, Lookup
from tiergate.chat import ChatRequest, Usage, decode_chat_request
from tiergate.config.schema import FallbackConfig
from tiergate.errors import AllAttemptsFailed, BadRequest, TiergateError, UpstreamError
from tiergate.execution.buffered import BufferedStream
from tiergate.execution.executor import AttemptRecord, Completion, LiveStream
from tiergate.execution.strategy import Strategies, request_context
from tiergate.gateway import Gateway
from tiergate.ingress.controls import Controls, read_controls
from tiergate.ingress.errors import error_response
from tiergate.ingress.incoming import AsgiIncoming, Incoming
from tiergate.ingress.limits import cancel_on_disconnect, screen_request
from tiergate.ingress.openai_wire import (
    DONE,
    encode_chunk,
    encode_response,
    encode_stream_error,
    encode_usage_chunk,
)
from tiergate.ledger import LedgerEntry
from tiergate.ledger.entry import SubCall
from tiergate.ledger.prompts import prompt_to_record
from tiergate.routing.decision import Decision

_DIRECT_POLICY = FallbackConfig(other_models=False, tier_up=False)

_ID_RANDOM_BYTES = 10
_id_pool: list[bytes] = []


def new_request_id() -> str:
    """32 hex digits: milliseconds since the epoch (48 bits), then 80 random bits, as in
    a UUIDv7. Ids sort by arrival, so the ledger's request-id index grows at its end
    instead of at random places (random ids made each insert ~30% dearer), and 80 random
    bits keep them unguessable.

    The random bits come from `os.urandom`, read 2.5 KiB at a time: one system call per
    256 ids. A forked child starts with an empty pool, so no two processes share bits.
    """
    if not _id_pool:
        block = os.urandom(_ID_RANDOM_BYTES * 256)
        _id_pool.extend(
            block[i : i + _ID_RANDOM_BYTES] for i in range(0, len(block), _ID_RANDOM_BYTES)
        )
    return f"{time.time_ns() // 1_000_000:012x}{_id_pool.pop().hex()}"


os.register_at_fork(after_in_child=_id_pool.clear)


@dataclass(slots=True)
class Exchange:
    """One request's bookkeeping while it is in flight."""

    request_id: str = field(default_factory=new_request_id)
    arrived: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    key_name: str | None = None
    decision: Decision | None = None
    controls: Controls = field(default_factory=Controls)
    cache: str = "miss"
    endpoint: str = "chat"
    # Model calls besides the answer (classifier, judge, escalated cascade attempts,
    # cancelled speculative calls): booked with the request.
    sub_calls: list[SubCall] = field(default_factory=list)
    lookup: Lookup = BYPASS  # the response cache's lookup, to store the answer after a miss
    cache_match: str | None = None
    prompt: str | None = None  # kept only on routes with record_prompts

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def headers(self, model: str | None, cost_usd: float) -> dict[str, str]:
        d = self.decision
        out = {
            "x-tiergate-request-id": self.request_id,
            "x-tiergate-model": model or "none",
            "x-tiergate-tier": (d.tier if d and model else "none"),
            "x-tiergate-route": d.route if d else "none",
            "x-tiergate-cost-usd": f"{cost_usd:.8f}",
            "x-tiergate-cache": self.cache,
        }
        if d is not None:
            out["x-tiergate-reason"] = d.summary()
        if self.cache_match is not None:
            out["x-tiergate-cache-match"] = self.cache_match
        return out

    def entry(self, **values: object) -> LedgerEntry:
        d = self.decision
        base = LedgerEntry(
            request_id=self.request_id,
            ts=self.arrived,
            key_name=self.key_name,
            route=d.route if d else "none",
            strategy=d.strategy if d else "none",
            reasons="; ".join(d.reasons) if d else "",
            model=None,
            tier=None,
            deployment=None,
            baseline_model=d.baseline.name if d and d.baseline else None,
            latency_ms=self.elapsed_ms(),
            cache=self.cache,
            tags=list(self.controls.tags),
            endpoint=self.endpoint,
            prompt=self.prompt,
        )
        for name, value in values.items():
            setattr(base, name, value)
        for call in self.sub_calls:
            base.add_sub_call(call)
        return base


def _policy(gateway: Gateway, decision: Decision) -> FallbackConfig:
    route = gateway.routes.get(decision.route)
    return (
        route.fallback
        if route is not None
        else (_DIRECT_POLICY if decision.strategy == "model" else FallbackConfig())
    )


def _usage_fields(decision: Decision, usage: Usage) -> dict[str, int | float]:
    """The ledger's token counts for an answer, and what the route's baseline model would
    have charged for them."""
    baseline = decision.baseline
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_input_tokens,
        "baseline_cost_usd": (
            baseline.price.cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)
            if baseline is not None
            else 0.0
        ),
    }


def _attempts_text(attempts: list[AttemptRecord]) -> str:
    return ",".join(
        f"{a.deployment}:{a.upstream_status or 'error'}" for a in attempts if a.error is not None
    )


def _decode(body: bytes) -> ChatRequest:
    try:
        return decode_chat_request(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) for invalid UTF-8 inside a string.
        raise BadRequest("the body is not valid JSON: it is not valid UTF-8") from None
    except RecursionError:
        # Only reachable when server.max_json_depth is set above what the decoder can take.
        raise BadRequest("the JSON body is nested too deeply") from None


async def chat_completions(request: Request) -> Response:
    """The ASGI endpoint (and the Messages ingress's delegate)."""
    return await handle_chat(request.app.state.gateway, AsgiIncoming(request))


Settle = Callable[[], None]


def _settle(defer: list[Settle] | None, work: Settle) -> None:
    """Run a finished request's bookkeeping now, or leave it to the caller (`defer`)."""
    if defer is None:
        work()
    else:
        defer.append(work)


async def handle_chat(
    gateway: Gateway, incoming: Incoming, defer: list[Settle] | None = None
) -> Response:
    """One chat completion request, from headers and body to the response (errors included:
    every `TiergateError` becomes its envelope, booked in the ledger).

    With `defer`, the bookkeeping of the finished request (ledger row, observers, the cache
    store) is appended to it instead of run: a caller that writes the response itself runs
    it right after the write, in the same loop step, so the client is not kept waiting for
    it and no later request can observe the difference. A streamed answer books itself when
    its body ends.
    """
    ex = Exchange()
    ex.endpoint = incoming.endpoint
    headers = incoming.headers
    try:
        key = gateway.keys.authenticate(headers)
        ex.key_name = key.name if key else None
        chat = _decode(await incoming.body(gateway.config.server))
        screen_request(chat)
        ex.controls = controls = read_controls(headers, chat.tiergate)
        if controls.route:
            chat.model = controls.route
        if controls.cache_bypass:
            ex.cache = "bypass"
        strategies = Strategies(gateway.router, gateway.executor)
        context = request_context(key, controls, chat, ex.endpoint)
        ex.decision = decision = await strategies.decide(
            chat,
            context,
            ex.sub_calls,
            lambda pending: gateway.tenants.precheck(ex.request_id, key, pending),
        )
        ex.prompt = prompt_to_record(gateway, decision.route, chat)
        # Tenancy: allow-lists and rate limits, then the cache, then the budget reservation.
        ex.decision = decision = await gateway.tenants.admit(ex.request_id, key, decision)
        ex.lookup = await gateway.tenants.lookup(key, chat, decision, bypass=controls.cache_bypass)
        ex.cache = ex.lookup.status
        if ex.lookup.answer is not None:
            return _cached(gateway, ex, chat, ex.lookup.answer, defer)
        await gateway.tenants.reserve(
            ex.request_id,
            key,
            decision,
            lambda: strategies.cost_bound_usd(chat, decision, ex.sub_calls),
        )
        policy = _policy(gateway, decision)
        if chat.stream:
            live = await cancel_on_disconnect(
                incoming, strategies.stream(chat, decision, policy, ex.sub_calls)
            )
            return _stream_response(gateway, ex, chat, live)
        completion = await cancel_on_disconnect(
            incoming, strategies.complete(chat, decision, policy, ex.sub_calls)
        )
    except TiergateError as exc:
        return _fail(gateway, ex, exc, defer)
    return _respond(gateway, ex, completion, chat, defer)


def _fail(
    gateway: Gateway, ex: Exchange, exc: TiergateError, defer: list[Settle] | None
) -> Response:
    response = error_response(exc, ex.headers(None, 0.0))
    error = f"{type(exc).__name__}: {exc.message}"[:500]
    status = response.status_code
    if isinstance(exc, AllAttemptsFailed) and exc.tried:
        # the ledger says which deployments failed and how, not only that the request did
        tried = ",".join(f"{d}:{s or 'error'}" for d, s in exc.tried)
        fallbacks = len(exc.tried) - 1
        _settle(
            defer,
            lambda: gateway.book(
                ex.entry(status=status, error=error, attempts=tried, fallbacks=fallbacks)
            ),
        )
        return response
    _settle(defer, lambda: gateway.book(ex.entry(status=status, error=error)))
    return response


def _respond(
    gateway: Gateway,
    ex: Exchange,
    completion: Completion,
    chat: ChatRequest,
    defer: list[Settle] | None,
) -> Response:
    decision = ex.decision
    assert decision is not None
    cost = completion.cost_usd
    body = encode_response(completion.response, ex.request_id, cost)

    def settle() -> None:
        gateway.book(
            ex.entry(
                model=completion.model.name,
                tier=completion.model.tier,
                deployment=completion.deployment.id,
                cost_usd=cost,
                **_usage_fields(decision, completion.usage),
                fallbacks=completion.fallbacks,
                attempts=_attempts_text(completion.attempts),
                ttft_ms=completion.upstream_ms,
                upstream_ms=sum(a.latency_ms for a in completion.attempts),
            ),
            chat,
            completion.response,
        )
        gateway.tenants.remember(
            ex.lookup,
            ex.request_id,
            completion.response,
            model=completion.model.name,
            tier=completion.model.tier,
            deployment=completion.deployment.id,
            cost_usd=cost,
        )

    _settle(defer, settle)
    headers = ex.headers(completion.model.name, cost)
    headers["x-tiergate-tier"] = completion.model.tier
    return Response(body, headers=headers, media_type="application/json")


def _cached(
    gateway: Gateway,
    ex: Exchange,
    chat: ChatRequest,
    answer: CachedAnswer,
    defer: list[Settle] | None,
) -> Response:
    """A cache hit: the stored answer (replayed as a stream when one was asked for), booked
    at $0 with what it saved; no upstream call, no budget reserved."""
    decision = ex.decision
    assert decision is not None
    usage = answer.response.usage
    ex.cache_match = answer.request_id
    _settle(
        defer,
        lambda: gateway.book(
            ex.entry(
                model=answer.model,
                tier=answer.tier,
                deployment=answer.deployment,
                **_usage_fields(decision, usage),
                cache_saved_usd=answer.cost_usd,
                cache_match=answer.request_id,
                stream=chat.stream,
            )
        ),
    )
    headers = ex.headers(answer.model, 0.0)
    headers["x-tiergate-tier"] = answer.tier
    response = msgspec.structs.replace(answer.response, id=f"chatcmpl-{ex.request_id}")
    if not chat.stream:
        body = encode_response(response, ex.request_id, 0.0)
        return Response(body, headers=headers, media_type="application/json")
    chunk_id, created = response.id, int(ex.arrived)
    parts = [encode_chunk(c, chunk_id, answer.model, created) for c in replay_chunks(response)]
    if chat.stream_options and chat.stream_options.include_usage:
        parts.append(encode_usage_chunk(usage, 0.0, chunk_id, answer.model, created))
    parts.append(DONE)
    headers["cache-control"] = "no-cache"
    return Response(b"".join(parts), headers=headers, media_type="text/event-stream")


def _stream_response(
    gateway: Gateway, ex: Exchange, chat: ChatRequest, live: LiveStream | BufferedStream
) -> StreamingResponse:
    decision = ex.decision
    assert decision is not None
    include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
    chunk_id = f"chatcmpl-{ex.request_id}"
    model = live.model.name
    created = int(ex.arrived)

    async def body() -> AsyncIterator[bytes]:
        status: int = 499
        error: str | None = "client disconnected"
        reading = time.perf_counter()
        try:
            async for chunk in live:
                if chunk.choices:
                    yield encode_chunk(chunk, chunk_id, model, created)
            if include_usage:
                yield encode_usage_chunk(live.usage, live.cost_usd, chunk_id, model, created)
            yield DONE
            status, error = 200, None
            gateway.tenants.remember(
                ex.lookup,
                ex.request_id,
                live.response(),
                model=model,
                tier=live.model.tier,
                deployment=live.deployment.id,
                cost_usd=live.cost_usd,
            )
        except UpstreamError as exc:
            # After the first byte there is no failover: end with an error, never a silent [DONE].
            status, error = 502, exc.message
            yield encode_stream_error(exc.message, exc.error_type, exc.code)
        finally:
            live.close()
            gateway.book(
                ex.entry(
                    model=model,
                    tier=live.model.tier,
                    deployment=live.deployment.id,
                    cost_usd=live.cost_usd,
                    **_usage_fields(decision, live.usage),
                    fallbacks=len(live.attempts) - 1,
                    attempts=_attempts_text(live.attempts),
                    ttft_ms=live.first_byte_ms,
                    # failed attempts and the first byte, then the rest of the stream
                    upstream_ms=sum(a.latency_ms for a in live.attempts)
                    + (time.perf_counter() - reading) * 1000,
                    status=status,
                    error=error,
                    stream=True,
                ),
                chat,
                live.response() if status == 200 and gateway.answer_sinks else None,
            )

    # Headers leave before the answer exists: the cost header is the router's estimate and
    # says so; the exact figure is in the final usage chunk and the ledger.
    headers = ex.headers(model, decision.estimated_cost_usd)
    headers["x-tiergate-tier"] = live.model.tier
    headers["x-tiergate-cost-basis"] = "estimate"
    headers["cache-control"] = "no-cache"
    return StreamingResponse(body(), headers=headers, media_type="text/event-stream")
