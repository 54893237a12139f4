"""Canonical responses and chunks rendered as OpenAI Chat Completions JSON."""

from __future__ import annotations

from typing import Any

import msgspec

from tiergate.chat import ChatChunk, ChatResponse, Usage

_encoder = msgspec.json.Encoder()


def usage_json(usage: Usage, cost_usd: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
    if cost_usd is not None:
        out["cost_usd"] = round(cost_usd, 10)
    return out


def encode_response(response: ChatResponse, request_id: str, cost_usd: float) -> bytes:
    choices = []
    for c in response.choices:
        message: dict[str, Any] = {"role": "assistant", "content": c.message.content}
        if c.message.tool_calls:
            message["tool_calls"] = msgspec.to_builtins(c.message.tool_calls)
        message["refusal"] = c.message.refusal
        choices.append(
            {
                "index": c.index,
                "message": message,
                "finish_reason": c.finish_reason,
                "logprobs": None,
            }
        )
    return _encoder.encode(
        {
            "id": response.id or f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": response.created,
            "model": response.model,
            "choices": choices,
            "usage": usage_json(response.usage, cost_usd),
            "system_fingerprint": None,
        }
    )


def encode_chunk(chunk: ChatChunk, chunk_id: str, model: str, created: int) -> bytes:
    """One `data:` line. Ids and model are made consistent across failover attempts."""
    choices = [
        {
            "index": c.index,
            "delta": msgspec.to_builtins(c.delta),
            "finish_reason": c.finish_reason,
            "logprobs": None,
        }
        for c in chunk.choices
    ]
    body = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    return b"data: " + _encoder.encode(body) + b"\n\n"


def encode_usage_chunk(
    usage: Usage, cost_usd: float, chunk_id: str, model: str, created: int
) -> bytes:
    body = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_json(usage, cost_usd),
    }
    return b"data: " + _encoder.encode(body) + b"\n\n"


def encode_stream_error(message: str, error_type: str, code: str | None) -> bytes:
    """An error after the first byte: the stream ends with this event and no [DONE]."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return b"data: " + _encoder.encode(body) + b"\n\n"


DONE = b"data: [DONE]\n\n"
