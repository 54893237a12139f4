"""Proof by real clients: the official OpenAI SDK (chat completions) and the official
Anthropic SDK (/v1/messages) through tiergate to each of the three upstream protocols."""

import json
import textwrap
import time

import anthropic
import openai
import pytest

from tiergate.fakes import Fault, Reply, ToolCall

PROTOCOLS = ["openai", "anthropic", "gemini"]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
    "required": ["city", "temp"],
}
OAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANT_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(params=PROTOCOLS)
def pgw(request, fake, start_gateway):
    kind = request.param
    config = textwrap.dedent(
        f"""
        providers:
          up: {{kind: {kind}, base_url: "{fake.base_url(kind)}", api_key: sk-upstream}}
        models:
          cheap:  {{provider: up, model: up-cheap, tier: budget,  price: {{input: 0.1, output: 0.4}}, capabilities: [tools, json_schema, streaming, vision]}}
          pricey: {{provider: up, model: up-pricey, tier: premium, price: {{input: 2, output: 8}}, capabilities: [tools, json_schema, streaming, vision]}}
        routes:
          auto: {{strategy: rules, fallback: {{retries: 1, backoff_base: 0.01, backoff_max: 0.02, retry_after_cap: 0.05}}}}
        keys:
          - {{name: test, key: tg-test-key}}
        """
    )
    gw = start_gateway(config)
    gw.protocol = kind
    return gw


HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["rate_limited", "overloaded", "client_mistake", "upstream_key_refused"])
def upstream_fault(request, fake):
    """Scripts the upstream to fail; returns (upstream status, status the client must see)."""

    def script(kind: str) -> tuple[int, int]:
        if request.param == "upstream_key_refused":
            # tiergate's provider credential is refused: the gateway's fault, not the
            # client's, so a 502 (a 401 would tell the client its own key is wrong)
            fake.enqueue(*[Fault(status=401)] * 4)
            return 401, 502
        if request.param == "rate_limited":
            fake.enqueue(*[Fault(status=429, retry_after=1)] * 4)
            return 429, 429
        if request.param == "overloaded":
            status = 529 if kind == "anthropic" else 503
            fake.enqueue(*[Fault(status=status)] * 4)
            return status, 503
        fake.enqueue(Fault(status=400, message="invalid request shape"))
        return 400, 400

    return script


def _anthropic(gw, key: str = "tg-test-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


# -- the OpenAI SDK -------------------------------------------------------------------------


def test_openai_plain_and_usage(pgw, fake):
    fake.enqueue(Reply("Hello there.", input_tokens=11, output_tokens=3))
    raw = pgw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    out = raw.parse()
    assert out.choices[0].message.content == "Hello there."
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (11, 3)
    assert fake.last.protocol == pgw.protocol
    assert raw.headers["x-tiergate-model"] == "cheap"


def test_openai_multi_turn_with_system(pgw, fake):
    fake.enqueue(Reply("Paris, as I said."))
    out = pgw.client().chat.completions.create(
        model="auto",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "Sure?"},
        ],
    )
    assert out.choices[0].message.content == "Paris, as I said."
    sent = json.dumps(fake.last.body)
    assert "You are terse." in sent and "Capital of France?" in sent and "Paris." in sent


def test_openai_tool_call_round_trip(pgw, fake):
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_a1")]))
    client = pgw.client()
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(model="auto", messages=messages, tools=[OAI_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    fake.enqueue(Reply("It is 4 degrees."))
    final = client.chat.completions.create(
        model="auto",
        messages=[
            *messages,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 4}'},
        ],
        tools=[OAI_TOOL],
    )
    assert final.choices[0].message.content == "It is 4 degrees."
    sent = json.dumps(fake.last.body)
    assert "get_weather" in sent and "Oslo" in sent and "temp" in sent


def test_openai_json_output(pgw, fake):
    out = pgw.client().chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "weather as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
    )
    data = json.loads(out.choices[0].message.content)
    assert set(data) >= {"city", "temp"}


def test_openai_streaming_with_usage(pgw, fake):
    fake.enqueue(Reply("one two three four", stream_chunks=4, input_tokens=7, output_tokens=4))
    chunks = list(
        pgw.client().chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 4)


