"""The Anthropic adapter against the fake Messages API, over real HTTP."""

from __future__ import annotations

import pytest

from tests.providers.adapter_kit import (
    E2E_KEY,
    call,
    chat,
    deployment,
    e2e_deployment,
    send,
    stream_chunks,
    tool_def,
    user,
)
from tiergate.errors import UpstreamAuthFailed, UpstreamError, UpstreamRejected
from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall
from tiergate.fleet import Deployment
from tiergate.providers.anthropic import AnthropicAdapter

ADAPTER = AnthropicAdapter()


@pytest.fixture
def dep(fake: FakeUpstream) -> Deployment:
    return e2e_deployment("anthropic", fake, "claude-fake")


@pytest.mark.parametrize("stream", [False, True])
async def test_text_answer(fake: FakeUpstream, dep: Deployment, stream: bool) -> None:
    fake.enqueue(
        Reply("Bonjour !", input_tokens=120, cached_tokens=100, output_tokens=4, stream_chunks=3)
    )
    resp = await send(
        ADAPTER, chat({"role": "system", "content": "French."}, user("Hi")), dep, stream=stream
    )
    assert resp.message.content == "Bonjour !"
    assert resp.finish_reason == "stop"
    assert resp.usage.input_tokens == 120  # cached tokens counted in, once
    assert resp.usage.cached_input_tokens == 100
    assert resp.usage.output_tokens == 4
    record = fake.last
    assert record.path == "/v1/messages"
    assert record.headers["x-api-key"] == E2E_KEY
    assert record.headers["anthropic-version"] == "2023-06-01"
    assert record.body["system"] == "French."
    assert record.body["max_tokens"] == 4096
    assert record.body.get("stream", False) is stream


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_answer(fake: FakeUpstream, dep: Deployment, stream: bool) -> None:
    fake.enqueue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris", "days": [1, 2]}, id="toolu_W")])
    )
    request = chat(
        user("weather?"),
        tools=[
            tool_def("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})
        ],
        tool_choice="required",
    )
    resp = await send(ADAPTER, request, dep, stream=stream)
    assert resp.finish_reason == "tool_calls"
    assert resp.message.tool_calls is not None
    (tc,) = resp.message.tool_calls
    assert (tc.id, tc.function.name, tc.function.arguments) == (
        "toolu_W",
        "get_weather",
        '{"city":"Paris","days":[1,2]}',
    )
    assert fake.last.body["tool_choice"] == {"type": "any"}


async def test_tool_results_conversation_is_accepted(fake: FakeUpstream, dep: Deployment) -> None:
    request = chat(
        user("weather?"),
        {"role": "assistant", "tool_calls": [call("toolu_1", "get_weather", '{"city":"Paris"}')]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        tools=[tool_def("get_weather")],
    )
    resp = await send(ADAPTER, request, dep, stream=False)
    assert resp.message.content
    assert [m["role"] for m in fake.last.body["messages"]] == ["user", "assistant", "user"]


async def test_overloaded_is_retryable(fake: FakeUpstream, dep: Deployment) -> None:
    fake.enqueue(Fault(status=529))
    with pytest.raises(UpstreamError) as err:
        await send(ADAPTER, chat(user("hi")), dep, stream=False)
    assert err.value.retryable and err.value.upstream_status == 529


async def test_rate_limit_carries_retry_after(fake: FakeUpstream, dep: Deployment) -> None:
    fake.enqueue(Fault(status=429, retry_after=3))
    with pytest.raises(UpstreamError) as err:
        await send(ADAPTER, chat(user("hi")), dep, stream=True)
    assert err.value.retryable and err.value.retry_after == 3.0


async def test_bad_key_and_bad_request(fake: FakeUpstream, dep: Deployment) -> None:
    wrong = deployment("anthropic", fake.base_url("anthropic"), "claude-fake", api_key="nope")
    with pytest.raises(UpstreamAuthFailed):
        await send(ADAPTER, chat(user("hi")), wrong, stream=False)
    fake.enqueue(Fault(status=400, message="messages: bad"))
    with pytest.raises(UpstreamRejected):
        await send(ADAPTER, chat(user("hi")), dep, stream=False)


async def test_in_stream_overloaded_error(fake: FakeUpstream, dep: Deployment) -> None:
    fake.enqueue(Fault(error_after=3, reply=Reply("a b c d e f", stream_chunks=6)))
    with pytest.raises(UpstreamError) as err:
        await send(ADAPTER, chat(user("hi")), dep, stream=True)
    assert err.value.retryable and err.value.upstream_status == 529


async def test_truncated_stream_is_not_finished(fake: FakeUpstream, dep: Deployment) -> None:
    fake.enqueue(Fault(truncate_after=4, reply=Reply("a b c d e f", stream_chunks=6)))
    chunks, finished = await stream_chunks(ADAPTER, chat(user("hi")), dep)
    assert chunks and not finished  # the executor must not take this for a whole answer
