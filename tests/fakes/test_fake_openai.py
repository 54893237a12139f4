"""The OpenAI fake, checked with the official openai SDK as the client."""

import base64
import json
import struct
from collections.abc import Iterator

import openai
import pytest

from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


def client(fake: FakeUpstream, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url("openai"), api_key="sk-x", max_retries=0, **kwargs)


@pytest.fixture
def oai(sync_fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with client(sync_fake) as c:
        yield c


def aclient(fake: FakeUpstream, **kwargs: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=fake.base_url("openai"), api_key="sk-x", max_retries=0, **kwargs
    )


def ask(c: openai.OpenAI, text: str = "Hello there", **kwargs: object):
    return c.chat.completions.create(
        model="mock-model", messages=[{"role": "user", "content": text}], **kwargs
    )


def test_default_answer_echoes_with_realistic_usage(
    sync_fake: FakeUpstream, oai: openai.OpenAI
) -> None:
    completion = ask(oai, "What is the capital of France?")
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: What is the capital of France?"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens >= 8
    assert usage.completion_tokens == (len(choice.message.content) + 3) // 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    record = sync_fake.last
    assert record.protocol == "openai" and record.path == "/v1/chat/completions"
    assert record.model == "mock-model" and record.completed and not record.disconnected
    assert record.headers["authorization"] == "Bearer sk-x"
    assert record.body["messages"][0]["content"] == "What is the capital of France?"


def test_scripted_reply_and_tokens(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply("Paris.", input_tokens=120, output_tokens=3, cached_tokens=100))
    completion = ask(oai)
    assert completion.choices[0].message.content == "Paris."
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 3)
    assert completion.usage.prompt_tokens_details.cached_tokens == 100
    assert ask(oai).choices[0].message.content == "echo: Hello there"


def test_queue_per_model(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply("for big"), model="big")
    sync_fake.enqueue(Reply("for anyone"))
    c = oai
    assert ask(c).choices[0].message.content == "for anyone"
    big = c.chat.completions.create(model="big", messages=[{"role": "user", "content": "x"}])
    assert big.choices[0].message.content == "for big"
    assert sync_fake.calls == 2 and sync_fake.calls_for(model="big") == 1


