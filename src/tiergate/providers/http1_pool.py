"""Keep-alive connections to one origin: at most `limit` open, idle ones reused newest first,
callers beyond the limit served first come, first served.

A slot (one of the `limit`) belongs to whoever holds the connection: the pool while it is
idle, the request while it is in use. Every path that ends a request either hands the
connection back (`release`) or gives up its slot (`release` of a spent connection, or
`_free` on the way out of `request`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections import deque

from tiergate.providers.http1 import Connection, ConnectionClosed, HTTPError
from tiergate.providers.http1_dial import Address, dial
from tiergate.providers.http1_proxy import Proxy, open_tunnel

KEEPALIVE = 15.0  # close connections idle this long (servers commonly allow 60-75 s)
DNS_TTL = 300.0


class PoolClosed(HTTPError):
    """The transport was closed while the call waited for a connection."""


class Pool:
    """Connections to one scheme://host:port on behalf of one provider, directly or each
    through its own tunnel of an HTTP proxy."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        limit: int,
        connect_timeout: float,
        proxy: Proxy | None = None,
    ) -> None:
        self._loop = loop
        self._host = host
        self._port = port
        self._tls = tls
        self.proxy = proxy
        # Through a proxy we connect to the proxy and look up its name; it looks up ours.
        self._dial_host, self._dial_port = (proxy.host, proxy.port) if proxy else (host, port)
        self._limit = max(limit, 1)
        self._connect_timeout = connect_timeout
        self._count = 0  # open or opening connections, idle or not
        self._idle: list[Connection] = []  # oldest first; reuse pops the newest
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._every: set[Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._addresses: list[Address] = []
        self._addresses_until = 0.0
        self._resolving: asyncio.Task[list[Address]] | None = None
        self._closed = False
        self._literal = False
        try:
            ip = ipaddress.ip_address(self._dial_host)
        except ValueError:
            pass
        else:  # a literal address needs no lookup, ever
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            self._addresses = [(family, (self._dial_host, self._dial_port))]
            self._addresses_until = float("inf")
            self._literal = True

    @property
    def open_connections(self) -> int:
        return self._count

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def request(self, data: bytes, deadline: float) -> Connection:
        """Send `data` on a pooled connection; return it once response headers are in.

        A reused connection that the server closed before answering a byte (it closed the
        idle connection as we sent) is retried once on a new connection; nothing else is.
        """
        idle = self._idle
        if idle:
            conn = idle.pop()
            conn.idle = False
        else:
            conn = await self._acquire(deadline)
        try:
            reused = conn.requests > 0
            await conn.send(data, deadline)
            error = conn.error
            if error is None:
                return conn
            if reused and isinstance(error, ConnectionClosed) and error.before_response:
                conn.abort()
                conn = await self._connect(deadline)
                await conn.send(data, deadline)
                error = conn.error
                if error is None:
                    return conn
            raise error
        except BaseException:
            conn.abort()
            self._free()
            raise

    def release(self, conn: Connection) -> None:
        """Take back a connection whose response is over: keep it or give up its slot."""
        if conn.complete and conn.keep_alive and not conn.closed and not self._closed:
            conn.recycle()
            self._keep(conn)
            return
        conn.abort()
        self._free()

    def close(self) -> None:
        """Drop every connection and fail every waiter."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._resolving is not None:
            self._resolving.cancel()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("transport closed"))
        for conn in self._idle:
            conn.idle = False
        self._idle.clear()
        for conn in list(self._every):
            conn.abort()

    # -- slots and waiters ----------------------------------------------------------------

    async def _acquire(self, deadline: float) -> Connection:
        if self._closed:
            raise PoolClosed("transport closed")
        if self._count < self._limit:
            self._count += 1
            return await self._connect_in_slot(deadline)
        waiter: asyncio.Future[Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        timer = self._loop.call_at(deadline, _expire, waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection or a slot in the same instant we gave up: pass it on.
                handed = waiter.result()
                if handed is None:
                    self._free()
                else:
                    self._keep(handed)
            raise
        finally:
            timer.cancel()
        if conn is not None:
            return conn
        return await self._connect_in_slot(deadline)  # a slot was handed over

    async def _connect_in_slot(self, deadline: float) -> Connection:
        try:
            return await self._connect(deadline)
        except BaseException:
            self._free()
            raise

    def _hand_over(self, value: Connection | None) -> bool:
        """Give `value` (a connection, or None for a free slot) to the first caller still
        waiting; False when nobody waits."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(value)
                return True
        return False

    def _free(self) -> None:
        """Give up one slot: to the first caller still waiting, else back to the pool."""
        if not self._hand_over(None):
            self._count -= 1

    def _keep(self, conn: Connection) -> None:
        if self._hand_over(conn):
            return
        now = self._loop.time()
        conn.idle = True
        conn.idle_since = now
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self._loop.call_at(now + KEEPALIVE, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        idle = self._idle
        cutoff = self._loop.time() - KEEPALIVE
        stale = 0
        while stale < len(idle) and idle[stale].idle_since <= cutoff:
            stale += 1
        expired = idle[:stale]
        del idle[:stale]
        for conn in expired:
            conn.idle = False
            conn.shutdown()
            self._free()
        if idle:
            self._sweeper = self._loop.call_at(idle[0].idle_since + KEEPALIVE, self._sweep)

    def _lost(self, conn: Connection) -> None:
        """connection_lost: an idle connection the server closed is dropped from the pool."""
        self._every.discard(conn)
        if conn.idle:
            conn.idle = False
            self._idle.remove(conn)
            self._free()

    # -- opening connections --------------------------------------------------------------

    async def _connect(self, deadline: float) -> Connection:
        """A new connection (the caller owns a slot for it). Raises OSError, socket.gaierror,
        TimeoutError or ProxyError, bounded by the connect timeout and `deadline`."""
        loop = self._loop
        conn = Connection(loop, self._lost)
        async with asyncio.timeout_at(min(deadline, loop.time() + self._connect_timeout)):
            addresses = await self._resolve()
            try:
                sock = await dial(loop, addresses)
            except OSError:
                if not self._literal:
                    self._addresses_until = 0.0  # the name may point elsewhere now: look again
                raise
            try:
                if self.proxy is not None:
                    await open_tunnel(loop, sock, self.proxy, self._host, self._port)
                await loop.create_connection(
                    lambda: conn,
                    sock=sock,
                    ssl=self._tls,
                    server_hostname=self._host if self._tls is not None else None,
                )
            except BaseException:
                sock.close()
                raise
        if self._closed:
            conn.abort()
            raise PoolClosed("transport closed")
        self._every.add(conn)
        return conn

    async def _resolve(self) -> list[Address]:
        if self._loop.time() < self._addresses_until:
            return self._addresses
        # One lookup (in a thread, by the loop) for every caller that needs it now.
        if self._resolving is None or self._resolving.done():
            self._resolving = self._loop.create_task(self._lookup())
            # Every caller may have timed out by the time it fails: nobody else would look.
            self._resolving.add_done_callback(_consume)
        return await asyncio.shield(self._resolving)

    async def _lookup(self) -> list[Address]:
        infos = await self._loop.getaddrinfo(
            self._dial_host, self._dial_port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM
        )
        addresses: list[Address] = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        self._addresses = addresses
        self._addresses_until = self._loop.time() + DNS_TTL
        return addresses


def _expire(waiter: asyncio.Future[Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _consume(task: asyncio.Task[list[Address]]) -> None:
    if not task.cancelled():
        task.exception()
