"""Running a decision: attempts, retries with backoff, failover along the candidate list.

Order of attempts: each candidate model in the decision's order (which already lists the
next tiers up when the route allows it); within a model, its deployments that are not
cooling down; on one deployment, up to `retries` extra attempts for retryable errors.
A client's own mistake (the upstream's 400/404/422) ends everything at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from tiergate.chat import ChatChunk, ChatRequest, ChatResponse, Usage, accumulate
from tiergate.config.schema import FallbackConfig
from tiergate.errors import (
    AllAttemptsFailed,
    NoCandidates,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from tiergate.execution.health import HealthBoard
from tiergate.fleet import Deployment, Model
from tiergate.providers.base import Adapter, StreamDecoder
from tiergate.providers.transport import Transport, UpstreamResponse
from tiergate.routing.decision import Decision
from tiergate.routing.features import estimate_tokens

_T = TypeVar("_T")


@dataclass(slots=True)
class AttemptRecord:
    deployment: str
    latency_ms: float
    error: str | None = None
    upstream_status: int | None = None


@dataclass(slots=True)
class Completion:
    """A finished, non-streamed answer and how it was obtained."""

    response: ChatResponse
    model: Model
    deployment: Deployment
    attempts: list[AttemptRecord]
    upstream_ms: float

    @property
    def usage(self) -> Usage:
        return self.response.usage

    @property
    def cost_usd(self) -> float:
        u = self.response.usage
        return self.model.price.cost(
            u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens
        )

    @property
    def fallbacks(self) -> int:
        return len(self.attempts) - 1


def _tried(attempts: list[AttemptRecord]) -> list[tuple[str, int | None]]:
    return [(a.deployment, a.upstream_status) for a in attempts]


def _plan(decision: Decision, policy: FallbackConfig, health: HealthBoard) -> Iterator[Deployment]:
    """Deployments in attempt order, skipping those whose circuit is open."""
    models = decision.candidates if policy.other_models else decision.candidates[:1]
    for model in models:
        deployments = model.deployments if policy.other_deployments else model.deployments[:1]
        for deployment in deployments:
            if health.available(deployment.id):
                yield deployment


class Executor:
    """Executes decisions against providers. One per gateway process."""

    def __init__(
        self,
        adapters: dict[str, Adapter],
        transport: Transport,
        health: HealthBoard,
        rng: random.Random | None = None,
    ):
        self.adapters = adapters
        self.transport = transport
        self.health = health
        self._rng = rng or random.Random()

    def _adapter(self, deployment: Deployment) -> Adapter:
        return self.adapters[deployment.provider.kind]

    async def _backoff(self, attempt: int, error: UpstreamError, policy: FallbackConfig) -> bool:
        """Wait before retrying the same deployment; False when it is not worth waiting."""
        if error.retry_after is not None:
            if error.retry_after > policy.retry_after_cap:
                return False
            delay = error.retry_after
        else:
            delay = min(policy.backoff_base * (2**attempt), policy.backoff_max)
            delay *= 0.5 + self._rng.random()  # jitter: spread retries of many clients apart
        await asyncio.sleep(delay)
        return True

    def _retry_here(
        self, deployment: Deployment, error: UpstreamError, attempt: int, policy: FallbackConfig
    ) -> bool:
        """Whether to try the same deployment again (not once its circuit has opened)."""
        return (
            error.retryable and attempt < policy.retries and not self.health.cooling(deployment.id)
        )

    def _record_failure(self, deployment: Deployment, error: UpstreamError) -> None:
        if isinstance(error, UpstreamRejected):
            self.health.release_probe(deployment.id)
        else:
            self.health.failure(
                deployment.id, dead_credential=isinstance(error, UpstreamAuthFailed)
            )

    async def _attempt_all(
        self,
        decision: Decision,
        policy: FallbackConfig,
        attempt: Callable[[Deployment], Awaitable[_T]],
    ) -> tuple[_T, Deployment, list[AttemptRecord]]:
        """Run `attempt` along the plan until one succeeds; the shared failover loop.

        Returns the result, the deployment that produced it and every failed attempt.
        """
        errors: list[UpstreamError] = []
        failed: list[AttemptRecord] = []
        for deployment in _plan(decision, policy, self.health):
            for tries in range(policy.retries + 1):
                if len(failed) >= policy.max_attempts:
                    raise AllAttemptsFailed(errors, _tried(failed))
                started = time.perf_counter()
                try:
                    result = await attempt(deployment)
                except UpstreamError as error:
                    elapsed = (time.perf_counter() - started) * 1000
                    failed.append(
                        AttemptRecord(deployment.id, elapsed, error.message, error.upstream_status)
                    )
                    self._record_failure(deployment, error)
                    if isinstance(error, UpstreamRejected):
                        raise
                    errors.append(error)
                    if not self._retry_here(deployment, error, tries, policy):
                        break
                    if not await self._backoff(tries, error, policy):
                        break
                    continue
                return result, deployment, failed
        if not errors:
            raise NoCandidates("every candidate deployment is cooling down after failures")
        raise AllAttemptsFailed(errors, _tried(failed))

    async def complete(
        self, request: ChatRequest, decision: Decision, policy: FallbackConfig
    ) -> Completion:
        """A whole answer, with retries and failover."""
        timed: list[float] = []

        async def attempt(deployment: Deployment) -> ChatResponse:
            started = time.perf_counter()
            response = await self._call(request, deployment)
            timed.append((time.perf_counter() - started) * 1000)
            return response

        response, deployment, attempts = await self._attempt_all(decision, policy, attempt)
        elapsed = timed[-1]
        self.health.success(deployment.id, elapsed)
        attempts.append(AttemptRecord(deployment.id, elapsed))
        model = next(m for m in decision.candidates if m.name == deployment.model)
        return Completion(response, model, deployment, attempts, elapsed)

    async def _call(self, request: ChatRequest, deployment: Deployment) -> ChatResponse:
        adapter = self._adapter(deployment)
        call = adapter.build(request, deployment, stream=False)
        provider = deployment.provider
        # The total timeout is a deadline the transport keeps on the connection's timer.
        deadline = asyncio.get_running_loop().time() + provider.timeouts.total
        upstream = await self.transport.post(provider, call, deadline)
        if upstream.status >= 300:
            body = await upstream.read_error_body()  # b"" if it cannot be had in time
            raise adapter.map_error(upstream.status, body, upstream.headers)
        body = await upstream.read()
        return adapter.parse(body, deployment)

    async def stream(
        self, request: ChatRequest, decision: Decision, policy: FallbackConfig
    ) -> LiveStream:
        """Open a stream and read until its first chunk; fail over until then."""

        async def attempt(deployment: Deployment) -> LiveStream:
            return await self._open(request, deployment, decision)

        live, deployment, attempts = await self._attempt_all(decision, policy, attempt)
        live.attempts = [*attempts, AttemptRecord(deployment.id, live.first_byte_ms)]
        return live

    async def _open(
        self, request: ChatRequest, deployment: Deployment, decision: Decision
    ) -> LiveStream:
        adapter = self._adapter(deployment)
        call = adapter.build(request, deployment, stream=True)
        provider = deployment.provider
        started = time.perf_counter()
        upstream = await self.transport.post(provider, call)
        if upstream.status >= 300:
            body = await upstream.read_error_body()
            raise adapter.map_error(upstream.status, body, upstream.headers)
        model = next(m for m in decision.candidates if m.name == deployment.model)
        live = LiveStream(self, upstream, adapter.stream_decoder(deployment), model, deployment)
        live.prompt_tokens_estimate = decision.prompt_tokens
        try:
            await live.prime()
        except BaseException:
            upstream.close()
            raise
        live.first_byte_ms = (time.perf_counter() - started) * 1000
        return live


@dataclass(eq=False)
class LiveStream:
    """An upstream stream whose first chunk has arrived. Iterate to get every chunk."""

    executor: Executor
    upstream: UpstreamResponse
    decoder: StreamDecoder
    model: Model
    deployment: Deployment
    attempts: list[AttemptRecord] = field(default_factory=list)
    chunks: list[ChatChunk] = field(default_factory=list)
    first_byte_ms: float = 0.0
    prompt_tokens_estimate: int = 0
    completed: bool = False
    _events: AsyncIterator[ChatChunk] | None = None
    _pending: list[ChatChunk] = field(default_factory=list)
    _started: float = field(default_factory=time.perf_counter)

    async def _chunks(self) -> AsyncIterator[ChatChunk]:
        async for event in self.upstream.events():
            for chunk in self.decoder.feed(event):
                yield chunk
            if self.decoder.finished:
                return

    async def prime(self) -> None:
        """Read until the first chunk, so failures before it can still fail over."""
        self._events = self._chunks()
        timeout = self.deployment.provider.timeouts.first_byte
        try:
            async with asyncio.timeout(timeout):
                async for chunk in self._events:
                    self._pending.append(chunk)
                    if chunk.choices or chunk.usage is not None:
                        return
        except TimeoutError:
            raise UpstreamTimeout("no first stream event before the first-byte timeout") from None
        if self.decoder.finished:
            return  # an empty but complete stream is a valid (empty) answer
        raise UpstreamError("upstream stream ended before its first event")

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        assert self._events is not None, "prime() first"
        try:
            for chunk in self._pending:
                self.chunks.append(chunk)
                yield chunk
            self._pending.clear()
            async for chunk in self._events:
                self.chunks.append(chunk)
                yield chunk
            if not self.decoder.finished:
                raise UpstreamError("upstream stream was cut off before its end marker")
            self.completed = True
            elapsed = (time.perf_counter() - self._started) * 1000
            self.executor.health.success(self.deployment.id, elapsed)
        except UpstreamError:
            self.executor.health.failure(self.deployment.id)
            raise
        finally:
            self.upstream.close()

    def close(self) -> None:
        """Cancel the upstream call (client went away, or speculative loser)."""
        self.upstream.close()

    def response(self) -> ChatResponse:
        """What was produced so far, folded into one response."""
        return accumulate(self.chunks)

    @property
    def usage(self) -> Usage:
        """The upstream's own figures when it sent them; else an estimate of what was produced."""
        for chunk in reversed(self.chunks):
            if chunk.usage is not None:
                return chunk.usage
        produced = self.response()
        text = (produced.message.content or "") + "".join(
            c.function.arguments for c in produced.message.tool_calls or ()
        )
        return Usage(input_tokens=self.prompt_tokens_estimate, output_tokens=estimate_tokens(text))

    @property
    def cost_usd(self) -> float:
        u = self.usage
        return self.model.price.cost(
            u.input_tokens, u.output_tokens, u.cached_input_tokens, u.cache_write_tokens
        )