def test_openai_bad_gateway_key_is_401(pgw, fake):
    with pytest.raises(openai.AuthenticationError):
        pgw.client(key="wrong").chat.completions.create(model="auto", messages=HI)
    assert fake.calls == 0


def test_openai_upstream_statuses(pgw, fake, upstream_fault):
    _upstream_status, expected = upstream_fault(pgw.protocol)
    with pytest.raises(openai.APIStatusError) as err:
        pgw.client().chat.completions.create(model="auto", messages=HI)
    assert err.value.status_code == expected


# -- the Anthropic SDK against /v1/messages ----------------------------------------------------


def test_anthropic_plain_multi_turn_and_system(pgw, fake):
    fake.enqueue(Reply("Paris, as I said.", input_tokens=20, output_tokens=5))
    message = _anthropic(pgw).messages.create(
        model="auto",
        max_tokens=200,
        system="You are terse.",
        messages=[
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "Sure?"},
        ],
    )
    assert message.content[0].text == "Paris, as I said."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 5)
    assert "You are terse." in json.dumps(fake.last.body)
    assert fake.last.protocol == pgw.protocol


def test_anthropic_tool_round_trip(pgw, fake):
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_b2")]))
    client = _anthropic(pgw)
    first = client.messages.create(
        model="auto",
        max_tokens=200,
        tools=[ANT_TOOL],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Oslo"})
    fake.enqueue(Reply("It is 4 degrees."))
    final = client.messages.create(
        model="auto",
        max_tokens=200,
        tools=[ANT_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "4 degrees"}],
            },
        ],
    )
    assert final.content[0].text == "It is 4 degrees."
    assert "4 degrees" in json.dumps(fake.last.body)


def test_anthropic_json_output(pgw, fake):
    # Messages has no json mode in the request shape we accept; a schema-shaped tool is the
    # documented way, so the JSON arrives as tool input.
    fake.enqueue(Reply(tool_calls=[ToolCall("record", {"city": "Oslo", "temp": 4})]))
    message = _anthropic(pgw).messages.create(
        model="auto",
        max_tokens=200,
        tools=[{"name": "record", "description": "record it", "input_schema": SCHEMA}],
        tool_choice={"type": "tool", "name": "record"},
        messages=[{"role": "user", "content": "weather as JSON"}],
    )
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.input == {"city": "Oslo", "temp": 4}


def test_anthropic_streaming_with_usage(pgw, fake):
    fake.enqueue(Reply("one two three four", stream_chunks=4, input_tokens=7, output_tokens=4))
    with _anthropic(pgw).messages.stream(
        model="auto", max_tokens=100, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three four"
    assert final.usage.output_tokens == 4


def test_anthropic_bad_gateway_key_is_401(pgw, fake):
    with pytest.raises(anthropic.AuthenticationError):
        _anthropic(pgw, key="wrong").messages.create(model="auto", max_tokens=10, messages=HI)
    assert fake.calls == 0


def test_anthropic_upstream_statuses(pgw, fake, upstream_fault):
    _upstream_status, expected = upstream_fault(pgw.protocol)
    with pytest.raises(anthropic.APIStatusError) as err:
        _anthropic(pgw).messages.create(model="auto", max_tokens=10, messages=HI)
    assert err.value.status_code == expected


# -- bad input: a clear 4xx naming the problem, never a 500, never a fallback ---------------

BMP = "data:image/bmp;base64,Qk0eAAAAAAAAABoAAAAMAAAAAQABAAEAGAAAAP8A"
# An image each protocol refuses before any call, with the words the error must contain.
REFUSED_IMAGE = {
    "anthropic": [(BMP, "image/bmp")],
    "gemini": [(BMP, "image/bmp"), ("https://example.com/photo", "cannot tell the image type")],
}
RECURSIVE_SCHEMA = {
    "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    "$ref": "#/$defs/Node",
}


def _image_message(url: str) -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_openai_image_a_provider_does_not_take(pgw, fake):
    if pgw.protocol not in REFUSED_IMAGE:  # OpenAI-compatible upstreams get images as sent
        fake.enqueue(Reply("a picture"))
        out = pgw.client().chat.completions.create(model="auto", messages=_image_message(BMP))
        assert out.choices[0].message.content == "a picture"
        return
    for url, named in REFUSED_IMAGE[pgw.protocol]:
        with pytest.raises(openai.BadRequestError) as err:
            pgw.client().chat.completions.create(model="auto", messages=_image_message(url))
        assert named in err.value.message
        assert "messages[0].content[1]" in err.value.message
    assert fake.calls == 0  # refused before any spend or fallback


def test_anthropic_image_a_provider_does_not_take(pgw, fake):
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0e"},
    }
    content = [{"type": "text", "text": "what is this?"}, image]
    if pgw.protocol not in REFUSED_IMAGE:
        fake.enqueue(Reply("a picture"))
    call = _anthropic(pgw).messages.create
    if pgw.protocol in REFUSED_IMAGE:
        with pytest.raises(anthropic.BadRequestError) as err:
            call(model="auto", max_tokens=50, messages=[{"role": "user", "content": content}])
        assert "image/bmp" in err.value.message
        assert err.value.body["type"] == "error"  # the Anthropic error envelope
        assert fake.calls == 0
    else:
        message = call(model="auto", max_tokens=50, messages=[{"role": "user", "content": content}])
        assert message.content[0].text == "a picture"


