"""`POST /v1/messages` end to end: the official Anthropic SDK against a real gateway."""

from __future__ import annotations

import asyncio
import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import anthropic
import pytest
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tiergate.config.loader import parse_config
from tiergate.fakes import FakeUpstream, Fault, Reply, ToolCall
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.messages import _translate, messages
from tiergate.ingress.server import BackgroundServer
from tiergate.ledger import MemoryLedger
from tiergate.providers.sse import SSEParser

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@dataclass
class Live:
    url: str
    ledger: MemoryLedger

    def client(self, key: str = "tg-test-key") -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0)


def config(fake: FakeUpstream) -> str:
    # One upstream per protocol: whichever serves, the client speaks Messages.
    return textwrap.dedent(
        f"""
        providers:
          oai:
            kind: openai
            base_url: {fake.base_url("openai")}
            api_key: sk-upstream
          ant:
            kind: anthropic
            base_url: {fake.base_url("anthropic")}
            api_key: sk-upstream
        models:
          small-model: {{provider: oai, model: mock-small, tier: budget, price: {{input: 0.05, output: 0.40}}}}
          claude-model: {{provider: ant, model: claude-fake, tier: premium, price: {{input: 3.0, output: 15.0}}}}
        routes:
          auto:
            strategy: rules
        keys:
          - {{name: test, key: tg-test-key}}
        """
    )


@pytest.fixture
def live(fake: FakeUpstream) -> Iterator[Live]:
    ledger = MemoryLedger()
    gateway = Gateway.from_config(parse_config(config(fake)), ledger=ledger)
    app = create_app(gateway)
    if not any(getattr(r, "path", None) == "/v1/messages" for r in app.routes):
        app.router.routes.append(Route("/v1/messages", messages, methods=["POST"]))
    server = BackgroundServer(app).start()
    try:
        yield Live(server.url, ledger)
    finally:
        server.stop()


HI = [{"role": "user", "content": "hi there"}]


@pytest.mark.parametrize("model", ["auto", "claude-model"])
def test_plain_message(live: Live, fake: FakeUpstream, model: str) -> None:
    fake.enqueue(Reply("Hello!", input_tokens=12, output_tokens=3))
    raw = live.client().messages.with_raw_response.create(
        model=model, max_tokens=100, system="Be brief.", messages=HI
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hello!"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)
    assert raw.headers["x-tiergate-model"] == message.model
    assert raw.headers["x-tiergate-request-id"]
    (entry,) = live.ledger.entries
    assert entry.input_tokens == 12 and entry.output_tokens == 3
    assert (
        fake.last.body.get("max_tokens") == 100
        or fake.last.body.get("max_completion_tokens") == 100
    )


@pytest.mark.parametrize("model", ["auto", "claude-model"])
def test_streamed_message(live: Live, fake: FakeUpstream, model: str) -> None:
    fake.enqueue(Reply("one two three four", stream_chunks=4, input_tokens=5, output_tokens=4))
    with live.client().messages.stream(model=model, max_tokens=50, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three four"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use(live: Live, fake: FakeUpstream, stream: bool) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_W")]))
    client = live.client()
    params: dict = {
        "model": "auto",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [WEATHER],
        "tool_choice": {"type": "any"},
    }
    if stream:
        with client.messages.stream(**params) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**params)
    (block,) = [b for b in message.content if b.type == "tool_use"]
    assert (block.id, block.name, block.input) == ("call_W", "get_weather", {"city": "Paris"})
    assert message.stop_reason == "tool_use"
    sent = fake.last.body
    if fake.last.protocol == "openai":
        assert sent["tool_choice"] == "required"
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    else:
        assert sent["tool_choice"] == {"type": "any"}
        assert sent["tools"][0]["input_schema"] == WEATHER["input_schema"]
    assert len(live.ledger.entries) == 1


