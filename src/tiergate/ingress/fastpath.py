"""`POST /v1/chat/completions` answered from uvicorn's HTTP protocol, without ASGI.

Every request of the gateway's main endpoint paid for the ASGI layers before and after
the handler: uvicorn's `run_asgi`, the proxy-headers middleware, Starlette's `Request`
(headers re-parsed on each access, the body through `receive` messages), a watcher task to
notice a disconnect, and `send` writing the headers and the body in two system calls.
Together they were ~15% of a request's CPU time at load.

`ChatProtocol` is uvicorn's own httptools protocol (keep-alive, pipelining, flow control,
limits, timeouts and graceful shutdown stay uvicorn's) with one change: a chat request's
cycle runs `_serve_chat` instead of the ASGI app. It waits for the body on the cycle
(413 as soon as it passes the limit), hands headers and body to the same `handle_chat`
the ASGI endpoint uses, learns of a disconnect from `connection_lost` (no task), and
writes a whole response in one `write`, then books it (ledger, observers, cache store:
the client does not wait for them). A streamed answer goes out as it comes (`_stream`):
the first event at once, each later one in the same loop turn as the events produced
with it (a 1,000-event burst from the provider is one write, not 1,000), and the stream
is cancelled the moment the client hangs up. Every other request takes the ASGI app
unchanged, as do all requests when the app has middleware configured.

`_head` and `_complete` mirror what uvicorn's `RequestResponseCycle.send` does, line for
line, in the releases named by `VERIFIED_UVICORN` (their sources were compared). Under
any other release `http_protocol()` gives uvicorn's own protocol: every request then goes
through ASGI, correct and ~15% slower, and the server says so once at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn
from starlette.responses import Response, StreamingResponse
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from tiergate.config.schema import ServerConfig
from tiergate.errors import ClientDisconnected, TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress.app import CHAT_PATHS, GatewayApp, unexpected_error_response
from tiergate.ingress.body import check_body, check_body_headers, over_limit
from tiergate.ingress.chat import handle_chat
from tiergate.ingress.errors import error_response
from tiergate.ingress.limits import cancel_on_disconnect

log = logging.getLogger("uvicorn.error")

# uvicorn releases (major, minor) whose `send` the fast path's `_head` and `_complete` were
# compared with: 0.53 and 0.54 are the same there; 0.52 and older still answered a client's
# `Connection: close` differently, and before 0.50 there was no `_start_asgi_task` to hook.
VERIFIED_UVICORN = frozenset({(0, 53), (0, 54)})


def uvicorn_release(version: str = uvicorn.__version__) -> tuple[int, int] | None:
    """(major, minor) of a uvicorn version string, None if it has no such prefix."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def http_protocol(version: str = uvicorn.__version__) -> type[HttpToolsProtocol]:
    """The protocol class to serve with: the chat fast path under a verified uvicorn,
    else uvicorn's own (every request through ASGI), with a warning."""
    if uvicorn_release(version) in VERIFIED_UVICORN:
        return ChatProtocol
    log.warning(
        "uvicorn %s is not one the chat fast path was checked against (%s): every request "
        "goes through ASGI instead, correct but ~15%% slower",
        version,
        ", ".join(f"{major}.{minor}" for major, minor in sorted(VERIFIED_UVICORN)),
    )
    return HttpToolsProtocol


def _gateway_app(app: Any) -> GatewayApp | None:
    """The GatewayApp inside uvicorn's middleware wrappers (each keeps the next as `.app`)."""
    for _ in range(8):
        if isinstance(app, GatewayApp):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class ChatProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the chat endpoint served directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_gone: Callable[[], None] | None = None
        found = _gateway_app(self.app)
        self._gateway_app = found if found is not None and not found.user_middleware else None

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope = cycle.scope
        if (
            app is self.app  # not uvicorn's 503 for a passed concurrency limit
            and self._gateway_app is not None
            and scope["method"] == "POST"
            and scope["path"] in CHAT_PATHS
        ):
            task = self.loop.create_task(self._serve_chat(cycle, self._gateway_app))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        on_gone, self._on_gone = self._on_gone, None
        if on_gone is not None:
            on_gone()

    async def _serve_chat(self, cycle: RequestResponseCycle, app: GatewayApp) -> None:
        gateway: Gateway = app.state.gateway
        incoming = _CycleIncoming(self, cycle)
        settle: list[Callable[[], None]] = []
        try:
            try:
                response = await handle_chat(gateway, incoming, settle)
            except TiergateError as exc:  # raised before the handler's own envelope
                response = error_response(exc)
            if cycle.disconnected:
                return
            if isinstance(response, StreamingResponse):
                # A hang-up cancels the stream; closing its iterator (in _pump) books it.
                with contextlib.suppress(ClientDisconnected):
                    await cancel_on_disconnect(incoming, _pump(cycle, response, self.loop))
            else:
                _write_whole(cycle, response)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.error("Exception in the chat handler", exc_info=exc)
            if not cycle.response_started and not cycle.disconnected:
                _write_whole(cycle, unexpected_error_response())
            elif not cycle.response_complete:
                cycle.transport.close()
        finally:
            self._on_gone = None
            cycle.on_response = lambda: None
            # The request's bookkeeping, once its answer is on the wire (or can no longer be).
            for work in settle:
                try:
                    work()
                except Exception as exc:
                    log.error("Exception booking a chat request", exc_info=exc)