def test_openai_tool_schema_the_adapter_cannot_express(pgw, fake):
    tool = {"type": "function", "function": {"name": "walk", "parameters": RECURSIVE_SCHEMA}}
    call = pgw.client().chat.completions.create
    if pgw.protocol != "gemini":  # JSON Schema with $ref is passed through as is
        fake.enqueue(Reply("ok"))
        assert call(model="auto", messages=HI, tools=[tool]).choices[0].message.content == "ok"
        return
    with pytest.raises(openai.BadRequestError) as err:
        call(model="auto", messages=HI, tools=[tool])
    assert "tools[0].function.parameters" in err.value.message
    assert fake.calls == 0


def test_tool_schema_the_provider_rejects(pgw, fake):
    # What each upstream answers when it refuses a tool schema: a 400 in its own envelope.
    complaint = "tools.0.input_schema: JSON schema is invalid"
    fake.enqueue(Fault(status=400, message=complaint))
    with pytest.raises(openai.BadRequestError) as err:
        pgw.client().chat.completions.create(model="auto", messages=HI, tools=[OAI_TOOL])
    assert complaint in err.value.message
    fake.enqueue(Fault(status=400, message=complaint))
    with pytest.raises(anthropic.BadRequestError) as aerr:
        _anthropic(pgw).messages.create(model="auto", max_tokens=10, messages=HI, tools=[ANT_TOOL])
    assert complaint in aerr.value.message
    assert fake.calls == 2  # one call each: a client's mistake is never retried elsewhere


def test_anthropic_request_without_max_tokens(pgw, fake):
    import httpx

    response = httpx.post(
        f"{pgw.url}/v1/messages",
        headers={"x-api-key": "tg-test-key", "anthropic-version": "2023-06-01"},
        json={"model": "auto", "messages": HI},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in response.json()["error"]["message"]
    assert fake.calls == 0


# -- usage: cache reads and writes priced at their own rates, never double-counted ----------


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
@pytest.mark.parametrize("kind", PROTOCOLS)
def test_cached_and_cache_write_tokens_are_priced_correctly(kind, stream, fake, start_gateway):
    gw = start_gateway(
        textwrap.dedent(
            f"""
            providers:
              up: {{kind: {kind}, base_url: "{fake.base_url(kind)}", api_key: sk-upstream}}
            models:
              m: {{provider: up, model: up-m, tier: budget, price: {{input: 3, output: 15, cached_input: 0.3, cache_write: 3.75}}}}
            keys:
              - {{name: test, key: tg-test-key}}
            """
        )
    )
    fake.enqueue(
        Reply("a b", input_tokens=1000, cached_tokens=600, cache_write_tokens=300, output_tokens=50)
    )
    client = gw.client()
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="m", messages=HI, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="m", messages=HI).usage
    # Only the Messages API reports cache writes; the others bill them as plain input.
    written = 300 if kind == "anthropic" else 0
    assert usage.prompt_tokens == 1000  # reads and writes are part of the prompt, once
    assert usage.prompt_tokens_details.cached_tokens == 600
    assert usage.completion_tokens == 50
    expected = ((1000 - 600 - written) * 3 + 600 * 0.3 + written * 3.75 + 50 * 15) / 1e6
    deadline = time.monotonic() + 3
    while not gw.ledger.entries:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (entry,) = gw.ledger.entries
    assert entry.cost_usd == pytest.approx(expected)
    assert (entry.input_tokens, entry.cached_tokens) == (1000, 600)


