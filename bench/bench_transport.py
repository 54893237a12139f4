"""CPU per upstream call: tiergate's own HTTP/1.1 client (`providers/transport.py`) against
aiohttp used the way transport.py used it before (pooled session, first-byte timeout,
`iter_any` read; for streams `readany` under `asyncio.timeout_at`, every received byte
parsed before the first event is handed on). Both on uvloop, against nginx
(bench/nginx.conf) on the other core.

Run: .venv/bin/python bench/bench_transport.py [--calls 20000] [--concurrency 64]
Prints microseconds of this process's CPU (time.process_time) per call, and for the
1,000-event SSE burst CPU per stream and the wall time from its headers to its first event.
No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import chat_json, sse_stream
from procs import Nginx

from tiergate.fleet import Provider
from tiergate.providers.base import SSEEvent, UpstreamCall
from tiergate.providers.sse import SSEParser
from tiergate.providers.transport import Transport

BODY = (
    b'{"model":"mock-model","messages":[{"role":"user","content":"Summarise this in one '
    b'sentence: the quick brown fox jumps over the lazy dog."}],"max_tokens":64}'
)
HEADERS = {"content-type": "application/json", "authorization": "Bearer upstream-secret"}


class Client:
    """One way of calling the upstream: `complete` reads a whole answer, `events` a stream."""

    name = ""
    headers_at = 0.0  # perf_counter() when the last stream's response headers were in

    async def start(self, provider: Provider) -> None: ...

    async def close(self) -> None: ...

    async def complete(self, url: str) -> bytes:
        raise NotImplementedError

    async def stream(self, url: str) -> tuple[AsyncIterator[SSEEvent], Callable[[], None]]:
        """The events of one streamed answer, and how to close it afterwards."""
        raise NotImplementedError


class Tiergate(Client):
    name = "tiergate http1"

    async def start(self, provider: Provider) -> None:
        self.provider = provider
        self.transport = Transport([provider])
        await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()

    async def complete(self, url: str) -> bytes:
        response = await self.transport.post(self.provider, UpstreamCall(url, HEADERS, BODY))
        return await response.read()

    async def stream(self, url: str) -> tuple[AsyncIterator[SSEEvent], Callable[[], None]]:
        response = await self.transport.post(self.provider, UpstreamCall(url, HEADERS, BODY))
        self.headers_at = time.perf_counter()
        return response.events(), response.close


class Aiohttp(Client):
    """The replaced client, configured and driven as transport.py did at 8d65e85."""

    name = "aiohttp"

    async def start(self, provider: Provider) -> None:
        self.provider = provider
        connector = aiohttp.TCPConnector(
            limit=provider.max_connections,
            limit_per_host=provider.max_connections,
            ttl_dns_cache=300,
            family=socket.AF_UNSPEC,
            enable_cleanup_closed=False,
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=provider.timeouts.connect,
            sock_read=provider.timeouts.inactivity,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            headers={"user-agent": "tiergate"},
        )

    async def close(self) -> None:
        await self.session.close()

    async def _post(self, url: str) -> aiohttp.ClientResponse:
        async with asyncio.timeout(self.provider.timeouts.first_byte):
            return await self.session.post(url, data=BODY, headers=HEADERS)

    async def complete(self, url: str) -> bytes:
        response = await self._post(url)
        parts: list[bytes] = []
        try:
            async for data in response.content.iter_any():
                parts.append(data)
        finally:
            response.release()
        return b"".join(parts)

    async def stream(self, url: str) -> tuple[AsyncIterator[SSEEvent], Callable[[], None]]:
        response = await self._post(url)
        self.headers_at = time.perf_counter()
        return self._events(response), response.close

    async def _events(self, response: aiohttp.ClientResponse) -> AsyncIterator[SSEEvent]:
        parser = SSEParser()
        loop = asyncio.get_running_loop()
        while True:
            async with asyncio.timeout_at(loop.time() + self.provider.timeouts.inactivity):
                data = await response.content.readany()
            if not data:
                break
            for event in parser.feed(data):  # everything received, parsed up front
                yield event


class _Bare(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Floor(Client):
    """Not a client: write the request, wake on the first bytes back, parse nothing. What a
    call costs this process in the kernel and the event loop whatever the client does."""

    name = "floor (bare)"

    async def start(self, provider: Provider) -> None:
        self.address = provider.base_url.split("//")[1].split("/")[0].split(":")
        self.idle: list[_Bare] = []
        self.request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"
            % (len(BODY), BODY)
        )

    async def close(self) -> None:
        for bare in self.idle:
            bare.transport.close()

    async def complete(self, url: str) -> bytes:
        loop = asyncio.get_running_loop()
        if self.idle:
            bare = self.idle.pop()
        else:
            host, port = self.address
            _, bare = await loop.create_connection(_Bare, host, int(port))
        bare.waiter = loop.create_future()
        bare.transport.write(self.request)
        await bare.waiter
        self.idle.append(bare)
        return b'{"id":"chatcmpl-bench"'


async def _timed(calls: int, concurrency: int, one: Callable[[], Awaitable[object]]) -> float:
    """CPU microseconds per call over `calls` calls, `concurrency` at a time."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    share = calls // concurrency
    await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm the pool
    started = time.process_time()
    await asyncio.gather(*(worker(share) for _ in range(concurrency)))
    return (time.process_time() - started) / (share * concurrency) * 1e6