async def _pump(
    cycle: RequestResponseCycle, response: StreamingResponse, loop: asyncio.AbstractEventLoop
) -> None:
    """Every piece of the body through a `_ChunkWriter`, at the client's pace."""
    writer = _ChunkWriter(cycle, _head(cycle, response, chunked=True), loop)
    iterator = response.body_iterator
    try:
        async for data in iterator:
            if cycle.disconnected:
                return
            writer.add(data.encode() if isinstance(data, str) else bytes(data))
            if cycle.flow.write_paused:
                await cycle.flow.drain()  # a slow reader: wait, do not buffer without end
        writer.finish()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class _ChunkWriter:
    """HTTP/1.1 chunks to the client: the first at once, later ones one loop turn later,
    all that were produced in that turn together."""

    __slots__ = ("_cycle", "_loop", "_parts", "_scheduled", "_sent_first", "_size")

    def __init__(
        self, cycle: RequestResponseCycle, head: bytes, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._cycle = cycle
        self._loop = loop
        self._parts: list[bytes] = [head]
        self._size = 0
        self._scheduled: asyncio.Handle | None = None
        self._sent_first = False

    def add(self, data: bytes) -> None:
        if not data:
            return
        self._parts += (b"%x\r\n" % len(data), data, b"\r\n")
        self._size += len(data)
        if not self._sent_first or self._size >= 65536:
            self._sent_first = True
            self.flush()
        elif self._scheduled is None:
            self._scheduled = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._parts and not self._cycle.disconnected:
            self._cycle.transport.write(b"".join(self._parts))
        self._parts = []
        self._size = 0

    def finish(self) -> None:
        """The last chunk; then what uvicorn's `send` does at the end of a response."""
        self._parts.append(b"0\r\n\r\n")
        self.flush()
        _complete(self._cycle)


class _CycleIncoming:
    """The chat request as uvicorn's cycle holds it."""

    __slots__ = ("_cycle", "_headers", "_protocol")

    def __init__(self, protocol: ChatProtocol, cycle: RequestResponseCycle) -> None:
        self._protocol = protocol
        self._cycle = cycle
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            # reversed: for a repeated header the first value wins, as Starlette's `get` does
            self._headers = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in reversed(list(self._cycle.scope["headers"]))
            }
        return self._headers

    @property
    def endpoint(self) -> str:
        return "chat"

    async def body(self, server: ServerConfig) -> bytes:
        limit = server.max_body_bytes
        check_body_headers(self.headers, limit)
        cycle = self._cycle
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        while cycle.more_body and not cycle.disconnected:
            if len(cycle.body) > limit:
                raise over_limit(limit)
            cycle.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected:
            raise asyncio.CancelledError  # nobody to answer; uvicorn drops the connection
        if len(cycle.body) > limit:
            raise over_limit(limit)
        body = bytes(cycle.body)
        cycle.body = bytearray()
        return check_body(body, server)

    def watch_disconnect(self, on_disconnect: Callable[[], None]) -> Callable[[], None]:
        protocol = self._protocol
        if self._cycle.disconnected:
            asyncio.get_running_loop().call_soon(on_disconnect)
        else:
            protocol._on_gone = on_disconnect

        def unwatch() -> None:
            if protocol._on_gone is on_disconnect:
                protocol._on_gone = None

        return unwatch


def _head(cycle: RequestResponseCycle, response: Response, *, chunked: bool = False) -> bytes:
    """The status line and headers (uvicorn's default ones first, as its `send` does)."""
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    parts = [STATUS_LINE[response.status_code]]
    for name, value in cycle.default_headers:
        parts += (name, b": ", value, b"\r\n")
    closing = False
    for name, value in response.raw_headers:
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        if name == b"connection" and b"close" in [t.lower().strip() for t in value.split(b",")]:
            cycle.keep_alive = False
            closing = True
        parts += (name, b": ", value, b"\r\n")
    if not cycle.keep_alive and not closing:
        parts.append(b"connection: close\r\n")
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _write_whole(cycle: RequestResponseCycle, response: Response) -> None:
    """Status line, headers and body in one write; then the end of the response."""
    if cycle.disconnected:
        return
    cycle.transport.write(_head(cycle, response) + bytes(response.body))
    _complete(cycle)


def _complete(cycle: RequestResponseCycle) -> None:
    """What uvicorn's `send` does after a response's last byte: keep-alive or close, and the
    next pipelined request."""
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()
