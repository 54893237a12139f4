"""A cached (complete) answer replayed as stream chunks, for streaming requests."""

from __future__ import annotations

from tiergate.chat import ChatChunk, ChatResponse, ChunkChoice, Delta, FunctionDelta, ToolCallDelta


def replay_chunks(response: ChatResponse) -> list[ChatChunk]:
    """The answer as two chunks (everything, then the finish reason), like a fast upstream."""
    message = response.message
    calls = [
        ToolCallDelta(
            index=i,
            id=c.id,
            type="function",
            function=FunctionDelta(name=c.function.name, arguments=c.function.arguments),
        )
        for i, c in enumerate(message.tool_calls or ())
    ]
    delta = Delta(
        role="assistant",
        content=message.content,
        tool_calls=calls or None,
        refusal=message.refusal,
    )
    return [
        ChatChunk(id=response.id, model=response.model, choices=[ChunkChoice(delta=delta)]),
        ChatChunk(
            id=response.id,
            model=response.model,
            choices=[ChunkChoice(delta=Delta(), finish_reason=response.finish_reason)],
        ),
    ]
