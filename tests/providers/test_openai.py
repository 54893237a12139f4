import json
from typing import Any

import pytest
from hypothesis import strategies as st

from tests.providers.adapter_kit import (
    assert_text_and_call,
    compact,
    feed_all,
    round_trip_cases,
    split_anywhere,
    tool_round_trip,
)
from tiergate.chat import accumulate, decode_chat_request
from tiergate.errors import UpstreamAuthFailed, UpstreamError, UpstreamRejected
from tiergate.fleet import Deployment, Provider
from tiergate.providers.base import SSEEvent
from tiergate.providers.openai import OpenAIAdapter
from tiergate.providers.sse import SSEParser

PROVIDER = Provider("up", "openai", "http://upstream.test/v1", api_key="sk-secret")
DEPLOYMENT = Deployment("small@up", "small", PROVIDER, "mock-1")
ADAPTER = OpenAIAdapter()

FULL_REQUEST = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"found": true}'},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "lookup", "description": "d", "parameters": {"type": "object"}},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": True},
    },
    "stop": ["END"],
    "temperature": 0.2,
    "top_p": 0.9,
    "max_completion_tokens": 50,
    "seed": 7,
    "logprobs": True,
    "tiergate": {"min_tier": "standard"},
    "metadata": {"team": "a"},
}


def test_build_keeps_every_field_and_forwards_unknown_ones():
    request = decode_chat_request(json.dumps(FULL_REQUEST).encode())
    call = ADAPTER.build(request, DEPLOYMENT, stream=False)
    assert call.url == "http://upstream.test/v1/chat/completions"
    assert call.headers["authorization"] == "Bearer sk-secret"
    body = json.loads(call.body)
    expected = json.loads(
        json.dumps({k: v for k, v in FULL_REQUEST.items() if k not in ("tiergate", "metadata")})
    )
    expected["model"] = "mock-1"
    # an assistant turn that only calls tools is sent without `content` (OpenAI accepts both)
    del expected["messages"][2]["content"]
    assert body == expected


def test_unknown_fields_never_change_the_url():
    raw = dict(FULL_REQUEST, api_base="http://evil.test/v1", base_url="http://evil.test")
    call = ADAPTER.build(decode_chat_request(json.dumps(raw).encode()), DEPLOYMENT, stream=False)
    assert call.url == "http://upstream.test/v1/chat/completions"


def test_stream_always_asks_for_usage():
    raw = {"model": "a", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    call = ADAPTER.build(decode_chat_request(json.dumps(raw).encode()), DEPLOYMENT, stream=True)
    body = json.loads(call.body)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_parse_response_with_tool_calls_and_cached_usage():
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "mock-1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }
    response = ADAPTER.parse(json.dumps(body).encode(), DEPLOYMENT)
    assert response.model == "small"
    assert response.finish_reason == "tool_calls"
    assert response.message.tool_calls[0].function.arguments == '{"a": 1}'
    assert (response.usage.input_tokens, response.usage.cached_input_tokens) == (100, 64)
    assert response.usage.reasoning_tokens == 5


@pytest.mark.parametrize("finish", ["stop", "length", "tool_calls", "content_filter"])
def test_finish_reasons_pass_through(finish):
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert ADAPTER.parse(json.dumps(body).encode(), DEPLOYMENT).finish_reason == finish


def test_garbage_body_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        ADAPTER.parse(b"<html>oops", DEPLOYMENT)


def _sse(*events: dict | str) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def test_stream_decoding_of_tool_call_deltas_split_anywhere():
    chunk = {"id": "c", "model": "m", "created": 1}
    raw = _sse(
        dict(chunk, choices=[{"index": 0, "delta": {"role": "assistant", "content": None}}]),
        dict(
            chunk,
            choices=[
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_9",
                                "type": "function",
                                "function": {"name": "get_w", "arguments": ""},
                            }
                        ]
                    },
                }
            ],
        ),
        dict(
            chunk,
            choices=[
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
                }
            ],
        ),
        dict(
            chunk,
            choices=[
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]
                    },
                }
            ],
        ),
        dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
        dict(
            chunk,
            choices=[],
            usage={"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        ),
        "[DONE]",
    )
    decoder = ADAPTER.stream_decoder(DEPLOYMENT)
    parser = SSEParser()
    chunks = []
    # feed in awkward 7-byte pieces, as a network would
    for i in range(0, len(raw), 7):
        for event in parser.feed(raw[i : i + 7]):
            chunks.extend(decoder.feed(event))
    assert decoder.finished
    response = accumulate(chunks)
    call = response.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9",
        "get_w",
        '{"city": "Oslo"}',
    )
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 4)


