"""Thin pooled HTTP I/O to providers: one keep-alive pool per provider, created at startup.
Network failures are mapped to tiergate errors here, in one place.

The client is our own lean HTTP/1.1 (`http1`, `http1_pool`): an upstream call costs a few
tens of microseconds of CPU, where a general-purpose client costs several hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from urllib.request import getproxies_environment

from tiergate.errors import UpstreamError, UpstreamTimeout
from tiergate.fleet import Provider
from tiergate.providers.base import SSEEvent, UpstreamCall
from tiergate.providers.http1 import (
    Aborted,
    BodyCutOff,
    BodyDecoder,
    Connection,
    ConnectionClosed,
    Headers,
    HTTPError,
    InvalidRequest,
    ProtocolError,
)
from tiergate.providers.http1_client import Client
from tiergate.providers.http1_pool import Pool
from tiergate.providers.http1_proxy import ProxyError
from tiergate.providers.sse import SSEParser

_MAX_ERROR_BODY = 64 * 1024
# A broken or hostile upstream must not be able to fill memory: no real answer comes near.
MAX_BODY = 64 * 1024 * 1024
MAX_EVENT = 8 * 1024 * 1024
# How much one gzip'd stream chunk may expand at a time (the event limit applies on top).
_DECODE_STEP = 1024 * 1024

# Content-Encoding -> what BodyDecoder is given (None: the body is used as it is).
_ENCODINGS: dict[bytes, bytes | None] = {
    b"": None,
    b"identity": None,
    b"gzip": b"gzip",
    b"x-gzip": b"gzip",
    b"deflate": b"deflate",
}


def _map_error(exc: BaseException, provider: Provider, pool: Pool | None) -> UpstreamError:
    where = f"provider {provider.name}"
    if pool is not None and pool.proxy is not None:
        where = f"{where} via proxy {pool.proxy}"  # host:port, never the credentials
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{where}: timed out")
    if isinstance(exc, socket.gaierror):
        return UpstreamError(f"{where}: DNS lookup failed")
    if isinstance(exc, ConnectionClosed):
        return UpstreamError(f"{where}: server disconnected")
    if isinstance(exc, BodyCutOff):
        return UpstreamError(f"{where}: response body was cut off")
    if isinstance(exc, OSError):
        # asyncio words a refused connect "Connect call failed (address)": the errno says more.
        plain = exc.errno is not None and not isinstance(exc, ssl.SSLError)
        detail = os.strerror(exc.errno) if plain and exc.errno else exc.strerror or exc
        return UpstreamError(f"{where}: connection failed ({detail})")
    if isinstance(exc, ProxyError):
        error = UpstreamError(f"{where}: {exc}")
        # Other deployments may go elsewhere; this one would meet the same refusal.
        error.retryable = not exc.lasting
        return error
    if isinstance(exc, ProtocolError | InvalidRequest | Aborted):
        return UpstreamError(f"{where}: {exc}")
    return UpstreamError(f"{where}: {type(exc).__name__}")


class UpstreamResponse:
    """A response whose headers have arrived; the body is read or streamed from here."""

    __slots__ = (
        "_conn",
        "_deadline",
        "_decoder",
        "_head",
        "_headers",
        "_open",
        "_pool",
        "_provider",
        "status",
    )

    def __init__(
        self,
        conn: Connection,
        pool: Pool,
        provider: Provider,
        decoder: BodyDecoder | None,
        deadline: float | None = None,
    ):
        self._conn = conn
        self._deadline = deadline  # the whole call's (loop time), bounds `read()` too
        self._pool = pool
        self._provider = provider
        self._decoder = decoder
        self._open = True
        self.status = conn.status
        self._head = conn.head
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers:
        """Case-insensitive; adapters read `retry-after` and friends from here."""
        if self._headers is None:
            self._headers = Headers(self._head)
        return self._headers

    async def read(self) -> bytes:
        """The whole body (at most MAX_BODY bytes, decoded)."""
        conn = self._conn
        limit = MAX_BODY
        if conn.complete and self._decoder is None and self._open:
            # The common case: the whole answer came with the headers.
            body = b"".join(conn.chunks) if len(conn.chunks) != 1 else conn.chunks[0]
            if len(body) > limit:
                self.close()
                raise self._too_big(limit)
            self.close()
            return body
        parts: list[bytes] = []
        size = 0
        try:
            while True:
                piece = self._piece(limit - size + 1)
                if piece is None:
                    if self._at_end():
                        break
                    await self._wait()
                    continue
                size += len(piece)
                if size > limit:
                    raise self._too_big(limit)
                parts.append(piece)
        except BaseException as exc:
            self.close()
            if isinstance(exc, HTTPError | OSError | zlib.error):
                raise self._error(exc) from None
            raise
        self.close()
        return b"".join(parts)

    async def read_error_body(self) -> bytes:
        """Up to 64 KiB of an error answer's body; b"" if it cannot be had."""
        parts: list[bytes] = []
        size = 0
        try:
            while size < _MAX_ERROR_BODY:
                piece = self._piece(_MAX_ERROR_BODY - size)
                if piece is not None:
                    parts.append(piece)
                    size += len(piece)
                elif self._at_end():
                    break
                else:
                    await self._wait()
        except (HTTPError, OSError, zlib.error):
            return b""  # the status already tells the story; a broken error body adds nothing
        finally:
            self.close()
        return b"".join(parts)[:_MAX_ERROR_BODY]

    def events(self) -> AsyncIterator[SSEEvent]:
        """Server-sent events as they arrive.

        The inactivity timeout runs between *events*, not between reads: an upstream that
        drips keep-alive comments or single bytes would otherwise hold the request forever.
        The whole stream is also bounded by the provider's total timeout.
        """
        return _Events(self)

    def close(self) -> None:
        """Drop the connection: this is how an upstream call is cancelled. (A response that
        has wholly arrived leaves its connection to the pool instead.)"""
        if self._open:
            self._open = False
            self._pool.release(self._conn)

    def __del__(self) -> None:
        # Dropped without close() (a caller that gave up between post and reading): without
        # this the connection would hold one of the pool's slots for good.
        if self._open:
            self._open = False
            with contextlib.suppress(RuntimeError):  # the loop is gone: so is the pool
                self._pool.release(self._conn)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------

    def _piece(self, room: int) -> bytes | None:
        """Decoded body bytes available now (at most `room` from the decoder), or None."""
        if not self._open:
            raise Aborted("response already closed")
        decoder = self._decoder
        if decoder is not None and decoder.backlog:
            return decoder.decode(b"", room)
        chunk = self._conn.take()
        if chunk is None or decoder is None:
            return chunk
        return decoder.decode(chunk, room)

    def _at_end(self) -> bool:
        """True at the end of the body; raises the connection's error if it failed."""
        conn = self._conn
        if conn.error is not None:
            raise conn.error
        return conn.complete and not conn.chunks and not (self._decoder and self._decoder.backlog)

    async def _wait(self) -> None:
        conn = self._conn
        until = conn.loop.time() + self._provider.timeouts.inactivity
        deadline = self._deadline
        if deadline is not None and deadline < until:
            until = deadline
        await conn.wait(until)

    def _error(self, exc: BaseException) -> UpstreamError:
        if isinstance(exc, zlib.error):
            encoding = self._conn.encoding.decode("latin-1")
            return UpstreamError(f"provider {self._provider.name}: body is not valid {encoding}")
        return _map_error(exc, self._provider, self._pool)

    def _too_big(self, limit: int) -> UpstreamError:
        return UpstreamError(f"provider {self._provider.name}: response over {limit} bytes")


