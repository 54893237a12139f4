"""The Gemini adapter: every mapping, stream decoding, errors and round trips (end to end
over HTTP: `test_gemini_e2e.py`)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import strategies as st

from tests.providers.adapter_kit import (
    assert_text_and_call,
    body,
    call,
    chat,
    compact,
    deployment,
    feed_all,
    round_trip_cases,
    split_anywhere,
    tool_def,
    tool_round_trip,
    user,
)
from tiergate.chat import ChatResponse, accumulate
from tiergate.errors import BadRequest, UpstreamAuthFailed, UpstreamError, UpstreamRejected
from tiergate.fleet import Deployment
from tiergate.providers.base import SSEEvent
from tiergate.providers.gemini import GeminiAdapter
from tiergate.providers.gemini_request import SKIP_SIGNATURE

ADAPTER = GeminiAdapter()
BASE = "https://generativelanguage.googleapis.com/v1beta"
DEP = deployment("gemini", BASE, "gemini-2.5-flash", api_key="AIza-test")
DEP3 = deployment("gemini", BASE, "gemini-3.1-pro", api_key="AIza-test")


def build(*messages: dict[str, Any], dep: Deployment = DEP, **fields: Any) -> dict[str, Any]:
    return body(ADAPTER.build(chat(*messages, **fields), dep, stream=False))


# -- the upstream call ------------------------------------------------------------------------


def test_urls_and_key_header() -> None:
    plain = ADAPTER.build(chat(user("hi")), DEP, stream=False)
    assert plain.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    streamed = ADAPTER.build(chat(user("hi")), DEP, stream=True)
    assert streamed.url == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    for upstream in (plain, streamed):
        assert upstream.headers == {
            "content-type": "application/json",
            "x-goog-api-key": "AIza-test",
        }
        assert "AIza" not in upstream.url and "key=" not in upstream.url
    # The body is the same either way: Gemini picks streaming by method, not by a field.
    assert plain.body == streamed.body


def test_model_with_models_prefix_and_trailing_slash() -> None:
    dep = deployment("gemini", BASE + "/", "models/gemini-2.0-flash")
    assert ADAPTER.build(chat(user("hi")), dep, stream=False).url == (
        f"{BASE}/models/gemini-2.0-flash:generateContent"
    )


def test_contents_roles_and_system_instruction() -> None:
    b = build(
        {"role": "system", "content": "Be brief."},
        user("a"),
        user([{"type": "text", "text": "b"}]),
        {"role": "developer", "content": "No emoji."},
        {"role": "assistant", "content": "c"},
        user("d"),
    )
    assert b["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nNo emoji."}]}
    assert b["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
        {"role": "user", "parts": [{"text": "d"}]},
    ]
    assert "tools" not in b and "toolConfig" not in b and "generationConfig" not in b


def test_images() -> None:
    b = build(
        user(
            [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/x/cat.JPG?s=1"}},
            ]
        )
    )
    assert b["contents"][0]["parts"] == [
        {"text": "what is this"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/x/cat.JPG?s=1"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/image",
        "data:image/png,raw",
        "file:///etc/passwd",
        "data:image/bmp;base64,Qk0e",  # types Gemini does not take for image input
        "data:image/gif;base64,R0lG",
        "https://example.com/a.gif",
        "data:;base64,AAAA",
    ],
)
def test_unusable_images_are_bad_requests(url: str) -> None:
    with pytest.raises(BadRequest) as err:
        build(user([{"type": "image_url", "image_url": {"url": url}}]))
    assert err.value.param == "messages[0].content[0]"


def test_tools_translate_the_schema() -> None:
    params = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City"},
            "days": {"type": "integer"},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    b = build(
        user("x"), tools=[tool_def("get_weather", params, description="Weather"), tool_def("now")]
    )
    assert b["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING", "description": "City"},
                            "days": {"type": "INTEGER"},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # no parameters: Gemini refuses an empty OBJECT
            ]
        }
    ]


def test_tool_without_properties_gets_no_parameters() -> None:
    b = build(user("x"), tools=[tool_def("now", {"type": "object", "properties": {}})])
    assert b["tools"][0]["functionDeclarations"] == [{"name": "now"}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_config(choice: Any, expected: dict[str, Any]) -> None:
    b = build(user("x"), tools=[tool_def("f"), tool_def("g")], tool_choice=choice)
    assert b["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_mistakes() -> None:
    with pytest.raises(BadRequest):
        build(user("x"), tool_choice="required")
    with pytest.raises(BadRequest):
        build(
            user("x"),
            tools=[tool_def("f")],
            tool_choice={"type": "function", "function": {"name": "zz"}},
        )
    assert "toolConfig" not in build(user("x"), tool_choice="none")


def conversation(*results: dict[str, Any], dep: Deployment = DEP) -> dict[str, Any]:
    return build(
        user("weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                call("call_1", "get_weather", '{"city": "Paris", "units": "C"}'),
                call("call_2", "get_time", '{"tz":"Europe/Rome","city":"Rome"}'),
            ],
        },
        *results,
        tools=[tool_def("get_weather"), tool_def("get_time")],
        dep=dep,
    )


def test_tool_calls_and_results() -> None:
    b = conversation(
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
        user("thanks"),
    )
    assert b["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "units": "C"}}},
            {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Rome", "city": "Rome"}}},
        ],
    }
    assert list(b["contents"][1]["parts"][2]["functionCall"]["args"]) == ["tz", "city"]
    # Both results in one user turn; names recovered from the call ids; objects stay objects.
    assert b["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
            {"text": "thanks"},
        ],
    }


@pytest.mark.parametrize("content", ["[1, 2]", "42", "plain text", ""])
def test_non_object_tool_results_are_wrapped(content: str) -> None:
    b = conversation({"role": "tool", "tool_call_id": "call_1", "content": content})
    assert b["contents"][2]["parts"][0]["functionResponse"]["response"] == {"content": content}


def test_gemini_3_calls_carry_the_signature_sentinel() -> None:
    b = conversation({"role": "tool", "tool_call_id": "call_1", "content": "x"}, dep=DEP3)
    calls = [p for p in b["contents"][1]["parts"] if "functionCall" in p]
    assert [p["thoughtSignature"] for p in calls] == [SKIP_SIGNATURE, SKIP_SIGNATURE]
    b = conversation({"role": "tool", "tool_call_id": "call_1", "content": "x"})
    assert not any("thoughtSignature" in p for p in b["contents"][1]["parts"])


def test_unknown_tool_call_id_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as err:
        conversation({"role": "tool", "tool_call_id": "call_404", "content": "x"})
    assert err.value.param == "messages[2].tool_call_id"


def test_image_in_tool_result_is_a_bad_request() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    with pytest.raises(BadRequest):
        conversation({"role": "tool", "tool_call_id": "call_1", "content": [image]})


@pytest.mark.parametrize("arguments", ["{", "[]", '"s"'])
def test_bad_tool_call_arguments(arguments: str) -> None:
    with pytest.raises(BadRequest):
        build(user("q"), {"role": "assistant", "tool_calls": [call("c", "f", arguments)]})


def test_generation_config() -> None:
    b = build(
        user("q"),
        temperature=1.5,
        top_p=0.9,
        max_completion_tokens=300,
        stop=["END", "STOP"],
        seed=7,
    )
    assert b["generationConfig"] == {
        "temperature": 1.5,
        "topP": 0.9,
        "maxOutputTokens": 300,
        "stopSequences": ["END", "STOP"],
        "seed": 7,
    }
    assert build(user("q"), max_tokens=10)["generationConfig"] == {"maxOutputTokens": 10}
    assert "generationConfig" not in build(user("q"), presence_penalty=1.0, frequency_penalty=1.0)


def test_too_many_stop_sequences() -> None:
    with pytest.raises(BadRequest) as err:
        build(user("q"), stop=["a", "b", "c", "d", "e", "f"])
    assert err.value.param == "stop"


def test_json_modes() -> None:
    assert build(user("q"), response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "score": {"type": ["number", "null"]}},
        "required": ["answer", "score"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "strict": True, "schema": schema}}
    assert build(user("q"), response_format=fmt)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "answer": {"type": "STRING"},
                "score": {"type": "NUMBER", "nullable": True},
            },
            "required": ["answer", "score"],
        },
    }


# -- parsing an answer ------------------------------------------------------------------------

RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "thinking about it", "thought": True},
                    {"text": "Two "},
                    {"text": "calls."},
                    {"functionCall": {"name": "get_weather", "args": {"z": 1, "a": "é"}}},
                    {"functionCall": {"name": "now"}, "thoughtSignature": "c2ln"},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1200,
        "candidatesTokenCount": 40,
        "cachedContentTokenCount": 1000,
        "thoughtsTokenCount": 25,
        "totalTokenCount": 1265,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "resp-1",
}


def parse(data: dict[str, Any]) -> ChatResponse:
    return ADAPTER.parse(msgspec.json.encode(data), DEP)


def test_parse() -> None:
    resp = parse(RESPONSE)
    assert resp.id == "resp-1" and resp.model == "test-model"
    assert resp.message.content == "Two calls."  # thought summaries are not the answer
    calls = resp.message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"z":1,"a":"é"}'),
        ("now", "{}"),
    ]
    assert calls[0].id != calls[1].id and all(c.id.startswith("call_") for c in calls)
    assert resp.finish_reason == "tool_calls"  # STOP with a function call


def test_ids_are_stable_and_gemini_ids_win() -> None:
    assert parse(RESPONSE).message.tool_calls == parse(RESPONSE).message.tool_calls
    data = msgspec.json.decode(msgspec.json.encode(RESPONSE))
    data["candidates"][0]["content"]["parts"][3]["functionCall"]["id"] = "gem-id-7"
    calls = parse(data).message.tool_calls or []
    assert calls[0].id == "gem-id-7"


def test_usage() -> None:
    usage = parse(RESPONSE).usage
    assert usage.input_tokens == 1200  # promptTokenCount already includes the cached part
    assert usage.cached_input_tokens == 1000
    assert usage.output_tokens == 40 + 25  # thinking is billed as output
    assert usage.reasoning_tokens == 25
    assert usage.cache_write_tokens == 0


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert parse(data).finish_reason == finish


def test_filtered_candidate_without_content() -> None:
    resp = parse({"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    assert resp.message.content == "" and resp.finish_reason == "content_filter"


def test_blocked_prompt_is_a_content_filter_answer() -> None:
    data = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    resp = parse(data)
    assert resp.finish_reason == "content_filter"
    assert resp.message.content == ""
    assert resp.message.refusal is not None and "PROHIBITED_CONTENT" in resp.message.refusal
    assert resp.usage.input_tokens == 9


def test_no_candidates_without_a_reason_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        parse({"usageMetadata": {"promptTokenCount": 1}})
    with pytest.raises(UpstreamError):
        ADAPTER.parse(b"not json", DEP)


# -- streams ----------------------------------------------------------------------------------


def frame(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(msgspec.json.encode(data).decode())


def text_frames(pieces: list[str], finish: str = "STOP") -> list[SSEEvent]:
    frames = [
        frame(
            {
                "candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
                "responseId": "r1",
            }
        )
        for p in pieces
    ]
    frames.append(
        frame(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": ""}]},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 30,
                    "candidatesTokenCount": 7,
                    "totalTokenCount": 37,
                },
                "responseId": "r1",
            }
        )
    )
    return frames


def test_text_stream() -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    frames = text_frames(["Hel", "lo ", "world"])
    chunks = feed_all(decoder, frames[:-1])
    assert not decoder.finished
    chunks += decoder.feed(frames[-1])
    assert decoder.finished  # no [DONE]: the finishReason ends it
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.role is None
    resp = accumulate(chunks)
    assert resp.message.content == "Hello world"
    assert resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (30, 7)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_stream_and_body_give_the_same_answer() -> None:
    data = msgspec.json.decode(msgspec.json.encode(RESPONSE))
    parts = data["candidates"][0]["content"]["parts"]
    frames = [
        frame(
            {
                "candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
                "responseId": "resp-1",
            }
        )
        for p in parts[:-1]
    ]
    last = {
        **data,
        "candidates": [
            {**data["candidates"][0], "content": {"role": "model", "parts": parts[-1:]}}
        ],
    }
    frames.append(frame(last))
    streamed = accumulate(feed_all(ADAPTER.stream_decoder(DEP), frames))
    assert streamed == parse(RESPONSE)


def test_blocked_prompt_stream() -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    chunks = decoder.feed(
        frame(
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
        )
    )
    assert decoder.finished
    resp = accumulate(chunks)
    assert resp.finish_reason == "content_filter" and "SAFETY" in (resp.message.refusal or "")
    assert resp.usage.input_tokens == 5


@pytest.mark.parametrize(
    ("code", "status", "error_class", "retryable"),
    [
        (503, "UNAVAILABLE", UpstreamError, True),
        (429, "RESOURCE_EXHAUSTED", UpstreamError, True),
        (400, "INVALID_ARGUMENT", UpstreamRejected, False),
        (0, "INTERNAL", UpstreamError, True),
    ],
)
def test_in_stream_error(code: int, status: str, error_class: type, retryable: bool) -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    feed_all(decoder, text_frames(["partial"])[:1])
    error: dict[str, Any] = {"message": "The model is overloaded.", "status": status}
    if code:
        error["code"] = code
    with pytest.raises(UpstreamError) as err:
        decoder.feed(frame({"error": error}))
    assert type(err.value) is error_class and err.value.retryable is retryable
    assert "overloaded" in err.value.message


# -- errors -----------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return msgspec.json.encode({"error": error})


def test_map_error_quota_with_retry_info() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}
    err = ADAPTER.map_error(429, google_error(429, "RESOURCE_EXHAUSTED", "quota", [retry]), {})
    assert err.retryable and err.retry_after == 13.0
    assert "RESOURCE_EXHAUSTED: quota" in err.message


def test_map_error_bad_key_is_an_auth_failure() -> None:
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    err = ADAPTER.map_error(
        400, google_error(400, "INVALID_ARGUMENT", "API key not valid.", [info]), {}
    )
    assert isinstance(err, UpstreamAuthFailed)


def test_map_error_shapes() -> None:
    assert isinstance(
        ADAPTER.map_error(400, google_error(400, "INVALID_ARGUMENT", "bad"), {}), UpstreamRejected
    )
    listed = b"[" + google_error(503, "UNAVAILABLE", "overloaded") + b"]"
    err = ADAPTER.map_error(503, listed, {})
    assert err.retryable and "overloaded" in err.message
    html = ADAPTER.map_error(502, b"<html>502 Bad Gateway</html>", {})
    assert html.retryable and "Bad Gateway" in html.message


# -- round trip -------------------------------------------------------------------------------


@round_trip_cases(cuts=st.lists(st.integers(0, 500), max_size=5))
def test_round_trip_preserves_text_tool_names_and_arguments(
    question: str, follow_up: str, name: str, args: dict[str, Any], cuts: list[int]
) -> None:
    arguments = compact(args)
    request = tool_round_trip(question, follow_up, name, arguments, "call_x")
    sent = body(ADAPTER.build(request, DEP, stream=False))
    first, model_turn, last = sent["contents"]
    assert first["parts"] == [{"text": question}]
    fc = model_turn["parts"][0]["functionCall"]
    assert (fc["name"], compact(fc["args"])) == (name, arguments)
    assert last["parts"][0]["functionResponse"]["name"] == name
    assert last["parts"][1] == {"text": follow_up}
    # The model "answers" with the follow-up text (streamed in pieces) and the same call.
    answer_parts = [{"text": t} for t in split_anywhere(last["parts"][1]["text"], cuts)]
    answer_parts.append({"functionCall": fc})
    answer = {
        "candidates": [
            {"content": {"role": "model", "parts": answer_parts}, "finishReason": "STOP"}
        ]
    }
    for resp in (
        ADAPTER.parse(msgspec.json.encode(answer), DEP),
        accumulate(feed_all(ADAPTER.stream_decoder(DEP), [frame(answer)])),
    ):
        assert_text_and_call(resp, follow_up, name, arguments)
