"""The Anthropic Messages API as an ingress: a canonical answer -> a Messages response
body or the exact Messages event stream. Pure.

A stop sequence match is reported as `end_turn` (the canonical answer does not say which
sequence matched), and `content_filter` as `refusal`. Usage goes back in Anthropic terms:
`input_tokens` without the cache reads and writes, which are reported apart.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from tiergate.chat import ChatChunk, ChatResponse, FinishReason, Usage
from tiergate.errors import UpstreamError

_encoder = msgspec.json.Encoder()

STOP_REASON: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# -- response: canonical -> Messages ----------------------------------------------------------


def messages_usage(usage: Usage) -> dict[str, int]:
    """Usage in Anthropic terms: `input_tokens` excludes cache reads and writes."""
    fresh = max(usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens, 0)
    return {
        "input_tokens": fresh,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
    }


def stop_reason(finish: FinishReason | None) -> str:
    return STOP_REASON.get(finish or "stop", "end_turn")


def _tool_input(arguments: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        # The model broke its tool call; a Messages client cannot receive that.
        raise UpstreamError("upstream returned tool call arguments that are not a JSON object")
    return value


def chat_response_to_messages(resp: ChatResponse, model: str) -> dict[str, Any]:
    """The Messages API response body for a canonical answer."""
    message = resp.message
    content: list[dict[str, Any]] = []
    text = message.content or message.refusal
    if text:
        content.append({"type": "text", "text": text})
    for call in message.tool_calls or ():
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": _tool_input(call.function.arguments),
            }
        )
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(resp.finish_reason),
        "stop_sequence": None,
        "usage": messages_usage(resp.usage),
    }


# -- stream: canonical chunks -> Messages events ----------------------------------------------


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    """One server-sent event, named as the Messages API names it."""
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


class MessagesStreamEncoder:
    """Turns canonical chunks into the Messages event sequence.

    `message_start` opens the stream; each text run and each tool call becomes a content
    block (`content_block_start`, deltas, `content_block_stop`); `finish()` sends
    `message_delta` (stop reason and usage) and `message_stop`. Tool call arguments go out
    as `input_json_delta` fragments exactly as they arrived. Upstreams stream one tool
    call after another, so a block is never reopened.
    """

    __slots__ = (
        "_block",
        "_finish",
        "_id",
        "_index",
        "_model",
        "_open",
        "_started",
        "_tool",
        "_usage",
    )

    def __init__(self, message_id: str, model: str):
        self._id = message_id
        self._model = model
        self._started = False
        self._index = -1  # the current content block
        self._open: Literal["text", "tool_use"] | None = None
        self._tool: int | None = None  # canonical index of the open tool call
        self._finish: FinishReason | None = None
        self._usage = Usage()

    def start(self, input_tokens: int = 0) -> bytes:
        """`message_start` (sent by `encode` too, if not sent yet)."""
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 0,
            },
        }
        return sse_event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open, self._tool = None, None
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _open_block(self, kind: Literal["text", "tool_use"], block: dict[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = kind
        event = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + sse_event("content_block_start", event)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return sse_event("content_block_delta", event)

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != "text":
            out = self._open_block("text", {"type": "text", "text": ""})
        return out + self._delta({"type": "text_delta", "text": text})

    def encode(self, chunk: ChatChunk) -> bytes:
        """The events for one canonical chunk (often several, sometimes none)."""
        out = self.start()
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            for text in (delta.content, delta.refusal):
                if text:
                    out += self._text(text)
            for call in delta.tool_calls or ():
                fn = call.function
                if self._open != "tool_use" or self._tool != call.index:
                    block = {
                        "type": "tool_use",
                        "id": call.id or "",
                        "name": (fn.name if fn else None) or "",
                        "input": {},
                    }
                    out += self._open_block("tool_use", block)
                    self._tool = call.index
                if fn is not None and fn.arguments:
                    out += self._delta({"type": "input_json_delta", "partial_json": fn.arguments})
            if choice.finish_reason is not None:
                self._finish = choice.finish_reason
        return out

    def finish(self, usage: Usage | None = None) -> bytes:
        """Close the open block, then `message_delta` and `message_stop`."""
        out = self.start() + self._close()
        final = messages_usage(usage or self._usage)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._finish), "stop_sequence": None},
            "usage": final,
        }
        out += sse_event("message_delta", delta)
        return out + sse_event("message_stop", {"type": "message_stop"})

    def error(self, message: str, kind: str = "api_error") -> bytes:
        """An `error` event: how a failure after the first byte is told to the client."""
        return sse_event("error", {"type": "error", "error": {"type": kind, "message": message}})