def test_tool_call(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")]))
    completion = ask(oai, tools=[WEATHER_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == "call_1" and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_forced_tool_gets_schema_valid_arguments(
    sync_fake: FakeUpstream, oai: openai.OpenAI
) -> None:
    completion = ask(
        oai,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (call,) = completion.choices[0].message.tool_calls or []
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str) and isinstance(args["days"], int)


def test_max_tokens_gives_length(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    completion = ask(oai, "[fake:tokens=200] write a long story", max_tokens=10)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 10


def test_requested_length(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    completion = ask(oai, "[fake:tokens=300] write a long story")
    assert completion.usage is not None and completion.usage.completion_tokens == 300


def test_json_modes_return_valid_json(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    c = oai
    plain = ask(c, "give json", response_format={"type": "json_object"})
    assert json.loads(plain.choices[0].message.content or "") == {"echo": "give json"}
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "tags"],
    }
    structured = ask(
        c,
        "person",
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    value = json.loads(structured.choices[0].message.content or "")
    assert isinstance(value["name"], str) and isinstance(value["tags"], list)


def test_stop_sequence(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    completion = ask(oai, "one two three", stop=["three"])
    assert completion.choices[0].message.content == "echo: one two "
    assert completion.choices[0].finish_reason == "stop"


def test_stream_with_usage(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply("Hello streaming world", output_tokens=5))
    chunks = list(ask(oai, stream=True, stream_options={"include_usage": True}))
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "Hello streaming world"
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(ch.usage is None for ch in chunks[:-1])
    assert sync_fake.last.stream and sync_fake.last.completed


def test_stream_without_usage_has_no_usage_chunk(
    sync_fake: FakeUpstream, oai: openai.OpenAI
) -> None:
    chunks = list(ask(oai, stream=True))
    assert all(ch.choices for ch in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_tool_call_deltas(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    args = {"city": "San Francisco, California", "days": 3}
    sync_fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", args)]))
    chunks = list(ask(oai, tools=[WEATHER_TOOL], stream=True))
    deltas = [tc for ch in chunks for tc in (ch.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    assert all(d.index == 0 for d in deltas) and len(deltas) > 2
    assert all(d.id is None for d in deltas[1:])
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == args
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_helper_accumulates(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply("accumulated text"))
    with oai.chat.completions.stream(
        model="mock-model", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "accumulated text"


def test_many_chunks(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Reply(stream_chunks=1000))
    chunks = list(ask(oai, stream=True))
    assert len([ch for ch in chunks if ch.choices[0].delta.content]) == 1000


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_http_errors_map_to_sdk_exceptions(
    sync_fake: FakeUpstream, oai: openai.OpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    sync_fake.enqueue(Fault(status=status))
    with pytest.raises(error) as caught:
        ask(oai)
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and {"message", "type", "param", "code"} <= body.keys()


def test_rate_limit_with_retry_after(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(status=429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        ask(oai)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


def test_bad_gateway_is_html(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(status=502))
    with pytest.raises(openai.InternalServerError) as caught:
        ask(oai)
    assert caught.value.status_code == 502
    assert caught.value.response.headers["content-type"].startswith("text/html")


def test_mid_stream_error_raises(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(error_after=2, reply=Reply("a b c d e f")))
    received = []
    with pytest.raises(openai.APIError, match=r"(?i)overloaded"):
        for chunk in ask(oai, stream=True):
            received.append(chunk)
    assert len(received) == 2


def test_truncated_stream_has_no_finish(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(truncate_after=3, reply=Reply("a b c d e f")))
    chunks = list(ask(oai, stream=True))
    assert len(chunks) == 3
    assert all(ch.choices[0].finish_reason is None for ch in chunks)


def test_aborted_stream_raises_connection_error(
    sync_fake: FakeUpstream, oai: openai.OpenAI
) -> None:
    sync_fake.enqueue(Fault(truncate_after=2, drop_connection=True, reply=Reply("a b c d")))
    with pytest.raises(openai.APIConnectionError):
        list(ask(oai, stream=True))


def test_dropped_connection(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(drop_connection=True))
    with pytest.raises(openai.APIConnectionError):
        ask(oai)
    assert not sync_fake.last.completed


def test_truncated_body(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(truncate_after=1))
    with pytest.raises(openai.APIConnectionError):
        ask(oai)


def test_garbage_body(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(Fault(garbage=True))
    with pytest.raises(Exception):  # the SDK fails to decode the JSON body
        ask(oai)


def test_auth_check() -> None:
    with FakeUpstream.in_thread(api_key="sk-test") as fake, client(fake) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            ask(bad)
        assert caught.value.code == "invalid_api_key"
        with openai.OpenAI(base_url=fake.base_url(), api_key="sk-test", max_retries=0) as good:
            assert ask(good).choices[0].message.content


def test_unknown_model_is_404() -> None:
    with FakeUpstream.in_thread(models=["known"]) as fake, client(fake) as c:
        with pytest.raises(openai.NotFoundError) as caught:
            ask(c)
        assert caught.value.code == "model_not_found"


def test_embeddings_float_and_base64(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    c = oai
    floats = c.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float", dimensions=8
    )
    assert floats.object == "list" and [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 8
    assert abs(sum(v * v for v in floats.data[0].embedding) - 1) < 1e-9
    again = c.embeddings.create(model="text-embedding-3-small", input="a", dimensions=8)
    assert again.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    raw = sync_fake.last.body
    assert raw.get("encoding_format", "float") in ("float", "base64")
    assert floats.usage.prompt_tokens == 2


def test_models_list(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "mock-model" in ids


async def test_timeout_before_headers_is_recorded_as_disconnect(fake: FakeUpstream) -> None:
    fake.enqueue(Fault(delay_headers=5))
    async with aclient(fake, timeout=0.2) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(
                model="mock-model", messages=[{"role": "user", "content": "hi"}]
            )
    await fake.wait_idle()
    assert fake.last.disconnected and not fake.last.completed


async def test_client_closing_a_slow_stream_is_recorded(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("one two three four five six seven", chunk_delay=0.05))
    async with aclient(fake) as c:
        stream = await c.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _chunk in stream:
            break
        await stream.close()
    await fake.wait_idle()
    assert fake.last.disconnected and not fake.last.completed


async def test_responder_function(fake: FakeUpstream) -> None:
    fake.respond_with(lambda prompt: Reply(prompt.last_user_text.upper()))
    async with aclient(fake) as c:
        completion = await c.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "shout"}]
        )
    assert completion.choices[0].message.content == "SHOUT"


def test_base64_embedding_decodes(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    import httpx2

    response = httpx2.post(  # raw HTTP: the SDK decodes base64 itself
        sync_fake.base_url() + "/embeddings",
        json={"model": "e", "input": "a", "encoding_format": "base64", "dimensions": 4},
    )
    data = response.json()["data"][0]["embedding"]
    vector = struct.unpack("<4f", base64.b64decode(data))
    assert abs(sum(v * v for v in vector) - 1) < 1e-5


def test_error_codes(sync_fake: FakeUpstream, oai: openai.OpenAI) -> None:
    sync_fake.enqueue(
        Fault(status=400, code="context_length_exceeded", message="This model's maximum context"),
        Fault(status=429, code="insufficient_quota"),
    )
    with pytest.raises(openai.BadRequestError) as too_long:
        ask(oai)
    assert too_long.value.code == "context_length_exceeded"
    assert too_long.value.type == "invalid_request_error"
    with pytest.raises(openai.RateLimitError) as quota:
        ask(oai)
    assert quota.value.code == quota.value.type == "insufficient_quota"