def test_in_stream_error_event_raises():
    decoder = ADAPTER.stream_decoder(DEPLOYMENT)
    with pytest.raises(UpstreamError):
        decoder.feed(SSEEvent(json.dumps({"error": {"message": "overloaded"}})))


def test_a_role_only_first_chunk_waits_for_content():
    # so an error right after it is still a failure before the first byte (fail over)
    head = {"id": "c1", "object": "chat.completion.chunk"}

    def event(delta, finish=None):
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return SSEEvent(json.dumps({**head, "choices": [choice]}))

    decoder = ADAPTER.stream_decoder(DEPLOYMENT)
    assert decoder.feed(event({"role": "assistant", "content": "", "refusal": None})) == []
    with pytest.raises(UpstreamError):
        decoder.feed(SSEEvent(json.dumps({"error": {"message": "overloaded"}})))
    decoder = ADAPTER.stream_decoder(DEPLOYMENT)
    assert decoder.feed(event({"role": "assistant", "content": ""})) == []
    (chunk,) = decoder.feed(event({"content": "Hi"}))
    assert (chunk.choices[0].delta.role, chunk.choices[0].delta.content) == ("assistant", "Hi")
    (chunk,) = decoder.feed(event({"content": "!"}))
    assert chunk.choices[0].delta.role is None
    # an answer that is only the role and the finish still says who spoke
    decoder = ADAPTER.stream_decoder(DEPLOYMENT)
    decoder.feed(event({"role": "assistant", "content": ""}))
    (chunk,) = decoder.feed(event({}, "stop"))
    assert chunk.choices[0].delta.role == "assistant"
    assert accumulate([chunk]).finish_reason == "stop"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, UpstreamRejected),
        (404, UpstreamRejected),
        (422, UpstreamRejected),
        (401, UpstreamAuthFailed),
    ],
)
def test_error_mapping(status, kind):
    err = ADAPTER.map_error(status, b'{"error": {"message": "nope", "type": "x"}}', {})
    assert isinstance(err, kind)
    if status != 401:  # an auth failure's upstream text is not echoed (it can name the key)
        assert "nope" in err.message


def test_retry_after_is_read():
    err = ADAPTER.map_error(429, b"{}", {"retry-after": "3"})
    assert err.retryable and err.retry_after == 3.0


# -- round trip: canonical -> Chat Completions -> an answer built from it -> canonical ---------


@round_trip_cases(cuts=st.lists(st.integers(0, 500), max_size=5))
def test_round_trip_preserves_text_tool_names_and_arguments(
    question: str, follow_up: str, name: str, args: dict[str, Any], cuts: list[int]
) -> None:
    arguments = compact(args)
    request = tool_round_trip(question, follow_up, name, arguments, "call_x")
    sent = json.loads(ADAPTER.build(request, DEPLOYMENT, stream=False).body)
    first, assistant, tool, last = sent["messages"]
    assert first["content"] == question and last["content"] == follow_up
    fn = assistant["tool_calls"][0]["function"]
    assert (fn["name"], fn["arguments"]) == (name, arguments)  # the very string, unparsed
    assert tool == {"role": "tool", "tool_call_id": "call_x", "content": "done"}
    # The model "answers" with the follow-up text and the same call, whole and streamed.
    message = {"role": "assistant", "content": follow_up, "tool_calls": assistant["tool_calls"]}
    answer = {
        "id": "c1",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }
    head = {"id": "c1", "object": "chat.completion.chunk"}
    events = [
        SSEEvent(json.dumps({**head, "choices": [{"index": 0, "delta": {"content": piece}}]}))
        for piece in split_anywhere(follow_up, cuts)
    ]
    call_delta = {"index": 0, "id": "call_x", "type": "function", "function": fn}
    events.append(
        SSEEvent(
            json.dumps(
                {
                    **head,
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [call_delta]}, "finish_reason": None}
                    ],
                }
            )
        )
    )
    events.append(
        SSEEvent(
            json.dumps(
                {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
            )
        )
    )
    events.append(SSEEvent("[DONE]"))
    for resp in (
        ADAPTER.parse(json.dumps(answer).encode(), DEPLOYMENT),
        accumulate(feed_all(ADAPTER.stream_decoder(DEPLOYMENT), events)),
    ):
        assert_text_and_call(resp, follow_up, name, arguments)
