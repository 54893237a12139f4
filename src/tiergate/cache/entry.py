"""What the cache keeps for one answer, and the key of an exact match."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec

from tiergate.chat import ChatRequest, ChatResponse


class CachedAnswer(msgspec.Struct, omit_defaults=True):
    """An answer as it was first produced: by which request, model, and at what cost."""

    request_id: str
    response: ChatResponse
    model: str
    tier: str
    deployment: str
    cost_usd: float
    created: float = msgspec.field(default_factory=time.time)


_encoder = msgspec.json.Encoder(order="sorted")
_answer_decoder = msgspec.json.Decoder(CachedAnswer)


def encode_answer(answer: CachedAnswer) -> bytes:
    return _encoder.encode(answer)


def decode_answer(data: bytes) -> CachedAnswer:
    return _answer_decoder.decode(data)


def request_shape(chat: ChatRequest, *, with_messages: bool = True) -> dict[str, Any]:
    """Everything in a request that can change its answer. Left out: `stream` and
    `stream_options` (a stream can be served from a non-streamed answer and back),
    `user`, `metadata` and tiergate's own controls."""
    shape: dict[str, Any] = {
        "model": chat.model,
        "tools": chat.tools,
        "tool_choice": chat.tool_choice,
        "response_format": chat.response_format,
        "temperature": chat.temperature,
        "top_p": chat.top_p,
        "max_tokens": chat.output_limit,
        "stop": chat.stop_list(),
        "seed": chat.seed,
        "presence_penalty": chat.presence_penalty,
        "frequency_penalty": chat.frequency_penalty,
        "parallel_tool_calls": chat.parallel_tool_calls,
        "extra": chat.extra,
    }
    if with_messages:
        shape["messages"] = chat.messages
    return shape


def digest(tenant: str, shape: dict[str, Any]) -> str:
    """sha256 over the tenant and the canonical (key-sorted) JSON of the request."""
    h = hashlib.sha256(tenant.encode("utf-8"))
    h.update(b"\x00")
    h.update(_encoder.encode(shape))
    return h.hexdigest()