class _Events:
    """The async iterator behind `UpstreamResponse.events` (a class, not an async generator,
    so that a stream left unfinished needs no finalizer task)."""

    __slots__ = ("_end", "_fresh", "_loop", "_parser", "_quiet_until", "_response", "_tail")

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response
        self._parser = SSEParser()
        self._loop = response._conn.loop
        timeouts = response._provider.timeouts
        now = self._loop.time()
        self._end = now + timeouts.total
        self._quiet_until = min(now + timeouts.inactivity, self._end)
        self._fresh = False  # an event was handed out since the last wait
        self._tail: list[SSEEvent] | None = None

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> SSEEvent:
        parser = self._parser
        response = self._response
        while True:
            event = parser.next()
            if event is not None:
                self._fresh = True
                return event
            if self._tail is not None:
                if self._tail:
                    return self._tail.pop(0)
                raise StopAsyncIteration
            try:
                if parser.pending > MAX_EVENT:
                    response.close()
                    raise UpstreamError(
                        f"provider {response._provider.name}: a stream event ran over "
                        f"{MAX_EVENT} bytes"
                    )
                piece = response._piece(_DECODE_STEP)
                if piece is not None:
                    parser.push(piece)
                    continue
                if response._at_end():
                    response.close()
                    self._tail = parser.close()
                    continue
                await self._wait()
            except (HTTPError, OSError, zlib.error) as exc:
                response.close()
                raise response._error(exc) from None
            except BaseException:
                response.close()
                raise

    async def _wait(self) -> None:
        now = self._loop.time()
        if self._fresh:
            self._fresh = False
            self._quiet_until = min(now + self._response._provider.timeouts.inactivity, self._end)
        if now < self._end:
            try:
                await self._response._conn.wait(self._quiet_until)
                return
            except TimeoutError:
                pass
        where = f"provider {self._response._provider.name}"
        if self._quiet_until >= self._end or now >= self._end:
            raise UpstreamTimeout(f"{where}: stream passed the total timeout")
        inactivity = self._response._provider.timeouts.inactivity
        raise UpstreamTimeout(f"{where}: no stream event for {inactivity:g}s")


