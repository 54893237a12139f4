"""Upstream faults through the real server: each ends in the right failover or the right
error, and the ledger tells the truth (status, attempts, fallbacks, what was spent).

(tests/execution/test_failover.py has the lead's first battery: Retry-After honoured and
capped, tier-up, upstream 400 passed through, revoked key, garbage JSON, circuit breaker,
stream cut after the first byte. These add the rest of the fault list.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
import time

import httpx
import openai
import pytest
from aiohttp import web

from tests.conftest import three_tier_config
from tests.hardening.helpers import AUTH, HELLO, assert_no_secret
from tiergate.fakes import Fault, Reply
from tiergate.fakes.thread import LoopThread

FAST = "timeout: {connect: 1, first_byte: 1, inactivity: 0.5, total: 5}"


def _fast(fake, extra: str = "") -> str:
    return three_tier_config(fake, extra).replace(
        "timeout: {connect: 2, first_byte: 3, inactivity: 3, total: 10}", FAST
    )


def _ask(gw, **kwargs):
    return gw.client().chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "auto"), messages=[{"role": "user", "content": "hi"}], **kwargs
    )


def _stream_lines(gw, **kwargs) -> list[str]:
    body = {**HELLO, "stream": True, **kwargs}
    with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=AUTH) as r:
        assert r.status_code == 200, r.read()
        return [line for line in r.iter_lines() if line]


def _stream_text(lines: list[str]) -> str:
    text = []
    for line in lines:
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                text.append(choice["delta"].get("content") or "")
    return "".join(text)


# -- statuses -------------------------------------------------------------------------------


def test_429_without_retry_after_backs_off_and_retries(gw, fake):
    fake.enqueue(Fault(status=429), Reply("second try"))
    raw = _ask(gw)
    assert raw.parse().choices[0].message.content == "second try"
    assert raw.headers["x-tiergate-model"] == "small-model"
    (entry,) = gw.ledger.entries
    assert entry.status == 200 and entry.fallbacks == 1
    assert entry.attempts == "small-model@upstream:429"


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_server_errors_fail_over_and_are_booked(gw, fake, status):
    fake.enqueue(Fault(status=status), Fault(status=status), Reply("from the next tier"))
    raw = _ask(gw)
    assert raw.parse().choices[0].message.content == "from the next tier"
    assert raw.headers["x-tiergate-model"] == "medium-model"
    (entry,) = gw.ledger.entries
    assert entry.status == 200 and entry.fallbacks == 2 and entry.model == "medium-model"
    assert entry.attempts == f"small-model@upstream:{status},small-model@upstream:{status}"
    # only the answer is paid for, at the price of the model that gave it
    assert entry.cost_usd == pytest.approx(
        (entry.input_tokens * 0.25 + entry.output_tokens * 2.0) / 1e6
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_dead_budget_provider(fake, base_url: str) -> str:
    """small-model on an unreachable provider, the other tiers on the fake."""
    config = _fast(fake)
    dead = textwrap.indent(
        textwrap.dedent(
            f"""\
            dead:
              kind: openai
              base_url: {base_url}
              api_key: sk-dead
              {FAST}
            """
        ),
        "  ",
    )
    config = config.replace("providers:\n", "providers:\n" + dead, 1)
    return config.replace(
        "{provider: upstream, model: mock-small", "{provider: dead, model: mock-small"
    )


@pytest.mark.parametrize(
    "base_url",
    [f"http://127.0.0.1:{_closed_port()}/v1", "http://llm.tiergate-test.invalid/v1"],
    ids=["connect-refused", "dns-failure"],
)
def test_unreachable_provider_fails_over(fake, start_gateway, base_url):
    gw = start_gateway(_with_dead_budget_provider(fake, base_url))
    started = time.monotonic()
    raw = _ask(gw)
    assert time.monotonic() - started < 5
    assert raw.headers["x-tiergate-model"] == "medium-model"
    (entry,) = gw.ledger.entries
    assert entry.status == 200 and entry.fallbacks >= 1
    assert "small-model@dead:error" in entry.attempts
    assert fake.calls == 1  # the fake only ever saw the request that succeeded


def test_unreachable_provider_for_a_direct_model_is_a_502_envelope(fake, start_gateway):
    gw = start_gateway(_with_dead_budget_provider(fake, f"http://127.0.0.1:{_closed_port()}/v1"))
    with pytest.raises(openai.APIStatusError) as err:
        _ask(gw, model="small-model")
    assert err.value.status_code == 502
    assert err.value.body["code"] == "all_upstreams_failed"
    assert_no_secret(json.dumps(err.value.body))
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.cost_usd == 0


# -- timeouts -------------------------------------------------------------------------------


def test_timeout_before_headers_is_bounded_and_fails_over(fake, start_gateway):
    gw = start_gateway(_fast(fake))
    fake.enqueue(Fault(delay_headers=4), Reply("on time"))
    started = time.monotonic()
    raw = _ask(gw)
    assert time.monotonic() - started < 3
    assert raw.parse().choices[0].message.content == "on time"
    (entry,) = gw.ledger.entries
    assert entry.fallbacks == 1 and "small-model@upstream:error" in entry.attempts


def test_every_attempt_timing_out_is_504(fake, start_gateway):
    gw = start_gateway(_fast(fake))
    fake.enqueue(*[Fault(delay_headers=3)] * 6)
    with pytest.raises(openai.APIStatusError) as err:
        _ask(gw, model="small-model")
    assert err.value.status_code == 504
    (entry,) = gw.ledger.entries
    assert entry.status == 504 and entry.cost_usd == 0


def test_slow_drip_before_the_first_chunk_fails_over(fake, start_gateway):
    gw = start_gateway(_fast(fake))
    fake.enqueue(
        Reply("slow slow slow", stream_chunks=3, chunk_delay=2), Reply("brisk", stream_chunks=1)
    )
    started = time.monotonic()
    text = _stream_text(_stream_lines(gw))
    assert text == "brisk"
    assert time.monotonic() - started < 3


class Drip:
    """An upstream that sends `fast` stream chunks, then one byte every `interval` seconds."""

    def __init__(self, fast: int, interval: float, *, json_body: bool = False):
        self.fast, self.interval, self.json_body = fast, interval, json_body
        self.disconnected = asyncio.Event()
        self.requests = 0
        self._loop = LoopThread("drip-upstream")
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        if self.json_body:
            return await self._drip_json(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            for i in range(self.fast):
                chunk = {
                    "id": "d",
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": f"w{i} "}}],
                }
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            for _ in range(50):  # bounded: at most 50 drips
                await asyncio.sleep(self.interval)
                await response.write(b":")
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    async def _drip_json(self, request: web.Request) -> web.StreamResponse:
        """A whole chat completion, announced by Content-Length, one byte per interval."""
        body = json.dumps(
            {
                "id": "d",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "slow"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        response = web.StreamResponse(
            headers={"content-type": "application/json", "content-length": str(len(body))}
        )
        await response.prepare(request)
        try:
            for byte in body:
                await asyncio.sleep(self.interval)
                await response.write(bytes([byte]))
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def __enter__(self) -> Drip:
        self._loop.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        self._loop.run(self._runner.cleanup())
        self._loop.close()


def test_inactivity_between_chunks_ends_the_stream_with_an_error(fake, start_gateway):
    # Comment bytes every 0.2 s keep the socket busy but carry no event: the inactivity
    # timeout must count time without *events*, or a drip holds the request forever.
    with Drip(fast=2, interval=0.2) as drip:
        config = _with_dead_budget_provider(fake, f"http://127.0.0.1:{drip.port}/v1")
        gw = start_gateway(config)
        started = time.monotonic()
        lines = _stream_lines(gw, model="small-model")
        elapsed = time.monotonic() - started
    assert elapsed < 4, f"the drip held the stream for {elapsed:.1f}s"
    assert _stream_text(lines) == "w0 w1 "
    assert lines[-1] != "data: [DONE]" and '"error"' in lines[-1]
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.stream and entry.output_tokens > 0


def test_a_body_dripping_within_the_inactivity_timeout_ends_at_the_total_timeout(
    fake, start_gateway
):
    # One byte every 0.2 s never trips the 0.5 s inactivity timeout; the whole call must
    # still end at the provider's total timeout (here 2 s): two attempts (one retry), then
    # the next tier answers.
    with Drip(fast=0, interval=0.2, json_body=True) as drip:
        config = _with_dead_budget_provider(fake, f"http://127.0.0.1:{drip.port}/v1")
        gw = start_gateway(config.replace("total: 5}", "total: 2}"))
        fake.enqueue(Reply("from the next tier"))
        started = time.monotonic()
        raw = _ask(gw)
        elapsed = time.monotonic() - started
        assert drip.requests >= 1
    assert 3.5 < elapsed < 7, f"two attempts took {elapsed:.1f}s"
    assert raw.parse().choices[0].message.content == "from the next tier"
    (entry,) = gw.ledger.entries
    assert entry.model == "medium-model"
    assert entry.attempts == "small-model@dead:error,small-model@dead:error"


def test_silent_stall_between_chunks_ends_the_stream_with_an_error(fake, start_gateway):
    with Drip(fast=2, interval=30) as drip:
        gw = start_gateway(_with_dead_budget_provider(fake, f"http://127.0.0.1:{drip.port}/v1"))
        started = time.monotonic()
        lines = _stream_lines(gw, model="small-model")
        assert time.monotonic() - started < 3
        assert drip.disconnected.is_set() or drip.requests == 1
    assert '"error"' in lines[-1]
    (entry,) = gw.ledger.entries
    assert entry.status == 502


# -- broken bodies and streams --------------------------------------------------------------


def test_garbage_first_stream_event_fails_over(gw, fake):
    fake.enqueue(Fault(garbage=True), Reply("clean stream", stream_chunks=2))
    assert _stream_text(_stream_lines(gw)) == "clean stream"
    (entry,) = gw.ledger.entries
    assert entry.status == 200 and entry.fallbacks == 1


def test_truncated_non_stream_body_fails_over(gw, fake):
    fake.enqueue(Fault(truncate_after=1, reply=Reply("cut in half")), Reply("whole"))
    assert _ask(gw).parse().choices[0].message.content == "whole"
    (entry,) = gw.ledger.entries
    assert entry.fallbacks == 1 and entry.cost_usd > 0


def test_stream_aborted_mid_way_ends_with_error_and_books_what_came(gw, fake):
    fake.enqueue(
        Fault(truncate_after=3, drop_connection=True, reply=Reply("a b c d e f", stream_chunks=6))
    )
    lines = _stream_lines(gw)
    assert lines[-1] != "data: [DONE]" and '"error"' in lines[-1]
    assert _stream_text(lines)
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.output_tokens > 0 and entry.cost_usd > 0


def test_in_stream_error_after_200_ends_with_error_not_done(gw, fake):
    fake.enqueue(
        Fault(error_after=3, status=529, reply=Reply("one two three four five", stream_chunks=5))
    )
    lines = _stream_lines(gw)
    assert lines[-1] != "data: [DONE]"
    error = json.loads(lines[-1][6:])["error"]
    assert error["message"]
    assert _stream_text(lines)  # what came before the error reached the client
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.stream and entry.output_tokens > 0


def test_in_stream_error_for_the_non_streaming_client_fails_over(gw, fake):
    # Non-streaming requests are non-streaming upstream too; an error_after fault there is a
    # plain HTTP error, and the client still gets an answer from the next attempt.
    fake.enqueue(Fault(error_after=1, status=500), Reply("recovered"))
    assert _ask(gw).parse().choices[0].message.content == "recovered"


# -- credentials ----------------------------------------------------------------------------


def test_revoked_provider_key_never_leaks_into_the_error_or_ledger(fake, start_gateway):
    config = three_tier_config(fake).replace(
        "api_key: sk-upstream", "api_key: sk-revoked-0123456789"
    )
    gw = start_gateway(config)
    response = httpx.post(f"{gw.url}/v1/chat/completions", json=HELLO, headers=AUTH)
    assert response.status_code == 502
    assert fake.calls == 3  # one per deployment: a dead credential is never retried
    for text in [response.text, *(e.error or "" for e in gw.ledger.entries)]:
        assert "sk-revoked" not in text and "sk-r" not in text and "6789" not in text
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.cost_usd == 0
    assert entry.attempts.count(":401") == 3


def test_a_dead_credential_does_not_take_healthy_tiers_down(fake, start_gateway):
    config = _with_dead_budget_provider(fake, fake.base_url("openai"))  # sk-dead → 401
    gw = start_gateway(config)
    for _ in range(3):
        raw = _ask(gw)
        assert raw.headers["x-tiergate-model"] == "medium-model"
    # the 401 was seen once; afterwards the dead credential is skipped without a call
    assert sum(1 for r in fake.history if r.status == 401) == 1


class Flood(Drip):
    """An upstream that answers 200 with far more bytes than any real answer has."""

    def __init__(self, size: int):
        super().__init__(fast=0, interval=0)
        self.size = size

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        stream = (await request.json()).get("stream", False)
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream" if stream else "application/json"}
        )
        await response.prepare(request)
        block = b"x" * 65536  # no newline: never a complete event, never valid JSON
        try:
            for _ in range(self.size // len(block) + 1):
                await response.write(block)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


@pytest.mark.parametrize("stream", [False, True])
def test_an_endless_answer_is_cut_off_not_buffered(fake, start_gateway, monkeypatch, stream):
    from tiergate.providers import transport

    monkeypatch.setattr(transport, "MAX_BODY", 1024 * 1024)
    monkeypatch.setattr(transport, "MAX_EVENT", 256 * 1024)
    with Flood(size=4 * 1024 * 1024) as flood:
        gw = start_gateway(_with_dead_budget_provider(fake, f"http://127.0.0.1:{flood.port}/v1"))
        response = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={**HELLO, "model": "small-model", "stream": stream},
            headers=AUTH,
            timeout=20,
        )
    assert response.status_code == 502
    assert "bytes" in response.json()["error"]["message"]
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.cost_usd == 0