# -- an in-stream error before any content (e.g. overloaded_error after a 200) fails over ----


def _events_before_content(kind: str) -> list[int]:
    # Anthropic opens every stream with message_start, then content_block_start and a
    # ping; OpenAI with a role-only chunk. None of them is content: an error after any of
    # them is still "before the first byte". Gemini's first event carries content.
    return {"anthropic": [0, 1, 3], "openai": [0, 1]}.get(kind, [0])


def test_stream_error_before_content_fails_over(pgw, fake):
    status = 529 if pgw.protocol == "anthropic" else 503
    for events_before in _events_before_content(pgw.protocol):
        calls = fake.calls
        for _ in range(2):  # one for each SDK
            fake.enqueue(
                Fault(
                    error_after=events_before, status=status, reply=Reply("x y", stream_chunks=2)
                ),
                Reply("streamed fine", stream_chunks=3),
            )
        stream = pgw.client().chat.completions.create(model="auto", messages=HI, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "streamed fine", events_before
        with _anthropic(pgw).messages.stream(model="auto", max_tokens=50, messages=HI) as s:
            assert "".join(s.text_stream) == "streamed fine", events_before
        assert fake.calls == calls + 4


TG_HEADERS = (
    "x-tiergate-request-id",
    "x-tiergate-model",
    "x-tiergate-tier",
    "x-tiergate-route",
    "x-tiergate-cost-usd",
    "x-tiergate-cache",
)


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
def test_messages_answers_carry_every_x_tiergate_header(pgw, fake, stream):
    fake.enqueue(Reply("hello", stream_chunks=2))
    client = _anthropic(pgw).messages.with_raw_response
    raw = client.create(model="auto", max_tokens=20, messages=HI, stream=stream)
    headers = {name: raw.headers.get(name) for name in TG_HEADERS}
    assert all(headers.values()), headers
    assert (headers["x-tiergate-model"], headers["x-tiergate-tier"]) == ("cheap", "budget")
    assert (headers["x-tiergate-route"], headers["x-tiergate-cache"]) == ("auto", "miss")
    if not stream:
        assert float(headers["x-tiergate-cost-usd"]) > 0
    raw.parse()  # the body (or stream) still reads as a Messages answer


def test_anthropic_structured_output(pgw, fake):
    # Messages' own JSON mode: output_config.format with a JSON schema, on every protocol.
    message = _anthropic(pgw).messages.create(
        model="auto",
        max_tokens=200,
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
        messages=[{"role": "user", "content": "weather as JSON"}],
    )
    data = json.loads(message.content[0].text)
    assert set(data) >= {"city", "temp"}
    sent = json.dumps(fake.last.body)
    assert '"temp"' in sent  # the schema reached the upstream in its own form


def test_a_prompt_the_provider_blocks_is_a_content_filter_answer(pgw, fake):
    fake.enqueue(Reply(prompt_blocked=True, input_tokens=9))
    out = pgw.client().chat.completions.create(model="auto", messages=HI)
    assert out.choices[0].finish_reason == "content_filter"
    fake.enqueue(Reply(prompt_blocked=True, input_tokens=9))
    message = _anthropic(pgw).messages.create(model="auto", max_tokens=20, messages=HI)
    assert message.stop_reason == "refusal"
    assert fake.calls == 2  # an answer, not a failure: no fallback to another model
