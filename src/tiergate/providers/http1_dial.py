"""Opening a TCP connection to a name with several addresses: Happy Eyeballs (RFC 8305).

Tried one after another, a first address that never answers (a broken IPv6 route, a host
that drops SYNs) would eat the whole connect timeout. Instead the families alternate and a
new attempt starts every 250 ms while the earlier ones are still pending; the first to
connect wins and the others are cancelled, closing their sockets.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import socket
from asyncio.staggered import staggered_race
from collections.abc import Sequence
from typing import Any

Address = tuple[int, Any]  # (family, sockaddr), as getaddrinfo gives them

ATTEMPT_DELAY = 0.25  # RFC 8305's recommended Connection Attempt Delay


def interleave(addresses: Sequence[Address]) -> list[Address]:
    """RFC 8305 section 4: the first address's family first, then the families alternate."""
    by_family: dict[int, list[Address]] = {}
    for address in addresses:
        by_family.setdefault(address[0], []).append(address)
    if len(by_family) < 2:
        return list(addresses)
    rounds = itertools.zip_longest(*by_family.values())
    return [address for round_ in rounds for address in round_ if address is not None]


async def dial(
    loop: asyncio.AbstractEventLoop, addresses: Sequence[Address], delay: float = ATTEMPT_DELAY
) -> socket.socket:
    """A connected, non-blocking TCP socket to the first of `addresses` that answers.

    When every address fails, raises the first address's error (the one the resolver
    ranked best, so usually the most telling). The caller bounds the time it may take.
    """
    ordered = interleave(addresses)
    if len(ordered) == 1:  # the common case needs no tasks
        return await _attempt(loop, ordered[0])
    # asyncio's own create_connection races the same way (and works on uvloop too).
    attempts = [functools.partial(_attempt, loop, address) for address in ordered]
    sock, winner, errors = await staggered_race(attempts, delay, loop=loop)
    if winner is not None:
        return sock
    if errors and errors[0] is not None:
        raise errors[0]
    raise OSError("no address to connect to")


async def _attempt(loop: asyncio.AbstractEventLoop, address: Address) -> socket.socket:
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, sockaddr)
    except BaseException:  # a loser cancelled by the winner closes its socket here too
        sock.close()
        raise
    return sock
