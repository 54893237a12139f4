"""Happy Eyeballs (RFC 8305) when a provider's or a proxy's name has several addresses: a
first address that never answers must not eat the connect timeout.

A blackhole is made locally: a listening socket with a backlog of 0 whose one slot is
taken drops further SYNs, so a connect to it neither succeeds nor fails. Names are
resolved by a fake resolver on the loop; the sockets, servers and proxy are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import uvloop

from tests.providers.connect_proxy import ConnectProxy
from tests.providers.test_transport import (
    RawServer,
    _has_ipv6_loopback,
    call,
    keep_answering,
    post_read,
    provider,
    tls_server,
    transport,
)
from tiergate.errors import UpstreamError, UpstreamTimeout
from tiergate.providers.http1_dial import interleave
from tiergate.providers.transport import Transport

V4, V6 = socket.AF_INET, socket.AF_INET6
# A broken IPv6 route is the classic case; without IPv6 loopback, a second IPv4 address.
DEAD_FAMILY, DEAD_HOST = (V6, "::1") if _has_ipv6_loopback() else (V4, "127.0.0.1")


@contextlib.contextmanager
def blackhole(family: int = DEAD_FAMILY, host: str = DEAD_HOST) -> Iterator[Any]:
    """The sockaddr of a listener that never completes a TCP handshake."""
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(0)
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket(family)
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(listener.getsockname())
                fillers.append(filler)
            yield listener.getsockname()
        finally:
            for filler in fillers:
                filler.close()


def resolve(monkeypatch: pytest.MonkeyPatch, name: str, *addresses: tuple[int, Any]) -> None:
    """Make the running loop resolve `name` to `addresses` ((family, sockaddr), in order)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, **kwargs: Any) -> list[Any]:
        if host == name:
            return [(family, socket.SOCK_STREAM, 6, "", addr) for family, addr in addresses]
        return await real(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (the directory's own descriptor is gone)
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_address_families_alternate_first_family_first():
    a6, b6, c6 = (V6, ("::a", 1)), (V6, ("::b", 1)), (V6, ("::c", 1))
    a4, b4 = (V4, ("10.0.0.1", 1)), (V4, ("10.0.0.2", 1))
    assert interleave([a6, b6, c6, a4, b4]) == [a6, a4, b6, b4, c6]
    assert interleave([a4, a6, b6, c6]) == [a4, a6, b6, c6]
    assert interleave([a4, b4]) == [a4, b4]
    assert interleave([b6, a4, a6]) == [b6, a4, a6]


async def test_a_blackholed_first_address_does_not_eat_the_connect_timeout(monkeypatch):
    async with RawServer(keep_answering) as server:
        with blackhole() as dead:
            resolve(monkeypatch, "llm.test", (DEAD_FAMILY, dead), (V4, ("127.0.0.1", server.port)))
            url = f"http://llm.test:{server.port}/v1/chat/completions"
            up = provider(url, connect=10)
            before = open_sockets()
            async with transport(up) as client:
                started = time.monotonic()
                assert await post_read(client, up, url) == b'{"ok":true}'
                assert time.monotonic() - started < 5  # one attempt delay (0.25 s), not 10 s
                await asyncio.sleep(0)
                # Ours and the server's end of the winner; the blackholed attempt is closed.
                assert open_sockets() == before + 2
        assert server.connections == 1


@pytest.mark.parametrize("unreachable_first", [True, False])
async def test_when_every_address_fails_the_first_error_is_raised(monkeypatch, unreachable_first):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = (V4, s.getsockname())
    unreachable = (V4, ("224.0.0.1", 80))  # TCP to a multicast group: ENETUNREACH, at once
    order = [unreachable, refused] if unreachable_first else [refused, unreachable]
    resolve(monkeypatch, "llm.test", *order)
    url = "http://llm.test/v1/chat/completions"
    up = provider(url, connect=10)
    expected = "unreachable" if unreachable_first else "refused"
    async with transport(up) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamError, match=rf"connection failed \(.*{expected}"):
            await client.post(up, call(url))
        assert time.monotonic() - started < 5  # a failure starts the next attempt at once
        (pool,) = client.pools(up)
        assert pool.open_connections == 0


async def test_a_pending_address_is_waited_for_until_the_connect_timeout(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = s.getsockname()
    with blackhole() as dead:
        resolve(monkeypatch, "llm.test", (DEAD_FAMILY, dead), (V4, refused))
        url = "http://llm.test/v1/chat/completions"
        up = provider(url, connect=0.6)
        async with transport(up) as client:
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout, match="timed out"):
                await client.post(up, call(url))
            assert time.monotonic() - started < 5


async def test_the_proxy_is_reached_by_happy_eyeballs_too(monkeypatch):
    async with ConnectProxy() as proxy, RawServer(keep_answering) as server:
        with blackhole() as dead:
            resolve(monkeypatch, "proxy.test", (DEAD_FAMILY, dead), (V4, ("127.0.0.1", proxy.port)))
            up = replace(provider(server.url, connect=10), proxy=f"http://proxy.test:{proxy.port}")
            async with transport(up) as client:
                started = time.monotonic()
                assert await post_read(client, up, server.url) == b'{"ok":true}'
                assert time.monotonic() - started < 5
        assert proxy.tunnels == 1


def test_on_uvloop_a_tls_tunnel_through_a_proxy_behind_a_blackhole(monkeypatch, tmp_path):
    """The gateway runs on uvloop: its sock_connect, sock_sendall and sock_recv, the race
    and TLS over a socket handed to create_connection, all at once."""

    async def scenario() -> None:
        async with ConnectProxy() as proxy, tls_server(tmp_path) as (server, cert):
            trusting = ssl.create_default_context(cafile=str(cert))
            monkeypatch.setattr(Transport, "_tls_context", lambda self: trusting)
            with blackhole() as dead:
                resolve(
                    monkeypatch, "proxy.test", (DEAD_FAMILY, dead), (V4, ("127.0.0.1", proxy.port))
                )
                url = f"https://localhost:{server.port}/v1/chat/completions"
                up = replace(provider(url, connect=10), proxy=f"http://proxy.test:{proxy.port}")
                async with transport(up) as client:
                    started = time.monotonic()
                    for _ in range(2):
                        assert await post_read(client, up, url) == b'{"ok":true}'
                    assert time.monotonic() - started < 5
            assert proxy.tunnels == 1 and server.connections == 1

    uvloop.run(scenario())
