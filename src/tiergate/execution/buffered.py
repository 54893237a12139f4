"""A complete answer served as a stream: what cascade and speculative routes send to a
streaming client once an answer has passed validation (it had to be whole to be checked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tiergate.cache.replay import replay_chunks
from tiergate.chat import ChatChunk, ChatResponse, Usage
from tiergate.execution.executor import AttemptRecord, Completion
from tiergate.fleet import Deployment, Model


@dataclass(eq=False)
class BufferedStream:
    """Quacks like `LiveStream` for the ingress: iterate for chunks, then read usage/cost."""

    completion: Completion
    chunks: list[ChatChunk] = field(default_factory=list)
    completed: bool = False

    @property
    def model(self) -> Model:
        return self.completion.model

    @property
    def deployment(self) -> Deployment:
        return self.completion.deployment

    @property
    def attempts(self) -> list[AttemptRecord]:
        return self.completion.attempts

    @property
    def first_byte_ms(self) -> float:
        return self.completion.upstream_ms

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        for chunk in replay_chunks(self.completion.response):
            self.chunks.append(chunk)
            yield chunk
        self.completed = True

    def close(self) -> None:
        """Nothing to cancel: the upstream call is already over."""

    def response(self) -> ChatResponse:
        return self.completion.response

    @property
    def usage(self) -> Usage:
        return self.completion.usage

    @property
    def cost_usd(self) -> float:
        return self.completion.cost_usd