def test_tool_result_turn(live: Live, fake: FakeUpstream) -> None:
    fake.enqueue(Reply("It is 18C."))
    message = live.client().messages.create(
        model="auto",
        max_tokens=100,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}],
            },
        ],
    )
    assert message.content[0].type == "text" and message.content[0].text == "It is 18C."
    roles = [m["role"] for m in fake.last.body["messages"]]
    # Either upstream protocol: the tool result reached it in its own form.
    assert roles == (
        ["user", "assistant", "tool"]
        if fake.last.protocol == "openai"
        else ["user", "assistant", "user"]
    )


def post(live: Live, body: dict, key: str = "tg-test-key") -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{live.url}/v1/messages",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "x-api-key": key,
            "anthropic-version": "2023-06-01",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_missing_max_tokens_is_named(live: Live, fake: FakeUpstream) -> None:
    status, body = post(live, {"model": "auto", "messages": HI})
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    assert fake.calls == 0  # a client mistake never reaches an upstream


def test_errors_use_the_anthropic_envelope(live: Live) -> None:
    with pytest.raises(anthropic.AuthenticationError) as err:
        live.client(key="wrong").messages.create(model="auto", max_tokens=5, messages=HI)
    assert err.value.status_code == 401
    assert err.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    status, body = post(
        live,
        {
            "model": "auto",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "document"}]}],
        },
    )
    assert status == 400 and "'document'" in body["error"]["message"]


def test_error_after_the_first_byte_is_an_error_event(live: Live, fake: FakeUpstream) -> None:
    fake.enqueue(Fault(error_after=2, reply=Reply("a b c d e f", stream_chunks=6)))
    with (
        pytest.raises(anthropic.APIError),
        live.client().messages.stream(model="auto", max_tokens=50, messages=HI) as s,
    ):
        for _ in s.text_stream:
            pass


# -- the re-encoding of the chat handler's answers, without a server ----------------------------


def _translated(answer: Response) -> tuple[int, bytes]:
    out = _translate(answer)

    async def collect() -> bytes:
        if isinstance(out, StreamingResponse):
            return b"".join(
                [c if isinstance(c, bytes) else c.encode() async for c in out.body_iterator]
            )
        return bytes(out.body)

    return out.status_code, asyncio.run(collect())


OPENAI_STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4}}}\n\n'
    b"data: [DONE]\n\n"
)
TG = {"x-tiergate-request-id": "abc", "x-tiergate-model": "small-model"}


def _names(raw: bytes) -> list[str]:
    return [e.event for e in SSEParser().feed(raw)]


def test_cached_stream_replay_is_re_encoded() -> None:
    status, raw = _translated(Response(OPENAI_STREAM, headers=TG, media_type="text/event-stream"))
    assert status == 200
    assert _names(raw) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    delta = json.loads(SSEParser().feed(raw)[-2].data)
    assert delta["usage"] == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
        "output_tokens": 1,
    }
    assert json.loads(SSEParser().feed(raw)[0].data)["message"]["id"] == "msg_abc"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            b'data: {"error":{"message":"upstream died","type":"upstream_error"}}\n\n',
            "upstream died",
        ),
        (b"", "ended early"),
    ],
)
def test_stream_failures_end_with_an_error_event(tail: bytes, message: str) -> None:
    first = OPENAI_STREAM.split(b"\n\n")[0] + b"\n\n"

    async def body() -> AsyncIterator[bytes]:
        yield first
        if tail:
            yield tail

    status, raw = _translated(StreamingResponse(body(), headers=TG, media_type="text/event-stream"))
    assert status == 200  # the headers had left already
    events = SSEParser().feed(raw)
    assert (
        events[-1].event == "error" and message in json.loads(events[-1].data)["error"]["message"]
    )
    assert "message_stop" not in [e.event for e in events]


def test_error_answers_change_envelope_and_keep_status_and_headers() -> None:
    body = b'{"error":{"message":"over budget","type":"insufficient_quota","param":null,"code":"budget_exceeded"}}'
    out = _translate(Response(body, 429, {**TG, "retry-after": "3"}, media_type="application/json"))
    assert out.status_code == 429 and out.headers["retry-after"] == "3"
    assert out.headers["x-tiergate-request-id"] == "abc"
    assert json.loads(out.body) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "over budget"},
    }
