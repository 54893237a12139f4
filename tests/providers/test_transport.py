"""The upstream HTTP client against real local servers: pooling, keep-alive, retries of
stale connections, timeouts, TLS, DNS and the request on the wire.

Edge cases come from `RawServer`, a few lines of asyncio that answer exactly the bytes a
test scripts; ordinary answers from the FakeUpstream. Bodies and streams are in
test_transport_body.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import orjson
import pytest

from tiergate.errors import UpstreamError, UpstreamTimeout
from tiergate.fakes import FakeUpstream, Reply
from tiergate.fleet import Provider, Timeouts
from tiergate.providers import http1_pool
from tiergate.providers.base import UpstreamCall
from tiergate.providers.transport import Transport

# -- servers and helpers (test_transport_body.py uses these too) -----------------------------

Handler = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP server that runs `handler` per connection and counts what it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.ended = 0  # connections whose handler finished (the client went, or we closed)
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.eof = asyncio.Event()  # some connection saw the client go away
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # __aexit__ cancels the handlers still running; nobody waits for them
        finally:
            self.ended += 1
            self._tasks.discard(task)
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's head (body read and recorded), or None when the client left."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.eof.set()
            return None
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        self.bodies.append(await reader.readexactly(int(match.group(1)) if match else 0))
        self.heads.append(head)
        return head

    async def until_eof(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass
        self.eof.set()


def answer(body: bytes = b'{"ok":true}', *, status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


async def keep_answering(server: RawServer, reader: asyncio.StreamReader, writer) -> None:
    """An ordinary keep-alive server."""
    while await server.request(reader) is not None:
        writer.write(answer())


def provider(
    url: str,
    *,
    connect: float = 2,
    first_byte: float = 5,
    inactivity: float = 5,
    total: float = 20,
    max_connections: int = 8,
    headers: tuple[tuple[str, str], ...] = (),
) -> Provider:
    return Provider(
        "up",
        "openai",
        url.rsplit("/chat/completions", 1)[0],
        headers=headers,
        timeouts=Timeouts(connect, first_byte, inactivity, total),
        max_connections=max_connections,
    )


def call(url: str, body: bytes = b'{"model":"m"}', **headers: str) -> UpstreamCall:
    return UpstreamCall(url, {"content-type": "application/json", **headers}, body)


@contextlib.asynccontextmanager
async def transport(*providers: Provider) -> AsyncIterator[Transport]:
    client = Transport(providers)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def eventually(check: Callable[[], bool], what: str = "condition") -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, f"{what} never came true"
        await asyncio.sleep(0.01)


async def post_read(client: Transport, up: Provider, url: str, **headers: str) -> bytes:
    response = await client.post(up, call(url, **headers))
    assert response.status == 200
    return await response.read()


# -- keep-alive and the pool ----------------------------------------------------------------


async def test_sequential_calls_reuse_one_connection():
    async with RawServer(keep_answering) as server:
        up = provider(server.url)
        async with transport(up) as client:
            for _ in range(5):
                assert await post_read(client, up, server.url) == b'{"ok":true}'
        assert server.connections == 1
        assert len(server.heads) == 5


async def test_fake_upstream_answers_over_one_connection():
    async with FakeUpstream() as fake:
        url = fake.base_url("openai") + "/chat/completions"
        up = provider(url)
        body = orjson.dumps(
            {"model": "mock-model", "messages": [{"role": "user", "content": "hi"}]}
        )
        async with transport(up) as client:
            for _ in range(3):
                response = await client.post(up, call(url, body))
                assert orjson.loads(await response.read())["choices"][0]["message"]["content"]
            (pool,) = client.pools(up)
            assert pool.open_connections == 1 and pool.idle_connections == 1
        assert fake.calls == 3


async def test_pool_limit_queues_callers_first_come_first_served():
    release = asyncio.Event()
    in_flight = 0
    most = 0

    async def held(server: RawServer, reader, writer) -> None:
        nonlocal in_flight, most
        while await server.request(reader) is not None:
            in_flight += 1
            most = max(most, in_flight)
            await release.wait()
            in_flight -= 1
            writer.write(answer())

    async with RawServer(held) as server:
        up = provider(server.url, max_connections=2)
        async with transport(up) as client:
            calls = [
                asyncio.create_task(post_read(client, up, server.url, x_n=str(n))) for n in range(6)
            ]
            await eventually(lambda: len(server.heads) == 2, "two requests in flight")
            await asyncio.sleep(0.1)
            assert len(server.heads) == 2 and server.connections == 2  # the rest wait
            release.set()
            await asyncio.gather(*calls)
        assert most == 2 and server.connections == 2
        order = [int(re.search(rb"x_n: (\d+)", head).group(1)) for head in server.heads]
        assert sorted(order[:2]) == [0, 1] and order[2:] == [2, 3, 4, 5]


async def test_waiting_for_a_connection_counts_against_the_first_byte_timeout():
    release = asyncio.Event()

    async def held(server: RawServer, reader, writer) -> None:
        while await server.request(reader) is not None:
            await release.wait()
            writer.write(answer())

    async with RawServer(held) as server:
        patient = provider(server.url, max_connections=1)
        hasty = dataclasses.replace(patient, timeouts=Timeouts(2, 0.3, 5, 20))
        async with transport(patient) as client:
            first = asyncio.create_task(post_read(client, patient, server.url))
            await eventually(lambda: len(server.heads) == 1)
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout, match="timed out"):
                await client.post(hasty, call(server.url))
            assert time.monotonic() - started < 3
            assert len(server.heads) == 1  # the second call never got a connection
            release.set()
            assert await first == b'{"ok":true}'
            assert await post_read(client, patient, server.url) == b'{"ok":true}'
        assert server.connections == 1


async def test_idle_connections_are_reused_newest_first():
    release = asyncio.Event()

    async def held_once(server: RawServer, reader, writer) -> None:
        number = server.connections
        while (head := await server.request(reader)) is not None:
            if b"x_hold" in head:
                await release.wait()
            writer.write(answer(str(number).encode()))

    async with RawServer(held_once) as server:
        up = provider(server.url)
        async with transport(up) as client:
            # two connections at once; the second to finish is the newest idle one
            one = asyncio.create_task(post_read(client, up, server.url, x_hold="1"))
            await eventually(lambda: len(server.heads) == 1)
            two = await post_read(client, up, server.url)
            release.set()
            one_body = await one
            assert {one_body, two} == {b"1", b"2"}
            assert await post_read(client, up, server.url) == one_body


async def test_stale_keep_alive_connection_is_retried_once_on_a_new_one():
    async def closes_on_second_request(server: RawServer, reader, writer) -> None:
        if await server.request(reader) is None:
            return
        writer.write(answer())
        await server.request(reader)  # the server "timed out" this idle connection meanwhile

    async with RawServer(closes_on_second_request) as server:
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
            assert await post_read(client, up, server.url) == b'{"ok":true}'
        assert server.connections == 2
        assert len(server.heads) == 3  # the lost request, then its retry on the new connection


async def test_a_new_connection_closed_without_answer_is_not_retried():
    async def hangs_up(server: RawServer, reader, writer) -> None:
        await server.request(reader)

    async with RawServer(hangs_up) as server:
        up = provider(server.url)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match="server disconnected"):
                await client.post(up, call(server.url))
        assert server.connections == 1


async def test_a_connection_that_failed_mid_answer_is_not_retried():
    async def half_head(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(answer())
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-")

    async with RawServer(half_head) as server:
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
            with pytest.raises(UpstreamError, match="server disconnected"):
                await client.post(up, call(server.url))
        assert server.connections == 1


async def test_an_idle_connection_the_server_closed_is_dropped():
    async def one_answer(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(answer())  # keep-alive in the headers, but the server closes anyway

    async with RawServer(one_answer) as server:
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
            (pool,) = client.pools(up)
            await eventually(lambda: pool.open_connections == 0, "the closed connection dropped")
            await post_read(client, up, server.url)
        assert server.connections == 2 and len(server.heads) == 2


async def test_idle_connections_close_after_the_keep_alive_timeout(monkeypatch):
    monkeypatch.setattr(http1_pool, "KEEPALIVE", 0.2)

    async def answer_then_wait(server: RawServer, reader, writer) -> None:
        await keep_answering(server, reader, writer)
        server.eof.set()

    async with RawServer(answer_then_wait) as server:
        up = provider(server.url)
        async with transport(up) as client:
            await post_read(client, up, server.url)
            await asyncio.wait_for(server.eof.wait(), 5)
            (pool,) = client.pools(up)
            assert pool.open_connections == 0
            await post_read(client, up, server.url)
        assert server.connections == 2


@pytest.mark.parametrize(
    "ending",
    [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_connection_close_and_http_1_0_answers_are_not_reused(ending):
    async def closing(server: RawServer, reader, writer) -> None:
        while await server.request(reader) is not None:
            writer.write(ending)

    async with RawServer(closing) as server:
        up = provider(server.url)
        async with transport(up) as client:
            for _ in range(3):
                assert await post_read(client, up, server.url) == b"ok"
        assert server.connections == 3


async def test_a_body_left_unread_is_not_reused():
    async def slow_body(server: RawServer, reader, writer) -> None:
        while await server.request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello")
            await asyncio.sleep(0.2)
            writer.write(b"world")

    async with RawServer(slow_body) as server:
        up = provider(server.url)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            response.close()
            assert await post_read(client, up, server.url) == b"helloworld"
        assert server.connections == 2


# -- failures and timeouts ------------------------------------------------------------------


async def test_headers_that_never_come_time_out_and_the_server_sees_the_disconnect():
    async def silent(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        await server.until_eof(reader)

    async with RawServer(silent) as server:
        up = provider(server.url, first_byte=0.3)
        async with transport(up) as client:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout, match="provider up: timed out"):
                await client.post(up, call(server.url))
            assert time.monotonic() - started < 3
            await asyncio.wait_for(server.eof.wait(), 5)


async def test_cancelling_a_call_waiting_for_headers_drops_its_connection():
    async def silent(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        await server.until_eof(reader)

    async with RawServer(silent) as server:
        up = provider(server.url)
        async with transport(up) as client:
            task = asyncio.create_task(client.post(up, call(server.url)))
            await eventually(lambda: len(server.heads) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(server.eof.wait(), 5)
            (pool,) = client.pools(up)
            await eventually(lambda: pool.open_connections == 0)


async def test_connection_refused_is_an_upstream_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1/chat/completions"
    up = provider(url)
    async with transport(up) as client:
        with pytest.raises(UpstreamError, match=r"connection failed \(.*refused"):
            await client.post(up, call(url))
        (pool,) = client.pools(up)
        assert pool.open_connections == 0


async def test_an_unknown_host_is_a_dns_failure():
    url = "http://llm.tiergate-test.invalid/v1/chat/completions"
    up = provider(url)
    async with transport(up) as client:
        with pytest.raises(UpstreamError, match="DNS lookup failed"):
            await client.post(up, call(url))


async def test_connect_timeout():
    # A listening socket whose accept queue is full never completes a handshake.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(listener.getsockname())
                fillers.append(filler)
            up = provider(url, connect=0.3)
            async with transport(up) as client:
                started = time.monotonic()
                with pytest.raises(UpstreamTimeout, match="timed out"):
                    await client.post(up, call(url))
                assert time.monotonic() - started < 3
        finally:
            for filler in fillers:
                filler.close()


async def test_addresses_are_looked_up_once_and_cached(monkeypatch):
    loop = asyncio.get_running_loop()
    lookups = []
    real = loop.getaddrinfo

    async def counting(host, port, **kwargs):
        if not host[0].isdigit():  # (uvloop's sock_connect goes through here with the IP)
            lookups.append(host)
        return await real(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)

    async def closing(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(answer(extra=b"connection: close\r\n"))

    async with RawServer(closing) as server:
        url = f"http://localhost:{server.port}/v1/chat/completions"
        up = provider(url)
        async with transport(up) as client:
            for _ in range(3):  # a new connection each time, one lookup in all
                await post_read(client, up, url)
        assert server.connections == 3
    assert lookups == ["localhost"]


# -- the request on the wire ----------------------------------------------------------------


async def test_the_request_on_the_wire():
    async with RawServer(keep_answering) as server:
        url = server.url + "?alt=sse&key=1"
        up = provider(url.split("?")[0], headers=(("x-org", "acme"),))
        async with transport(up) as client:
            response = await client.post(up, call(url, b'{"a":1}', authorization="Bearer k"))
            await response.read()
        (head,) = server.heads
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /v1/chat/completions?alt=sse&key=1 HTTP/1.1"
        fields = dict(line.split(": ", 1) for line in lines[1:] if line)
        assert fields["host"] == f"127.0.0.1:{server.port}"
        assert fields["content-length"] == "7"
        assert fields["user-agent"] == "tiergate"
        assert fields["accept-encoding"] == "gzip, deflate"
        assert fields["authorization"] == "Bearer k"
        assert fields["content-type"] == "application/json"
        assert server.bodies == [b'{"a":1}']


async def test_a_header_with_a_line_break_is_refused_before_sending():
    async with RawServer(keep_answering) as server:
        up = provider(server.url)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match="line break"):
                await client.post(up, call(server.url, x_bad="a\r\nx-injected: 1"))
        assert server.heads == []


async def test_response_headers_are_case_insensitive():
    async def retry_later(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(
            answer(b"slow down", status="429 Too Many Requests", extra=b"Retry-After: 7\r\n")
        )

    async with RawServer(retry_later) as server:
        up = provider(server.url)
        async with transport(up) as client:
            async with await client.post(up, call(server.url)) as response:
                assert response.status == 429
                assert response.headers.get("retry-after") == "7"
                assert response.headers["RETRY-AFTER"] == "7"
                assert "Content-Length" in response.headers
                assert response.headers.get("x-missing") is None
                assert await response.read_error_body() == b"slow down"


async def test_an_interim_100_continue_is_skipped():
    async def continues(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n" + answer())

    async with RawServer(continues) as server:
        up = provider(server.url)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            assert response.status == 200 and "x-interim" not in response.headers
            assert await response.read() == b'{"ok":true}'


# -- TLS ------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.asynccontextmanager
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[RawServer, Path]]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RawServer(keep_answering)
    server._server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=context)
    server.port = server._server.sockets[0].getsockname()[1]
    try:
        yield server, cert
    finally:
        await server.__aexit__()


async def test_https_verifies_the_certificate_by_default(tmp_path):
    async with tls_server(tmp_path) as (server, _):
        url = f"https://localhost:{server.port}/v1/chat/completions"
        up = provider(url)
        async with transport(up) as client:
            with pytest.raises(UpstreamError, match=r"connection failed.*(?i:certificate)"):
                await client.post(up, call(url))


async def test_https_to_a_trusted_server(tmp_path, monkeypatch):
    async with tls_server(tmp_path) as (server, cert):
        trusting = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(Transport, "_tls_context", lambda self: trusting)
        url = f"https://localhost:{server.port}/v1/chat/completions"
        up = provider(url)
        async with transport(up) as client:
            for _ in range(3):
                assert await post_read(client, up, url) == b'{"ok":true}'
        assert server.connections == 1
        assert f"host: localhost:{server.port}".encode() in server.heads[0]


async def test_close_drops_every_connection():
    async def streams(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await server.until_eof(reader)

    async with RawServer(streams) as server:
        up = provider(server.url)
        client = Transport([up])
        await client.start()
        response = await client.post(up, call(server.url))
        assert response.status == 200
        await client.close()
        await asyncio.wait_for(server.eof.wait(), 5)


async def test_reused_connection_answers_match_their_requests():
    async with FakeUpstream() as fake:
        url = fake.base_url("openai") + "/chat/completions"
        up = provider(url, max_connections=3)

        async def ask(text: str) -> str:
            fake.enqueue(Reply(text))
            body = orjson.dumps(
                {"model": "mock-model", "messages": [{"role": "user", "content": text}]}
            )
            response = await client.post(up, call(url, body))
            return orjson.loads(await response.read())["choices"][0]["message"]["content"]

        async with transport(up) as client:
            for round_ in range(3):
                texts = [f"r{round_}-{i}" for i in range(3)]
                answers = await asyncio.gather(*(ask(t) for t in texts))
                assert sorted(answers) == sorted(texts)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_literal_address():
    server = RawServer(keep_answering)
    server._server = await asyncio.start_server(server._serve, "::1", 0)
    server.port = server._server.sockets[0].getsockname()[1]
    try:
        url = f"http://[::1]:{server.port}/v1/chat/completions"
        up = provider(url)
        async with transport(up) as client:
            assert await post_read(client, up, url) == b'{"ok":true}'
        assert f"host: [::1]:{server.port}".encode() in server.heads[0]
    finally:
        await server.__aexit__()


async def test_a_response_dropped_without_close_gives_its_connection_back():
    async def silent_body(server: RawServer, reader, writer) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
        await server.until_eof(reader)

    async with RawServer(silent_body) as server:
        up = provider(server.url, max_connections=1)
        async with transport(up) as client:
            response = await client.post(up, call(server.url))
            del response
            await asyncio.wait_for(server.eof.wait(), 5)
            (pool,) = client.pools(up)
            await eventually(lambda: pool.open_connections == 0, "the slot given back")
