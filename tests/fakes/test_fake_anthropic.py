"""The Anthropic fake, checked with the official anthropic SDK as the client."""

from collections.abc import Iterator

import anthropic
import httpx2
import pytest

from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HI = [{"role": "user", "content": "Hello Claude"}]


@pytest.fixture
def claude(sync_fake: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=sync_fake.base_url("anthropic"), api_key="sk-ant-x", max_retries=0
    ) as c:
        yield c


def ask(c: anthropic.Anthropic, **kwargs: object) -> anthropic.types.Message:
    params: dict = {"model": "claude-x", "max_tokens": 256, "messages": HI, **kwargs}
    return c.messages.create(**params)


def test_plain_message(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    message = ask(claude, system="Be brief.")
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "claude-x"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "echo: Hello Claude"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.cache_read_input_tokens == 0
    record = sync_fake.last
    assert record.protocol == "anthropic" and record.path == "/v1/messages"
    # The SDK sends x-api-key (older) or Authorization: Bearer (2.x).
    key = record.headers.get("x-api-key") or record.headers["authorization"].split()[-1]
    assert key == "sk-ant-x"
    assert "anthropic-version" in record.headers
    assert record.body["system"] == "Be brief."


def test_cached_tokens_are_apart_from_input(
    sync_fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    sync_fake.enqueue(Reply("ok", input_tokens=1000, cached_tokens=800, output_tokens=2))
    usage = ask(claude).usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (
        200,
        800,
        2,
    )


def test_tool_use(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(
        Reply("Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
    )
    message = ask(claude, tools=[WEATHER_TOOL])
    assert [b.type for b in message.content] == ["text", "tool_use"]
    tool = message.content[1]
    assert tool.id.startswith("toolu_") and tool.name == "get_weather"
    assert tool.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


def test_forced_tool_and_tool_result_round_trip(
    sync_fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    message = ask(claude, tools=[WEATHER_TOOL], tool_choice={"type": "any"})
    (tool,) = message.content
    assert tool.type == "tool_use" and isinstance(tool.input["city"], str)
    follow_up = [
        *HI,
        {"role": "assistant", "content": [tool.model_dump()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "Sunny"}],
        },
    ]
    answer = ask(claude, tools=[WEATHER_TOOL], messages=follow_up)
    assert answer.content[0].text == "echo: Sunny"


def test_stop_sequence_and_max_tokens(claude: anthropic.Anthropic) -> None:
    stopped = ask(
        claude, messages=[{"role": "user", "content": "a b END c"}], stop_sequences=["END"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "END"
    assert stopped.content[0].text == "echo: a b "
    long = ask(claude, messages=[{"role": "user", "content": "[fake:tokens=100]"}], max_tokens=5)
    assert long.stop_reason == "max_tokens" and long.usage.output_tokens == 5


def test_stream_events_in_documented_order(
    sync_fake: FakeUpstream, claude: anthropic.Anthropic
) -> None:
    sync_fake.enqueue(
        Reply("Hi there friend", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
    )
    events = list(ask(claude, stream=True, tools=[WEATHER_TOOL]))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert text == "Hi there friend"
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert partial == '{"city":"Oslo"}'
    assert events[-2].delta.stop_reason == "tool_use"
    assert events[-2].usage.output_tokens > 0
    assert events[0].message.usage.input_tokens > 0


def test_stream_helper_final_message(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(
        Reply("streamed words here", tool_calls=[ToolCall("get_weather", {"city": "Rome"})])
    )
    with claude.messages.stream(
        model="claude-x", max_tokens=64, messages=HI, tools=[WEATHER_TOOL]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed words here"
    assert final.content[1].input == {"city": "Rome"}
    assert final.stop_reason == "tool_use"


def test_ping_is_sent(sync_fake: FakeUpstream) -> None:
    response = httpx2.post(
        sync_fake.base_url("anthropic") + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 10, "messages": HI, "stream": True},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]


def test_max_tokens_required(sync_fake: FakeUpstream) -> None:
    response = httpx2.post(
        sync_fake.base_url("anthropic") + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={"model": "m", "messages": HI},
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }


def test_version_header_required(sync_fake: FakeUpstream) -> None:
    response = httpx2.post(
        sync_fake.base_url("anthropic") + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": HI},
    )
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_errors_map_to_sdk_exceptions(
    sync_fake: FakeUpstream,
    claude: anthropic.Anthropic,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    sync_fake.enqueue(Fault(status=status, retry_after=3 if status == 429 else None))
    with pytest.raises(error) as caught:
        ask(claude)
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == kind
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "3"


def test_overloaded_is_its_own_class(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(Fault(status=529))
    with pytest.raises(anthropic.OverloadedError):
        ask(claude)


def test_error_event_after_200_raises(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(Fault(error_after=4, reply=Reply("one two three four five")))
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in ask(claude, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]  # ping skipped
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def test_truncated_stream(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(Fault(truncate_after=4, reply=Reply("one two three four five")))
    kinds = [e.type for e in ask(claude, stream=True)]
    assert "message_stop" not in kinds and len(kinds) == 3


def test_x_api_key_checked(sync_fake: FakeUpstream) -> None:
    with FakeUpstream.in_thread(api_key="good") as fake:
        url = fake.base_url("anthropic") + "/v1/messages"
        body = {"model": "m", "max_tokens": 5, "messages": HI}
        for key, status in (("good", 200), ("bad", 401)):
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
            assert httpx2.post(url, headers=headers, json=body).status_code == status


def test_auth_check() -> None:
    with FakeUpstream.in_thread(api_key="sk-ant-good") as fake:
        base = fake.base_url("anthropic")
        with anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0) as bad:
            with pytest.raises(anthropic.AuthenticationError) as caught:
                ask(bad)
            assert caught.value.body["error"]["type"] == "authentication_error"
        with anthropic.Anthropic(base_url=base, api_key="sk-ant-good", max_retries=0) as good:
            assert ask(good).content[0].text


async def test_async_stream_cancel_is_recorded(fake: FakeUpstream) -> None:
    fake.enqueue(Reply("a b c d e f g h", chunk_delay=0.05))
    async with anthropic.AsyncAnthropic(
        base_url=fake.base_url("anthropic"), api_key="k", max_retries=0
    ) as c:
        async with c.messages.stream(model="claude-x", max_tokens=50, messages=HI) as stream:
            async for _text in stream.text_stream:
                break
    await fake.wait_idle()
    assert fake.last.disconnected and not fake.last.completed


def test_error_code_override(sync_fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    sync_fake.enqueue(Fault(error_after=1, status=429, code="rate_limit_error", message="slow"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        list(ask(claude, stream=True))
    assert caught.value.body["error"] == {"type": "rate_limit_error", "message": "slow"}
