"""The OpenAI ingress, driven by the official SDK: every feature survives the round trip."""

import json

from tiergate.fakes import Reply, ToolCall

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_tool_call_round_trip(gw, fake):
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_1")]))
    client = gw.client()
    first = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=TOOLS,
        tool_choice="auto",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "call_1",
        "get_weather",
        {"city": "Oslo"},
    )
    fake.enqueue(Reply("It is 4 degrees in Oslo."))
    final = client.chat.completions.create(
        model="auto",
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 4}'},
        ],
        tools=TOOLS,
    )
    assert final.choices[0].message.content == "It is 4 degrees in Oslo."
    sent = fake.last.body
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"temp": 4}',
    }
    assert sent["tools"][0]["type"] == "function"


def test_streamed_tool_call_deltas(gw, fake):
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Lima"}, id="call_7")]))
    stream = gw.client().chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "weather in Lima?"}],
        tools=TOOLS,
        stream=True,
    )
    name, args, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and json.loads(args) == {"city": "Lima"}
    assert finish == "tool_calls"


def test_json_schema_and_parameters_reach_the_upstream(gw, fake):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    client = gw.client()
    out = client.chat.completions.create(
        model="auto",
        messages=[{"role": "system", "content": "json only"}, {"role": "user", "content": "2+2"}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        temperature=0.3,
        top_p=0.5,
        seed=11,
        stop=["\n\n"],
        max_completion_tokens=50,
        extra_body={"logprobs": False},
    )
    assert isinstance(json.loads(out.choices[0].message.content)["answer"], int)
    body = fake.last.body
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (
        0.3,
        0.5,
        11,
        ["\n\n"],
    )
    assert body["max_completion_tokens"] == 50 and body["logprobs"] is False


def test_length_finish_and_cached_usage(gw, fake):
    fake.enqueue(
        Reply("cut", finish="length", input_tokens=1000, cached_tokens=800, output_tokens=5)
    )
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "long"}], max_tokens=5
    )
    out = raw.parse()
    assert out.choices[0].finish_reason == "length"
    assert out.usage.prompt_tokens_details.cached_tokens == 800
    # cached tokens at the input price when the model has no cached price: 1000 * 0.05 + 5 * 0.4
    assert float(raw.headers["x-tiergate-cost-usd"]) == round((1000 * 0.05 + 5 * 0.40) / 1e6, 8)


def test_stream_headers_and_cost_in_final_usage_chunk(gw, fake):
    fake.enqueue(Reply("a b c", stream_chunks=3, input_tokens=20, output_tokens=3))
    with gw.client().chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        for name in ("request-id", "model", "tier", "route", "cost-usd", "cache"):
            assert response.headers[f"x-tiergate-{name}"]
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    usage = json.loads(lines[-1][6:])["usage"]
    assert usage["prompt_tokens"] == 20 and usage["completion_tokens"] == 3
    assert usage["cost_usd"] == round((20 * 0.05 + 3 * 0.40) / 1e6, 10)


def test_tier_and_direct_model_targets(gw, fake):
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model="tier:premium", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-model"] == "large-model"
    raw = client.chat.completions.with_raw_response.create(
        model="medium-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-model"] == "medium-model"
    assert fake.last.body["model"] == "mock-medium"


def test_capability_filter_skips_a_model_without_tools(fake, start_gateway):
    from tests.conftest import three_tier_config

    config = three_tier_config(fake).replace(
        "tier: budget,   price", "tier: budget, capabilities: [streaming], price"
    )
    gw = start_gateway(config)
    raw = gw.client().chat.completions.with_raw_response.create(
        model="tier:budget", messages=[{"role": "user", "content": "hi"}], tools=TOOLS
    )
    assert raw.headers["x-tiergate-model"] == "medium-model"
