"""The Gemini adapter against the fake Gemini API, over real HTTP."""

from __future__ import annotations

import pytest

from tests.providers.adapter_kit import (
    E2E_KEY,
    chat,
    deployment,
    e2e_deployment,
    send,
    stream_chunks,
    tool_def,
    user,
)
from tiergate.errors import UpstreamAuthFailed, UpstreamError
from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall
from tiergate.fleet import Deployment
from tiergate.providers.gemini import GeminiAdapter

ADAPTER = GeminiAdapter()


@pytest.fixture
def live(fake: FakeUpstream) -> Deployment:
    return e2e_deployment("gemini", fake, "gemini-2.5-flash")


@pytest.mark.parametrize("stream", [False, True])
async def test_e2e_text(fake: FakeUpstream, live: Deployment, stream: bool) -> None:
    fake.enqueue(
        Reply("Hallo Welt", input_tokens=50, cached_tokens=20, output_tokens=3, stream_chunks=2)
    )
    resp = await send(
        ADAPTER, chat({"role": "system", "content": "German."}, user("Hi")), live, stream=stream
    )
    assert resp.message.content == "Hallo Welt"
    assert resp.finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.cached_input_tokens, resp.usage.output_tokens) == (
        50,
        20,
        3,
    )
    record = fake.last
    assert record.headers["x-goog-api-key"] == E2E_KEY
    assert "key" not in record.query
    assert record.body["systemInstruction"] == {"parts": [{"text": "German."}]}


@pytest.mark.parametrize("stream", [False, True])
async def test_e2e_tool_call(fake: FakeUpstream, live: Deployment, stream: bool) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("lookup", {"q": "tiergate", "n": 2})]))
    request = chat(
        user("search"),
        tools=[tool_def("lookup", {"type": "object", "properties": {"q": {"type": "string"}}})],
    )
    resp = await send(ADAPTER, request, live, stream=stream)
    (tc,) = resp.message.tool_calls or []
    assert (tc.function.name, tc.function.arguments) == ("lookup", '{"q":"tiergate","n":2}')
    assert resp.finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
async def test_e2e_blocked_prompt(fake: FakeUpstream, live: Deployment, stream: bool) -> None:
    fake.enqueue(Reply(prompt_blocked=True, input_tokens=11))
    resp = await send(ADAPTER, chat(user("something bad")), live, stream=stream)
    assert resp.finish_reason == "content_filter"
    assert resp.message.refusal and "SAFETY" in resp.message.refusal
    assert resp.usage.input_tokens == 11


async def test_e2e_errors(fake: FakeUpstream, live: Deployment) -> None:
    fake.enqueue(Fault(status=429, retry_after=2))
    with pytest.raises(UpstreamError) as err:
        await send(ADAPTER, chat(user("hi")), live, stream=False)
    assert err.value.retryable and err.value.retry_after == 2.0
    wrong = deployment("gemini", fake.base_url("gemini"), "gemini-2.5-flash", api_key="bad")
    with pytest.raises(UpstreamAuthFailed):
        await send(ADAPTER, chat(user("hi")), wrong, stream=False)
    fake.enqueue(Fault(error_after=1, reply=Reply("a b c", stream_chunks=3)))
    with pytest.raises(UpstreamError) as err:
        await send(ADAPTER, chat(user("hi")), live, stream=True)
    assert err.value.retryable


async def test_e2e_truncated_stream_is_not_finished(fake: FakeUpstream, live: Deployment) -> None:
    fake.enqueue(Fault(truncate_after=2, reply=Reply("a b c d e f", stream_chunks=6)))
    chunks, finished = await stream_chunks(ADAPTER, chat(user("hi")), live)
    assert chunks and not finished