class Transport:
    """Pooled connections for every provider; `post` returns once response headers arrive."""

    def __init__(self, providers: Iterable[Provider]):
        self._providers = list(providers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tls: ssl.SSLContext | None = None
        self._clients: dict[str, Client] = {}

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        environment = getproxies_environment()  # HTTPS_PROXY and friends, read once
        for provider in self._providers:
            self._clients[provider.name] = Client(
                loop,
                limit=provider.max_connections,
                connect_timeout=provider.timeouts.connect,
                configured=provider.headers,
                tls=self._tls_context,
                proxy=provider.proxy,
                environment=environment,
            )

    async def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        await asyncio.sleep(0)  # let the aborted connections finish closing

    async def post(
        self, provider: Provider, call: UpstreamCall, deadline: float | None = None
    ) -> UpstreamResponse:
        """Send the request; return when headers arrive (within the first-byte timeout).

        `deadline` (loop time) bounds the whole call: the wait for the headers and, through
        the response, `read()`. It rides on the connection's one timer, where an
        `asyncio.timeout` around the call would arm and cancel a timer of its own.
        """
        client = self._clients[provider.name]
        loop = self._loop
        assert loop is not None, "start() first"
        first_byte = loop.time() + provider.timeouts.first_byte
        if deadline is not None and deadline < first_byte:
            first_byte = deadline
        pool: Pool | None = None
        try:
            pool, data = client.prepare(call.url, call.headers, call.body)
            conn = await pool.request(data, first_byte)
        except (HTTPError, OSError) as exc:
            raise _map_error(exc, provider, pool) from None
        decoder: BodyDecoder | None = None
        if conn.encoding:
            if conn.encoding not in _ENCODINGS:  # we asked for gzip or deflate only
                pool.release(conn)
                name = conn.encoding.decode("latin-1")
                raise UpstreamError(
                    f"provider {provider.name}: unsupported content-encoding {name}"
                )
            encoding = _ENCODINGS[conn.encoding]
            if encoding is not None:
                decoder = BodyDecoder(encoding)
        return UpstreamResponse(conn, pool, provider, decoder, deadline)

    def pools(self, provider: Provider) -> list[Pool]:
        """The provider's connection pools (one per origin), for tests and metrics."""
        return self._clients[provider.name].pools

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls
