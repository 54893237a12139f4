"""The Anthropic Messages adapter: every mapping, stream decoding, errors, round trips."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.providers.adapter_kit import (
    body,
    call,
    chat,
    compact,
    conforms,
    deployment,
    feed_all,
    json_objects,
    round_trip_cases,
    split_anywhere,
    texts,
    tool_def,
    tool_round_trip,
    user,
)
from tiergate.chat import ChatResponse, accumulate
from tiergate.errors import BadRequest, UpstreamAuthFailed, UpstreamError, UpstreamRejected
from tiergate.providers.anthropic import AnthropicAdapter
from tiergate.providers.anthropic_request import DEFAULT_MAX_TOKENS, JSON_OBJECT_INSTRUCTION
from tiergate.providers.base import SSEEvent

ADAPTER = AnthropicAdapter()
DEP = deployment("anthropic", "https://api.anthropic.com", "claude-sonnet-4-6", api_key="sk-ant")


def build(*messages: dict[str, Any], stream: bool = False, **fields: Any) -> dict[str, Any]:
    return body(ADAPTER.build(chat(*messages, **fields), DEP, stream=stream))


def sse(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(msgspec.json.encode(data).decode(), data["type"])


# -- the upstream call ------------------------------------------------------------------------


def test_url_and_headers() -> None:
    dep = deployment(
        "anthropic",
        "https://api.anthropic.com/",
        "claude-x",
        api_key="sk-ant",
        anthropic_version="2023-06-01",
        headers=(("anthropic-beta", "b1"),),
    )
    upstream = ADAPTER.build(chat(user("hi")), dep, stream=False)
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers == {
        "content-type": "application/json",
        "anthropic-beta": "b1",
        "x-api-key": "sk-ant",
        "anthropic-version": "2023-06-01",
    }
    assert "authorization" not in upstream.headers
    assert body(upstream)["model"] == "claude-x"


def test_base_url_with_v1_is_accepted() -> None:
    dep = deployment("anthropic", "http://127.0.0.1:9/v1", "claude-x")
    assert ADAPTER.build(chat(user("hi")), dep, stream=True).url == (
        "http://127.0.0.1:9/v1/messages"
    )


def test_stream_flag_only_when_streaming() -> None:
    assert build(user("hi"), stream=True)["stream"] is True
    assert "stream" not in build(user("hi"))


def test_system_and_developer_messages_anywhere_are_joined() -> None:
    b = build(
        {"role": "system", "content": "Be brief."},
        user("hi"),
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        user("again"),
    )
    assert b["system"] == "Be brief.\n\nUse French."
    assert b["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        }
    ]


def test_consecutive_same_role_messages_merge_into_alternating_turns() -> None:
    b = build(
        user("a"),
        user("b"),
        {"role": "assistant", "content": "c"},
        {"role": "assistant", "content": "d"},
        user("e"),
    )
    assert [(m["role"], [c["text"] for c in m["content"]]) for m in b["messages"]] == [
        ("user", ["a", "b"]),
        ("assistant", ["c", "d"]),
        ("user", ["e"]),
    ]


def test_empty_text_is_left_out() -> None:
    b = build(
        user("hi"),
        {"role": "assistant", "content": ""},
        user([{"type": "text", "text": ""}]),
        user("x"),
    )
    assert b["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "x"}]}
    ]


def test_no_conversation_left_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        build({"role": "system", "content": "only a system prompt"})


def test_images() -> None:
    b = build(
        user(
            [
                {"type": "text", "text": "compare"},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]
        )
    )
    assert b["messages"][0]["content"] == [
        {"type": "text", "text": "compare"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/bmp;base64,AAAA",  # a type Anthropic does not take
        "data:image/png,rawbytes",  # not base64
        "ftp://example.com/cat.png",
    ],
)
def test_unusable_images_are_bad_requests(url: str) -> None:
    with pytest.raises(BadRequest) as err:
        build(user([{"type": "image_url", "image_url": {"url": url}}]))
    assert err.value.param == "messages[0].content[0]"


def test_tools() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    b = build(
        user("weather?"),
        tools=[
            tool_def("get_weather", schema, description="Weather for a city", strict=True),
            tool_def("now"),
        ],
    )
    assert b["tools"] == [
        {
            "name": "get_weather",
            "input_schema": schema,
            "description": "Weather for a city",
            "strict": True,
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in b  # auto is the upstream default


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    assert build(user("x"), tools=[tool_def("f")], tool_choice=choice)["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    b = build(user("x"), tools=[tool_def("f")], parallel_tool_calls=False)
    assert b["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    b = build(user("x"), tools=[tool_def("f")], tool_choice="required", parallel_tool_calls=False)
    assert b["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_mistakes_are_bad_requests() -> None:
    with pytest.raises(BadRequest):
        build(user("x"), tool_choice="required")
    with pytest.raises(BadRequest):
        build(
            user("x"),
            tools=[tool_def("f")],
            tool_choice={"type": "function", "function": {"name": "g"}},
        )
    assert "tool_choice" not in build(user("x"), tool_choice="none")


def test_tool_calls_and_results() -> None:
    b = build(
        user("weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                call("toolu_1", "get_weather", '{"city": "Paris", "units": "C"}'),
                call("toolu_2", "get_weather", '{"units":"C","city":"Rome"}'),
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "21C"}]},
        user("thanks"),
        tools=[tool_def("get_weather")],
    )
    assert b["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris", "units": "C"},
            },
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "get_weather",
                "input": {"units": "C", "city": "Rome"},
            },
        ],
    }
    # Key order is the caller's.
    assert list(b["messages"][1]["content"][2]["input"]) == ["units", "city"]
    # Both results in one user turn, before the user's text.
    assert b["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "21C"},
            {"type": "text", "text": "thanks"},
        ],
    }
    assert len(b["messages"]) == 3


def test_tool_result_before_text_even_when_the_text_came_first() -> None:
    b = build(
        user("q"),
        {"role": "assistant", "tool_calls": [call("t1", "f", "{}")]},
        user("note"),
        {"role": "tool", "tool_call_id": "t1", "content": "r"},
        tools=[tool_def("f")],
    )
    assert [c["type"] for c in b["messages"][2]["content"]] == ["tool_result", "text"]


def test_tool_result_with_image_and_empty_result() -> None:
    b = build(
        user("q"),
        {"role": "assistant", "tool_calls": [call("t1", "shot", ""), call("t2", "f", " ")]},
        {
            "role": "tool",
            "tool_call_id": "t1",
            "content": [
                {"type": "text", "text": "screenshot"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        tools=[tool_def("shot"), tool_def("f")],
    )
    tool_uses = b["messages"][1]["content"]
    assert [t["input"] for t in tool_uses] == [{}, {}]  # "" arguments mean no arguments
    first, second = b["messages"][2]["content"]
    assert first["content"][1]["source"]["type"] == "base64"
    assert second == {"type": "tool_result", "tool_use_id": "t2"}


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", "nope"])
def test_bad_tool_call_arguments_are_bad_requests(arguments: str) -> None:
    with pytest.raises(BadRequest) as err:
        build(
            user("q"),
            {"role": "assistant", "tool_calls": [call("t1", "f", arguments)]},
            {"role": "tool", "tool_call_id": "t1", "content": "r"},
        )
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


def test_tool_message_without_id_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        build(user("q"), {"role": "tool", "content": "r"})


def test_assistant_image_is_a_bad_request() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(BadRequest):
        build(user("q"), {"role": "assistant", "content": [image]})


def test_prefill_loses_trailing_whitespace() -> None:
    b = build(user("q"), {"role": "assistant", "content": "The answer is "})
    assert b["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The answer is"}],
    }
    b = build(user("q"), {"role": "assistant", "content": "  "})
    assert [m["role"] for m in b["messages"]] == ["user"]


def test_max_tokens() -> None:
    assert build(user("q"))["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert build(user("q"), max_tokens=50)["max_tokens"] == 50
    assert build(user("q"), max_tokens=50, max_completion_tokens=70)["max_tokens"] == 70


def test_default_max_tokens_respects_the_catalog_ceiling() -> None:
    from tiergate.config.loader import build_fleet, parse_config

    config = parse_config(
        """
        providers:
          anthropic: {kind: anthropic, base_url: "https://api.anthropic.com", api_key: k}
        models:
          short: {provider: anthropic, model: claude-3-haiku-20240307, tier: budget, max_output: 2048, price: {input: 0.25, output: 1.25}}
        """
    )
    fleet = build_fleet(config)
    (short,) = fleet.models["short"].deployments
    assert short.max_output == 2048
    assert body(ADAPTER.build(chat(user("q")), short, stream=False))["max_tokens"] == 2048
    (sonnet,) = fleet.models["claude-sonnet-4-6"].deployments  # catalog: 64k ceiling
    assert sonnet.max_output == 64000
    assert body(ADAPTER.build(chat(user("q")), sonnet, stream=False))["max_tokens"] == 4096


def test_stop_sequences() -> None:
    assert build(user("q"), stop="END")["stop_sequences"] == ["END"]
    assert build(user("q"), stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in build(user("q"))


def test_sampling() -> None:
    assert build(user("q"), temperature=0.3)["temperature"] == 0.3
    assert build(user("q"), temperature=1.7)["temperature"] == 1.0  # clamped to Anthropic's max
    b = build(user("q"), top_p=0.9)
    assert b["top_p"] == 0.9 and "temperature" not in b
    b = build(user("q"), temperature=0.5, top_p=0.9)  # current models refuse both
    assert b["temperature"] == 0.5 and "top_p" not in b


def test_no_sampling_parameters_from_api_version_2026_10_21() -> None:
    dep = deployment("anthropic", "https://api.anthropic.com", "c", anthropic_version="2026-10-21")
    b = body(ADAPTER.build(chat(user("q"), temperature=0.2, top_p=0.5), dep, stream=False))
    assert "temperature" not in b and "top_p" not in b
    assert ADAPTER.build(chat(user("q")), dep, stream=False).headers["anthropic-version"] == (
        "2026-10-21"
    )


def test_user_becomes_metadata_user_id_and_tiergate_fields_stay_home() -> None:
    b = build(user("q"), user="u-42", metadata={"team": "x"}, seed=3, tiergate={"route": "auto"})
    assert b["metadata"] == {"user_id": "u-42"}
    assert not {"seed", "tiergate", "user"} & b.keys()


def test_json_schema_becomes_structured_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    b = build(
        user("q"),
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    assert b["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in b


def test_json_object_becomes_a_system_instruction() -> None:
    b = build(
        {"role": "system", "content": "Be brief."},
        user("q"),
        response_format={"type": "json_object"},
    )
    assert b["system"] == f"Be brief.\n\n{JSON_OBJECT_INSTRUCTION}"
    assert "output_config" not in b
    assert "system" not in build(user("q"), response_format={"type": "text"})


# -- parsing an answer ------------------------------------------------------------------------

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Let me check. "},
        {"type": "text", "text": "Two cities."},
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"z": 1, "a": "é"}},
        {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
        "output_tokens": 40,
        "output_tokens_details": {"thinking_tokens": 25},
    },
}


def parse(message: dict[str, Any]) -> ChatResponse:
    return ADAPTER.parse(msgspec.json.encode(message), DEP)


def test_parse() -> None:
    resp = parse(MESSAGE)
    assert resp.id == "msg_01" and resp.model == "test-model"
    assert resp.message.content == "Let me check. Two cities."
    assert [
        (c.id, c.function.name, c.function.arguments) for c in resp.message.tool_calls or ()
    ] == [
        ("toolu_A", "get_weather", '{"z":1,"a":"é"}'),
        ("toolu_B", "now", "{}"),
    ]
    assert resp.finish_reason == "tool_calls"


def test_usage_is_never_double_counted() -> None:
    usage = parse(MESSAGE).usage
    assert usage.input_tokens == 12 + 100 + 1000
    assert usage.cached_input_tokens == 1000
    assert usage.cache_write_tokens == 100
    assert usage.output_tokens == 40
    assert usage.reasoning_tokens == 25


def test_tool_only_answer_has_no_content() -> None:
    resp = parse({**MESSAGE, "content": MESSAGE["content"][3:4]})
    assert resp.message.content is None and resp.message.tool_calls


def test_empty_answer_has_empty_content() -> None:
    resp = parse({**MESSAGE, "content": [], "stop_reason": "max_tokens"})
    assert resp.message.content == "" and resp.finish_reason == "length"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert parse({**MESSAGE, "stop_reason": stop_reason}).finish_reason == finish


def test_garbage_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        ADAPTER.parse(b"<html>oops</html>", DEP)


# -- streams ----------------------------------------------------------------------------------


def message_start(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_S",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 25, "output_tokens": 1},
        },
    }


def text_stream(pieces: list[str], stop: str = "end_turn") -> list[SSEEvent]:
    return [
        sse(message_start()),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        sse({"type": "ping"}),
        *[
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                }
            )
            for p in pieces
        ],
        sse({"type": "content_block_stop", "index": 0}),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 15},
            }
        ),
        sse({"type": "message_stop"}),
    ]


def test_text_stream() -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    events = text_stream(["Hello", ", ", "world"])
    chunks = feed_all(decoder, events[:-1])
    assert not decoder.finished
    assert decoder.feed(events[-1]) == []
    assert decoder.finished
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == "msg_S" and c.model == "test-model" for c in chunks)
    resp = accumulate(chunks)
    assert resp.message.content == "Hello, world"
    assert resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (25, 15)
    # The usage comes alone in the last chunk, as OpenAI sends it.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_stream_usage_with_cache_and_cumulative_message_delta() -> None:
    start = message_start(
        {
            "input_tokens": 5,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": 20,
            "output_tokens": 1,
        }
    )
    events = text_stream(["x"])
    events[0] = sse(start)
    # A message_delta may repeat the (cumulative) input figures: they replace, never add.
    events[-2] = sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": 9, "input_tokens": 5, "cache_read_input_tokens": 300},
        }
    )
    resp = accumulate(feed_all(ADAPTER.stream_decoder(DEP), events))
    assert resp.usage.input_tokens == 325
    assert resp.usage.cached_input_tokens == 300
    assert resp.usage.cache_write_tokens == 20
    assert resp.usage.output_tokens == 9
    assert resp.finish_reason == "length"


def tool_stream(calls: list[tuple[str, str, list[str]]], thinking: bool = True) -> list[SSEEvent]:
    events = [sse(message_start())]
    index = 0
    if thinking:
        events += [
            sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": ""},
                }
            ),
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "plan"},
                }
            ),
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "s"},
                }
            ),
            sse({"type": "content_block_stop", "index": 0}),
        ]
        index = 1
    for call_id, name, fragments in calls:
        events.append(
            sse(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
                }
            )
        )
        events += [
            sse(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": f},
                }
            )
            for f in ["", *fragments]
        ]
        events.append(sse({"type": "content_block_stop", "index": index}))
        index += 1
    events.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 30},
            }
        )
    )
    events.append(sse({"type": "message_stop"}))
    return events


@settings(max_examples=60)
@given(
    args=st.lists(json_objects, min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_tool_call_fragments_split_anywhere(args: list[dict[str, Any]], cuts: list[int]) -> None:
    texts_ = [compact(a) for a in args]
    calls = [(f"toolu_{i}", f"fn_{i}", split_anywhere(t, cuts)) for i, t in enumerate(texts_)]
    chunks = feed_all(ADAPTER.stream_decoder(DEP), tool_stream(calls))
    resp = accumulate(chunks)
    assert [
        (c.id, c.function.name, c.function.arguments) for c in resp.message.tool_calls or ()
    ] == [(f"toolu_{i}", f"fn_{i}", t) for i, t in enumerate(texts_)]
    assert resp.message.content is None
    assert resp.finish_reason == "tool_calls"
    # Tool calls are numbered among themselves, whatever the block index.
    indexes = {tc.index for c in chunks for ch in c.choices for tc in ch.delta.tool_calls or ()}
    assert indexes == set(range(len(args)))


def test_tool_call_without_input_deltas_gets_an_empty_object() -> None:
    resp = accumulate(
        feed_all(ADAPTER.stream_decoder(DEP), tool_stream([("t", "now", [])], thinking=False))
    )
    assert resp.message.tool_calls is not None
    assert resp.message.tool_calls[0].function.arguments == "{}"


def test_text_then_tool_call_stream() -> None:
    events = text_stream(["Let me look."])[:4]
    events += [
        sse(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t9", "name": "f", "input": {}},
            }
        ),
        sse(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"q": 1}'},
            }
        ),
        sse({"type": "content_block_stop", "index": 1}),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 3},
            }
        ),
        sse({"type": "message_stop"}),
    ]
    resp = accumulate(feed_all(ADAPTER.stream_decoder(DEP), events))
    assert resp.message.content == "Let me look."
    assert resp.message.tool_calls is not None
    assert resp.message.tool_calls[0].function.arguments == '{"q": 1}'  # as the model wrote it


@pytest.mark.parametrize(
    ("kind", "status", "error_class", "retryable"),
    [
        ("overloaded_error", 529, UpstreamError, True),
        ("api_error", 500, UpstreamError, True),
        ("rate_limit_error", 429, UpstreamError, True),
        ("invalid_request_error", 400, UpstreamRejected, False),
        ("brand_new_error", 500, UpstreamError, True),
    ],
)
def test_in_stream_error_event(kind: str, status: int, error_class: type, retryable: bool) -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    events = text_stream(["partial"])[:4]
    feed_all(decoder, events)
    error = SSEEvent(
        msgspec.json.encode(
            {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
        ).decode(),
        "error",
    )
    with pytest.raises(UpstreamError) as err:
        decoder.feed(error)
    assert type(err.value) is error_class
    assert err.value.upstream_status == status
    assert err.value.retryable is retryable
    assert kind in err.value.message


def test_unreadable_stream_event() -> None:
    with pytest.raises(UpstreamError):
        ADAPTER.stream_decoder(DEP).feed(SSEEvent("{not json", "message_start"))


def events_for(message: dict[str, Any], cuts: list[int]) -> list[SSEEvent]:
    """The stream Anthropic would send for a complete message."""
    usage = message["usage"]
    events = [sse({**message_start({**usage, "output_tokens": 1})})]
    events[0] = sse(
        {
            "type": "message_start",
            "message": {
                **message,
                "content": [],
                "stop_reason": None,
                "usage": {**usage, "output_tokens": 1},
            },
        }
    )
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    }
                )
            )
            events += [
                sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "text_delta", "text": t},
                    }
                )
                for t in split_anywhere(block["text"], cuts)
            ]
        elif block["type"] == "tool_use":
            start = {**block, "input": {}}
            events.append(sse({"type": "content_block_start", "index": i, "content_block": start}))
            events += [
                sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": t},
                    }
                )
                for t in split_anywhere(compact(block["input"]), cuts)
            ]
        else:
            events.append(sse({"type": "content_block_start", "index": i, "content_block": block}))
        events.append(sse({"type": "content_block_stop", "index": i}))
    events.append(
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"]},
                "usage": {"output_tokens": usage["output_tokens"]},
            }
        )
    )
    events.append(sse({"type": "message_stop"}))
    return events


@given(cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6))
def test_stream_and_body_give_the_same_answer(cuts: list[int]) -> None:
    streamed = accumulate(feed_all(ADAPTER.stream_decoder(DEP), events_for(MESSAGE, cuts)))
    assert streamed == parse(MESSAGE)


# -- errors -----------------------------------------------------------------------------------


def envelope(kind: str, message: str) -> bytes:
    return msgspec.json.encode(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}
    )


def test_map_error_overloaded_is_retryable() -> None:
    err = ADAPTER.map_error(529, envelope("overloaded_error", "Overloaded"), {})
    assert type(err) is UpstreamError and err.retryable
    assert err.upstream_status == 529
    assert "overloaded_error: Overloaded" in err.message


def test_map_error_rate_limit_keeps_retry_after() -> None:
    err = ADAPTER.map_error(429, envelope("rate_limit_error", "slow down"), {"retry-after": "7"})
    assert err.retryable and err.retry_after == 7.0


def test_map_error_client_and_auth() -> None:
    assert isinstance(
        ADAPTER.map_error(400, envelope("invalid_request_error", "bad"), {}), UpstreamRejected
    )
    assert isinstance(
        ADAPTER.map_error(401, envelope("authentication_error", "key"), {}), UpstreamAuthFailed
    )


def test_map_error_html() -> None:
    err = ADAPTER.map_error(502, b"<html>Bad Gateway</html>", {})
    assert err.retryable and "Bad Gateway" in err.message


# -- round trip: canonical -> Messages -> an answer built from it -> canonical ------------------


@round_trip_cases(result=texts)
def test_round_trip_preserves_text_tool_names_and_arguments(
    question: str, follow_up: str, name: str, args: dict[str, Any], result: str
) -> None:
    arguments = compact(args)
    request = tool_round_trip(question, follow_up, name, arguments, "toolu_x", result)
    sent = body(ADAPTER.build(request, DEP, stream=False))
    assert conforms(sent, MessageCreateParamsNonStreaming)
    first, assistant, last = sent["messages"]
    assert first["content"] == [{"type": "text", "text": question}]
    tool_use = assistant["content"][0]
    assert (tool_use["name"], compact(tool_use["input"])) == (name, arguments)
    assert last["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_x",
        "content": result,
    }
    assert last["content"][1]["text"] == follow_up
    # The model "answers" with the follow-up text and the same call again.
    answer = {
        **MESSAGE,
        "content": [
            {"type": "text", "text": last["content"][1]["text"]},
            {
                "type": "tool_use",
                "id": "toolu_y",
                "name": tool_use["name"],
                "input": tool_use["input"],
            },
        ],
    }
    resp = ADAPTER.parse(msgspec.json.encode(answer), DEP)
    assert resp.message.content == follow_up
    assert resp.message.tool_calls is not None
    (tc,) = resp.message.tool_calls
    assert (tc.function.name, tc.function.arguments) == (name, arguments)


def test_foreign_tool_call_ids_are_made_acceptable_on_both_sides() -> None:
    b = build(
        user("q"),
        {"role": "assistant", "tool_calls": [call("fc:7/a.b", "f", "{}")]},
        {"role": "tool", "tool_call_id": "fc:7/a.b", "content": "r"},
        tools=[tool_def("f")],
    )
    assert b["messages"][1]["content"][0]["id"] == "fc_7_a_b"
    assert b["messages"][2]["content"][0]["tool_use_id"] == "fc_7_a_b"


# -- every body we build fits the official SDK's request types, key for key --------------------

RICH = [
    chat(user("hi")),
    chat(
        {"role": "system", "content": "S"},
        user(
            [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}},
            ]
        ),
        {"role": "assistant", "content": "x", "tool_calls": [call("t1", "f", '{"a":1}')]},
        {
            "role": "tool",
            "tool_call_id": "t1",
            "content": [
                {"type": "text", "text": "r"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": "prefill "},
        tools=[tool_def("f", {"type": "object"}, description="d", strict=True), tool_def("g")],
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
        stop=["X"],
        user="u",
        max_tokens=9,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "object"}},
        },
    ),
    chat(
        user("q"),
        {"role": "assistant", "tool_calls": [call("t1", "f", "{}"), call("t2", "f", "{}")]},
        {"role": "tool", "tool_call_id": "t1", "content": "a"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        tools=[tool_def("f")],
        tool_choice="none",
        response_format={"type": "json_object"},
    ),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("request_", RICH)
def test_bodies_fit_the_sdk_request_types(request_: Any, stream: bool) -> None:
    from anthropic.types import message_create_params as params

    sent = body(ADAPTER.build(request_, DEP, stream=stream))
    # The 2.x SDK types leave out the sampling parameters, which API 2023-06-01 still takes.
    sent = {k: v for k, v in sent.items() if k not in ("temperature", "top_p")}
    kind = params.MessageCreateParamsStreaming if stream else params.MessageCreateParamsNonStreaming
    assert conforms(sent, kind)


def test_conforms_catches_a_misspelt_key() -> None:
    from anthropic.types import message_create_params as params

    sent = body(ADAPTER.build(RICH[1], DEP, stream=False))
    sent.pop("temperature", None)
    sent["tool_choice"] = {"type": "tool", "nam": "f"}
    assert not conforms(sent, params.MessageCreateParamsNonStreaming)
