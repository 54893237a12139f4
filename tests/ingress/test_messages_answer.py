"""Anthropic Messages ingress, the answer side (canonical -> a Messages body or event
stream), checked against the official SDK's own types."""

from __future__ import annotations

import itertools
from typing import Any

import anthropic
import msgspec
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from tiergate.chat import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionDelta,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tiergate.errors import UpstreamError
from tiergate.ingress.messages_answer import MessagesStreamEncoder, chat_response_to_messages
from tiergate.providers.sse import SSEParser

EVENTS = pydantic.TypeAdapter(RawMessageStreamEvent)


# -- responses ------------------------------------------------------------------------------

USAGE = Usage(input_tokens=1120, output_tokens=40, cached_input_tokens=1000, cache_write_tokens=100)


def response(
    content: str | None, calls: list[ToolCall] | None = None, finish: Any = "stop"
) -> ChatResponse:
    return ChatResponse(
        "msg_tg1", "m", [Choice(ResponseMessage(content=content, tool_calls=calls), finish)], USAGE
    )


def test_response() -> None:
    calls = [ToolCall("call_1", FunctionCall("get_weather", '{"city": "Paris", "a": 1}'))]
    body = chat_response_to_messages(response("Checking.", calls, "tool_calls"), "auto")
    message = anthropic.types.Message.model_validate(body)  # the SDK accepts it as is
    assert message.model == "auto" and message.id == "msg_tg1"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert body["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Paris", "a": 1},
    }
    assert message.stop_reason == "tool_use"
    assert body["usage"] == {
        "input_tokens": 20,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 40,
    }


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_stop_reasons_back(finish: Any, stop_reason: str) -> None:
    assert (
        chat_response_to_messages(response("x", finish=finish), "m")["stop_reason"] == stop_reason
    )


def test_empty_answer_and_refusal() -> None:
    assert chat_response_to_messages(response(""), "m")["content"] == []
    blocked = ChatResponse(
        "r",
        "m",
        [Choice(ResponseMessage(content="", refusal="blocked (SAFETY)"), "content_filter")],
    )
    body = chat_response_to_messages(blocked, "m")
    assert (
        body["content"] == [{"type": "text", "text": "blocked (SAFETY)"}]
        and body["stop_reason"] == "refusal"
    )


@pytest.mark.parametrize("arguments", ["{bad", "[1]"])
def test_broken_tool_arguments_are_an_upstream_error(arguments: str) -> None:
    with pytest.raises(UpstreamError):
        chat_response_to_messages(
            response(None, [ToolCall("c", FunctionCall("f", arguments))], "tool_calls"), "m"
        )


# -- streams --------------------------------------------------------------------------------


def parse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = SSEParser().feed(raw)
    return [(e.event, msgspec.json.decode(e.data)) for e in events]


def sdk_message(raw: bytes) -> anthropic.types.Message:
    """What the Anthropic SDK builds from our event stream."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in parse_events(raw):
        assert name == data["type"]
        event = EVENTS.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return snapshot


def chunk(delta: Delta, finish: Any = None, usage: Usage | None = None) -> ChatChunk:
    return ChatChunk("c1", "m", [ChunkChoice(delta, finish)], usage)


def tool_delta(
    index: int, call_id: str | None = None, name: str | None = None, args: str = ""
) -> Delta:
    return Delta(
        tool_calls=[
            ToolCallDelta(
                index, call_id, "function" if call_id else None, FunctionDelta(name, args)
            )
        ]
    )


def test_stream_event_sequence() -> None:
    enc = MessagesStreamEncoder("msg_tg1", "auto")
    raw = enc.start(input_tokens=12)
    for c in [
        chunk(Delta(role="assistant")),
        chunk(Delta(content="Let me ")),
        chunk(Delta(content="check.")),
        chunk(tool_delta(0, "call_1", "get_weather", "")),
        chunk(tool_delta(0, args='{"city": ')),
        chunk(tool_delta(0, args='"Paris"}')),
        chunk(tool_delta(1, "call_2", "now", "{}")),
        chunk(Delta(), "tool_calls"),
        ChatChunk("c1", "m", [], USAGE),
    ]:
        raw += enc.encode(c)
    raw += enc.finish()
    events = parse_events(raw)
    assert [(name, d.get("index")) for name, d in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 12
    assert events[5][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    assert events[6][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city": '}
    assert events[12][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": 40,
        },
    }
    message = sdk_message(raw)
    assert message.content[0].type == "text" and message.content[0].text == "Let me check."
    tool_uses = [b for b in message.content if b.type == "tool_use"]
    assert [(b.id, b.name, b.input) for b in tool_uses] == [
        ("call_1", "get_weather", {"city": "Paris"}),
        ("call_2", "now", {}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 40


def test_empty_stream_still_well_formed() -> None:
    enc = MessagesStreamEncoder("msg_x", "m")
    raw = enc.finish(Usage(input_tokens=3, output_tokens=0))
    assert [name for name, _ in parse_events(raw)] == [
        "message_start",
        "message_delta",
        "message_stop",
    ]
    assert sdk_message(raw).content == []


def test_error_event() -> None:
    enc = MessagesStreamEncoder("msg_x", "m")
    raw = enc.encode(chunk(Delta(content="partial"))) + enc.error(
        "upstream overloaded", "overloaded_error"
    )
    name, data = parse_events(raw)[-1]
    assert name == "error"
    assert data == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "upstream overloaded"},
    }


@settings(max_examples=60)
@given(
    text=st.text(max_size=80),
    args=st.lists(
        st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=3),
        max_size=3,
    ),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_stream_and_body_agree(text: str, args: list[dict[str, Any]], cuts: list[int]) -> None:
    arguments = [msgspec.json.encode(a).decode() for a in args]
    calls = [ToolCall(f"call_{i}", FunctionCall(f"fn_{i}", a)) for i, a in enumerate(arguments)]
    finish = "tool_calls" if calls else "stop"
    full = response(text or None, calls or None, finish)
    chunks = [chunk(Delta(role="assistant"))]
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    chunks += [chunk(Delta(content=text[a:b])) for a, b in itertools.pairwise(points) if b > a]
    for i, a in enumerate(arguments):
        half = len(a) // 2
        chunks += [
            chunk(tool_delta(i, f"call_{i}", f"fn_{i}", a[:half])),
            chunk(tool_delta(i, args=a[half:])),
        ]
    chunks += [chunk(Delta(), finish), ChatChunk("c1", "m", [], USAGE)]
    enc = MessagesStreamEncoder("msg_tg1", "auto")
    raw = b"".join(enc.encode(c) for c in chunks) + enc.finish()
    streamed = sdk_message(raw).model_dump(exclude_none=True, exclude={"usage"})
    body = anthropic.types.Message.model_validate(chat_response_to_messages(full, "auto"))
    assert streamed == body.model_dump(exclude_none=True, exclude={"usage"})