async def _streams(client: Client, url: str, count: int) -> tuple[float, float, int]:
    """(CPU us per stream, median ms from headers to the first event, events per stream)."""
    firsts: list[float] = []
    events = 0
    for n in range(count + 5):  # five to warm up
        if n == 5:
            started = time.process_time()
        iterator, close = await client.stream(url)
        events = 0
        try:
            async for _ in iterator:
                if events == 0 and n >= 5:
                    firsts.append((time.perf_counter() - client.headers_at) * 1000)
                events += 1
        finally:
            close()
    cpu = (time.process_time() - started) / count * 1e6
    return cpu, statistics.median(firsts), events


async def _measure(client: Client, base: str, args: argparse.Namespace) -> dict[str, float]:
    provider = Provider("upstream", "openai", f"{base}/v1", max_connections=256)
    await client.start(provider)
    try:
        url = f"{base}/v1/chat/completions"
        answer = await client.complete(url)
        assert answer.startswith(b'{"id":"chatcmpl-bench"'), answer[:80]
        sequential = await _timed(args.calls // 4, 1, lambda: client.complete(url))
        concurrent = await _timed(args.calls, args.concurrency, lambda: client.complete(url))
        stream_cpu, first_ms, events = float("nan"), float("nan"), 0
        if not isinstance(client, Floor):
            stream_cpu, first_ms, events = await _streams(
                client, f"{base}/sse1000/v1/chat/completions", args.streams
            )
    finally:
        await client.close()
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "stream_cpu": stream_cpu,
        "first_ms": first_ms,
        "events": events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args()
    two_cores = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    with tempfile.TemporaryDirectory(prefix="tiergate-bench-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)  # nginx workers run as an unprivileged user
        files = root / "files"
        files.mkdir()
        (files / "stream-short.sse").write_bytes(sse_stream(20))
        (files / "stream-1000.sse").write_bytes(sse_stream(1000))
        nginx = Nginx(root, chat_json(), "0" if two_cores else None)
        if two_cores:
            os.sched_setaffinity(0, {1})
        try:
            results: dict[str, list[dict[str, float]]] = {}
            for _ in range(args.rounds):
                for client in (Floor(), Aiohttp(), Tiergate()):
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        figures = runner.run(_measure(client, nginx.url(), args))
                    results.setdefault(client.name, []).append(figures)
        finally:
            nginx.stop()
    print(f"CPU of this process, us per call (best of {args.rounds}; nginx on another core)")
    print(
        f"{'client':16} {'sequential':>11} {f'{args.concurrency} at once':>11} "
        f"{'1000-event stream':>18} {'to 1st event':>12}"
    )
    for name, rounds in results.items():

        def best(key: str, rounds: list[dict[str, float]] = rounds) -> float:
            return min(r[key] for r in rounds)

        stream = "-" if math.isnan(best("stream_cpu")) else f"{best('stream_cpu') / 1000:.2f} ms"
        first = "-" if math.isnan(best("first_ms")) else f"{best('first_ms'):.2f} ms"
        print(
            f"{name:16} {best('sequential'):9.1f}us {best('concurrent'):9.1f}us "
            f"{stream:>18} {first:>12}"
        )
    print("floor: a bare protocol that parses nothing (kernel + event loop, any client pays it)")


if __name__ == "__main__":
    main()
