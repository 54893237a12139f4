"""Response bodies and event streams through the upstream HTTP client: framing, decoding,
limits, inactivity, flow control and cancellation, against real local servers."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import orjson
import pytest

from tests.providers.test_transport import RawServer, call, eventually, provider, transport
from tiergate.errors import UpstreamError, UpstreamTimeout
from tiergate.fakes import FakeUpstream, Reply
from tiergate.providers import sse
from tiergate.providers import transport as transport_module
from tiergate.providers.base import SSEEvent
from tiergate.providers.http1 import HIGH_WATER


def serve_once(*parts: bytes, delay: float = 0.0, then_close: bool = False):
    """A handler that answers the first request with `parts` (`delay` apart), then waits for
    the client to go (or closes)."""

    async def handler(server: RawServer, reader, writer) -> None:
        if await server.request(reader) is None:
            return
        for i, part in enumerate(parts):
            if i and delay:
                await asyncio.sleep(delay)
            writer.write(part)
            await writer.drain()
        if then_close:
            return
        await server.until_eof(reader)

    return handler


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def events(*datas: str) -> bytes:
    return b"".join(f"data: {d}\n\n".encode() for d in datas)


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


async def fetch(server: RawServer, **timeouts: float) -> bytes:
    up = provider(server.url, **timeouts)
    async with transport(up) as client:
        response = await client.post(up, call(server.url))
        return await response.read()


async def stream(server: RawServer, **timeouts: float) -> list[str]:
    up = provider(server.url, **timeouts)
    async with transport(up) as client:
        response = await client.post(up, call(server.url))
        return [event.data async for event in response.events()]


# -- framing --------------------------------------------------------------------------------


async def test_chunked_body_in_pieces():
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    body = chunked(b"hello ", b"chunked ", b"world")
    handler = serve_once(head + body[:9], body[9:20], body[20:], delay=0.05)
    async with RawServer(handler) as server:
        assert await fetch(server) == b"hello chunked world"


async def test_content_length_body_in_pieces():
    handler = serve_once(
        b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhel", b"lo wo", b"rld", delay=0.05
    )
    async with RawServer(handler) as server:
        assert await fetch(server) == b"hello world"


async def test_a_body_without_length_ends_with_the_connection():
    handler = serve_once(b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the end", delay=0.05, then_close=True)
    async with RawServer(handler) as server:
        assert await fetch(server) == b"until the end"
        assert server.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly half of it",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_a_body_cut_off_by_the_server(answer):
    async with RawServer(serve_once(answer, then_close=True)) as server:
        with pytest.raises(UpstreamError, match="response body was cut off"):
            await fetch(server)


async def test_invalid_http_is_an_upstream_error():
    async with RawServer(serve_once(b"SMTP ready\r\n\r\n")) as server:
        with pytest.raises(UpstreamError, match="invalid HTTP response"):
            await fetch(server)


# -- content encodings ----------------------------------------------------------------------


def _deflate(data: bytes, raw: bool) -> bytes:
    squeeze = zlib.compressobj(wbits=-15 if raw else 15)
    return squeeze.compress(data) + squeeze.flush()


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", lambda d: _deflate(d, raw=False)),
        ("deflate", lambda d: _deflate(d, raw=True)),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
async def test_compressed_bodies_are_decoded(name, encode):
    plain = orjson.dumps({"text": "squeezed " * 2000})
    packed = encode(plain)
    head = f"HTTP/1.1 200 OK\r\ncontent-encoding: {name}\r\ncontent-length: {len(packed)}\r\n\r\n"
    half = len(packed) // 2
    handler = serve_once(head.encode() + packed[:half], packed[half:], delay=0.05)
    async with RawServer(handler) as server:
        assert await fetch(server) == plain


async def test_a_gzip_stream_is_decoded_event_by_event():
    packer = zlib.compressobj(wbits=31)
    parts = [packer.compress(events(f"e{i}")) + packer.flush(zlib.Z_SYNC_FLUSH) for i in range(5)]
    parts.append(packer.flush())
    head = SSE_HEAD + b"content-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
    frames = [head] + [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]
    async with RawServer(serve_once(*frames, delay=0.02)) as server:
        assert await stream(server) == [f"e{i}" for i in range(5)]


async def test_an_unknown_content_encoding_is_refused():
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 2\r\n\r\nxx"
    async with RawServer(serve_once(answer)) as server:
        up = provider(server.url)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match="unsupported content-encoding br"):
                await client.post(up, call(server.url))


async def test_a_corrupt_gzip_body_is_an_upstream_error():
    answer = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 9\r\n\r\nnot gzip!"
    async with RawServer(serve_once(answer)) as server:
        with pytest.raises(UpstreamError, match="not valid gzip"):
            await fetch(server)


# -- limits ---------------------------------------------------------------------------------


async def test_a_body_over_max_body_is_refused(monkeypatch):
    monkeypatch.setattr(transport_module, "MAX_BODY", 1000)
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000
    async with RawServer(serve_once(answer)) as server:
        with pytest.raises(UpstreamError, match="response over 1000 bytes"):
            await fetch(server)


async def test_a_gzip_bomb_is_refused_without_inflating_it(monkeypatch):
    monkeypatch.setattr(transport_module, "MAX_BODY", 1024 * 1024)
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024))  # 200 MB of zeros in ~200 KB
    head = f"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {len(bomb)}\r\n\r\n"
    async with RawServer(serve_once(head.encode() + bomb)) as server:
        with pytest.raises(UpstreamError, match="response over"):
            await fetch(server)


async def test_a_stream_event_over_max_event_is_refused(monkeypatch):
    monkeypatch.setattr(transport_module, "MAX_EVENT", 100_000)
    head = SSE_HEAD + b"content-length: 1000000\r\n\r\n"
    async with RawServer(serve_once(head + b"data: " + b"x" * 999_994)) as server:
        with pytest.raises(UpstreamError, match="a stream event ran over 100000 bytes"):
            await stream(server)


async def test_error_bodies_are_read_up_to_64_kib():
    answer = b"HTTP/1.1 500 Oops\r\ncontent-length: 100000\r\n\r\n" + b"e" * 100_000
    async with RawServer(serve_once(answer)) as server:
        up = provider(server.url)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            assert response.status == 500
            assert await response.read_error_body() == b"e" * 65536


# -- timeouts -------------------------------------------------------------------------------


async def test_a_body_that_stalls_hits_the_inactivity_timeout():
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nsome"
    async with RawServer(serve_once(head)) as server:
        with pytest.raises(UpstreamTimeout, match="timed out"):
            await fetch(server, inactivity=0.3)
        await asyncio.wait_for(server.eof.wait(), 5)  # the stalled connection was dropped


async def test_a_stream_that_stalls_between_events_hits_the_inactivity_timeout():
    head = SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n"
    async with RawServer(serve_once(head + chunked(events("one"))[:-5])) as server:
        up = provider(server.url, inactivity=0.3)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            seen = []
            with pytest.raises(UpstreamTimeout, match=r"no stream event for 0\.3s"):
                async for event in response.events():
                    seen.append(event.data)
            assert seen == ["one"]
            await asyncio.wait_for(server.eof.wait(), 5)


async def test_a_drip_of_comments_does_not_count_as_activity():
    head = SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n"
    drip = [chunked(b": keep-alive\n")[:-5] for _ in range(100)]
    async with RawServer(serve_once(head, *drip, delay=0.05)) as server:
        with pytest.raises(UpstreamTimeout, match="no stream event"):
            await stream(server, inactivity=0.4)


async def test_a_stream_is_bounded_by_the_total_timeout():
    head = SSE_HEAD + b"transfer-encoding: chunked\r\n\r\n"
    ticks = [chunked(events(f"t{i}"))[:-5] for i in range(200)]
    async with RawServer(serve_once(head, *ticks, delay=0.05)) as server:
        with pytest.raises(UpstreamTimeout, match="stream passed the total timeout"):
            await stream(server, inactivity=1, total=0.5)


# -- streams --------------------------------------------------------------------------------


async def test_fake_upstream_stream_and_connection_reuse():
    async with FakeUpstream() as fake:
        url = fake.base_url("openai") + "/chat/completions"
        up = provider(url)
        body = orjson.dumps(
            {
                "model": "mock-model",
                "stream": True,
                "messages": [{"role": "user", "content": "a b c"}],
            }
        )
        async with transport(up) as client:
            for _ in range(2):
                response = await client.post(up, call(url, body))
                datas = [event.data async for event in response.events()]
                response.close()
                assert datas[-1] == "[DONE]" and len(datas) > 3
            (pool,) = client.pools(up)
            assert pool.open_connections == 1
        assert fake.calls == 2 and fake.last.completed


async def test_close_mid_stream_is_seen_by_the_server():
    async with FakeUpstream() as fake:
        fake.enqueue(Reply("one two three four five six", stream_chunks=6, chunk_delay=0.2))
        url = fake.base_url("openai") + "/chat/completions"
        up = provider(url)
        body = orjson.dumps(
            {"model": "mock-model", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        )
        async with transport(up) as client:
            response = await client.post(up, call(url, body))
            async for _ in response.events():
                break
            response.close()
            await eventually(lambda: fake.last.disconnected, "the fake saw the disconnect")
            assert not fake.last.completed
            (pool,) = client.pools(up)
            await eventually(lambda: pool.open_connections == 0)


async def test_the_first_event_of_a_burst_is_handed_on_before_the_rest_are_parsed(monkeypatch):
    made = 0

    class Counted(SSEEvent):
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            nonlocal made
            made += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sse, "SSEEvent", Counted)
    burst = events(*(f"event {i} " + "x" * 200 for i in range(1000)))
    head = SSE_HEAD + f"content-length: {len(burst)}\r\n\r\n".encode()
    async with RawServer(serve_once(head + burst)) as server:
        up = provider(server.url)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            await eventually(lambda: response._conn.complete, "the whole burst arrived")
            iterator = response.events()
            first = await anext(iterator)
            assert first.data.startswith("event 0 ")
            assert made == 1  # not a thousand
            rest = [event async for event in iterator]
            assert len(rest) == 999 and made == 1000


async def test_an_unread_stream_stops_the_socket_and_resumes_when_read():
    # 16 MB of events: without flow control they would all sit in memory, unread.
    one = events("x" * 1000)
    count = 16 * 1024
    head = SSE_HEAD + f"content-length: {len(one) * count}\r\n\r\n".encode()
    parts = [head] + [one * 1024] * (count // 1024)
    async with RawServer(serve_once(*parts)) as server:
        up = provider(server.url)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            iterator = response.events()
            await anext(iterator)
            await asyncio.sleep(0.5)  # time enough for a loopback socket to deliver it all
            assert response._conn.buffered <= HIGH_WATER + 512 * 1024
            rest = [event async for event in iterator]
            assert len(rest) == count - 1


async def test_body_bytes_after_a_split_head_are_not_counted_as_head():
    # 200 KB of head (under the limit), then the rest of it with a big body right behind
    filler = b"x-filler: " + b"f" * 1000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + filler * 200
    body = b"b" * (1024 * 1024)
    rest = b"content-length: %d\r\n\r\n" % len(body) + body
    async with RawServer(serve_once(head, rest, delay=0.1)) as server:
        assert await fetch(server) == body


async def test_an_endless_head_is_refused():
    endless = [b"HTTP/1.1 200 OK\r\n"] + [b"x-filler: " + b"f" * 1000 + b"\r\n"] * 400
    async with RawServer(serve_once(b"".join(endless))) as server:
        with pytest.raises(UpstreamError, match="response head over"):
            await fetch(server)
