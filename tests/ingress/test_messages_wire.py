"""Anthropic Messages ingress, the request side (a Messages request -> canonical), checked
against the official SDK's own types. The answer side: `test_messages_answer.py`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiergate.errors import BadRequest
from tiergate.fleet import Deployment, Provider
from tiergate.ingress.messages_wire import messages_request_to_chat
from tiergate.providers.anthropic import AnthropicAdapter


def req(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "auto", "max_tokens": 512, "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


# -- requests -------------------------------------------------------------------------------


def test_minimal_request() -> None:
    chat = messages_request_to_chat(req(user("Hello")))
    assert chat.model == "auto" and chat.max_tokens == 512 and chat.stream is False
    assert to_builtins(chat.messages) == [
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]}
    ]


def test_max_tokens_is_required() -> None:
    data = req(user("hi"))
    del data["max_tokens"]
    with pytest.raises(BadRequest) as err:
        messages_request_to_chat(data)
    assert err.value.param == "max_tokens" and "max_tokens" in err.value.message


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"max_tokens": 5, "messages": [user("x")]}, "model"),
        ({"model": "m", "max_tokens": "5", "messages": [user("x")]}, "max_tokens"),
        ({"model": "m", "max_tokens": True, "messages": [user("x")]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "m", "max_tokens": 5, "messages": [user("x")], "system": 3}, "system"),
    ],
)
def test_malformed_requests(data: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as err:
        messages_request_to_chat(data)
    assert err.value.param == param


def test_canonical_validation_still_applies() -> None:
    with pytest.raises(BadRequest):
        messages_request_to_chat(req(user("x"), temperature=7))


def test_system_string_and_blocks() -> None:
    chat = messages_request_to_chat(req(user("q"), system="Be brief."))
    assert to_builtins(chat.messages[0]) == {"role": "system", "content": "Be brief."}
    blocks = [
        {"type": "text", "text": "Rule one.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Rule two."},
    ]
    chat = messages_request_to_chat(req(user("q"), system=blocks))
    assert chat.messages[0].content == "Rule one.\n\nRule two."
    with pytest.raises(BadRequest) as err:
        messages_request_to_chat(req(user("q"), system=[{"type": "image", "source": {}}]))
    assert err.value.param == "system[0]"


def test_images() -> None:
    chat = messages_request_to_chat(
        req(
            user(
                [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/a.jpg"},
                    },
                    {"type": "text", "text": "compare"},
                ]
            )
        )
    )
    assert to_builtins(chat.messages[0].content) == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "text", "text": "compare"},
    ]


def test_tool_use_and_results() -> None:
    chat = messages_request_to_chat(
        req(
            user("weather in Paris and Rome?"),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"units": "C", "city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            user(
                [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "service down"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "and tomorrow?"},
                ]
            ),
        )
    )
    assert to_builtins(chat.messages[1:]) == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"units":"C","city":"Paris"}',
                    },
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: service down"},
        {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}]},
    ]


def test_tool_result_with_image_and_empty_error() -> None:
    chat = messages_request_to_chat(
        req(
            user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "text", "text": "screenshot:"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA",
                                },
                            },
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "t2", "is_error": True},
                ]
            )
        )
    )
    first, second = to_builtins(chat.messages)
    assert first["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA"},
    }
    assert second == {"role": "tool", "tool_call_id": "t2", "content": "Error"}


@pytest.mark.parametrize("kind", ["document", "search_result", "server_tool_use", "mystery"])
def test_unknown_block_types_are_named(kind: str) -> None:
    with pytest.raises(BadRequest) as err:
        messages_request_to_chat(req(user([{"type": kind}])))
    assert repr(kind) in err.value.message and err.value.param == "messages[0].content[0]"


def test_tools_and_tool_choice() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    chat = messages_request_to_chat(
        req(
            user("x"),
            tools=[
                {"name": "get_weather", "description": "Weather", "input_schema": schema},
                {"name": "now", "input_schema": {"type": "object"}},
            ],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        )
    )
    assert to_builtins(chat.tools) == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": schema},
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    assert to_builtins(chat.tool_choice) == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    assert chat.parallel_tool_calls is False


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "auto"), ("any", "required"), ("none", "none")]
)
def test_tool_choice_types(choice: str, expected: str) -> None:
    chat = messages_request_to_chat(
        req(
            user("x"),
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            tool_choice={"type": choice},
        )
    )
    assert chat.tool_choice == expected


def test_server_tools_are_refused() -> None:
    with pytest.raises(BadRequest) as err:
        messages_request_to_chat(
            req(user("x"), tools=[{"type": "web_search_20250305", "name": "web_search"}])
        )
    assert "web_search_20250305" in err.value.message


def test_sampling_stop_stream_metadata_and_output_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    chat = messages_request_to_chat(
        req(
            user("x"),
            stop_sequences=["END"],
            temperature=0.2,
            top_p=0.9,
            top_k=5,
            stream=True,
            metadata={"user_id": "u-1"},
            thinking={"type": "enabled", "budget_tokens": 1024},
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
    )
    assert chat.stop == ["END"] and chat.temperature == 0.2 and chat.top_p == 0.9
    assert chat.stream is True and chat.user == "u-1" and chat.metadata == {"user_id": "u-1"}
    assert to_builtins(chat.response_format) == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert chat.extra == {}  # Anthropic-only fields never leak to other upstreams


# -- round trip: Messages request -> canonical -> Anthropic upstream request ------------------

DEP = Deployment("m@a", "m", Provider("a", "anthropic", "https://api.anthropic.com"), "claude-x")


@settings(max_examples=60)
@given(
    question=st.text(min_size=1, max_size=60).filter(str.strip),
    name=st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True),
    args=st.dictionaries(
        st.text(max_size=6), st.integers() | st.text(max_size=6) | st.none(), max_size=4
    ),
    result=st.text(min_size=1, max_size=40),
)
def test_round_trip_to_an_anthropic_upstream(
    question: str, name: str, args: dict[str, Any], result: str
) -> None:
    original = req(
        user(question),
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": args}],
        },
        user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}]),
        tools=[{"name": name, "input_schema": {"type": "object"}}],
    )
    upstream = msgspec.json.decode(
        AnthropicAdapter().build(messages_request_to_chat(original), DEP, stream=False).body
    )
    assert upstream["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": question}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": args}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result}],
        },
    ]
    assert list(upstream["messages"][1]["content"][0]["input"]) == list(args)  # key order kept
    assert upstream["tools"] == [{"name": name, "input_schema": {"type": "object"}}]
