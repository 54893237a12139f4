"""What the static upstream answers: one chat completion and two SSE streams, as bytes."""

from __future__ import annotations

import json

CHAT_COMPLETION: dict[str, object] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "mock-model",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The request asks for a one-sentence summary, and here it is.",
                "refusal": None,
            },
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 21, "completion_tokens": 14, "total_tokens": 35},
    "system_fingerprint": None,
}


def chat_json() -> str:
    """The completion as compact JSON (no single quotes: it goes into nginx's `return`)."""
    text = json.dumps(CHAT_COMPLETION, separators=(",", ":"))
    assert "'" not in text and "$" not in text
    return text


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def sse_stream(content_chunks: int) -> bytes:
    """An OpenAI stream: a role chunk, `content_chunks` one-word chunks, finish, usage, DONE."""

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        return _event(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "mock-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    parts = [chunk({"role": "assistant", "content": ""})]
    parts.extend(chunk({"content": f" word{i}"}) for i in range(content_chunks))
    parts.append(chunk({}, "stop"))
    usage = {"prompt_tokens": 21, "completion_tokens": content_chunks, "total_tokens": 0}
    usage["total_tokens"] = 21 + content_chunks
    parts.append(
        _event(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "mock-model",
                "choices": [],
                "usage": usage,
            }
        )
    )
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)
