"""One HTTP/1.1 client connection: an asyncio protocol around httptools' response parser.

The connection is deliberately dumb: it writes a request, parses the response into a
status, raw headers and body chunks, and wakes the one coroutine waiting on it. Pooling
lives in `http1_pool`, error mapping and body reading in `transport`. The hot path has no
tasks and no timeout context managers: a deadline is one `loop.call_at` handle.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import cast

import httptools

# Flow control: stop reading a socket with this much body unread, read again below _LOW_WATER.
HIGH_WATER = 1024 * 1024
_LOW_WATER = 256 * 1024
# llhttp has no limit on the size of a response head; a hostile server gets this much.
_MAX_HEAD = 256 * 1024


class HTTPError(Exception):
    """A response could not be had over this connection (mapped to tiergate errors above)."""


class ConnectionClosed(HTTPError):
    """The server closed the connection before the response headers were complete."""

    def __init__(self, *, before_response: bool) -> None:
        super().__init__("server disconnected")
        self.before_response = before_response  # not one byte of the response had arrived


class BodyCutOff(HTTPError):
    """The connection ended before the body was complete."""


class ProtocolError(HTTPError):
    """The server did not speak HTTP/1.1 (or spoke too much of it)."""


class InvalidRequest(HTTPError):
    """The request cannot be written: a URL or header (from config) is unusable."""


class Aborted(HTTPError):
    """We dropped the connection ourselves (the call was cancelled)."""


class Headers(Mapping[str, str]):
    """Response headers, case-insensitive; parsed from the raw head only when first looked
    at (most successful answers are never asked)."""

    __slots__ = ("_head", "_map")

    def __init__(self, head: bytes) -> None:
        self._head = head  # the status line and header lines, without the blank line
        self._map: dict[str, str] | None = None

    def _build(self) -> dict[str, str]:
        built: dict[str, str] = {}
        for line in self._head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            key = name.decode("latin-1").strip().lower()
            text = value.strip().decode("latin-1")
            built[key] = f"{built[key]}, {text}" if key in built else text
        self._map = built
        return built

    def __getitem__(self, key: str) -> str:
        return (self._map or self._build())[key.lower()]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return (self._map or self._build()).get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in (self._map or self._build())

    def __iter__(self) -> Iterator[str]:
        return iter(self._map or self._build())

    def __len__(self) -> int:
        return len(self._map or self._build())

    def __repr__(self) -> str:
        return f"Headers({self._map or self._build()!r})"


def _field(lower_head: bytes, name: bytes) -> bytes | None:
    """The value of the first header `name` (b"\\nname:") in a lower-cased head."""
    at = lower_head.find(name)
    if at < 0:
        return None
    start = at + len(name)
    end = lower_head.find(b"\r", start)
    return lower_head[start : end if end >= 0 else len(lower_head)].strip()


class BodyDecoder:
    """Incremental gzip / deflate decoding that never expands more than it is asked for."""

    __slots__ = ("_tail", "_zlib")

    def __init__(self, encoding: bytes) -> None:
        # gzip: the gzip wrapper; deflate: the zlib wrapper, or raw deflate (chosen below).
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != b"deflate" else None
        self._tail = b""

    @property
    def backlog(self) -> bool:
        """Input is waiting that a previous `decode` left for lack of room."""
        return bool(self._tail)

    def decode(self, data: bytes, room: int) -> bytes:
        """Up to `room` decoded bytes of `data` (plus any backlog). Raises `zlib.error`."""
        z = self._zlib
        if z is None:
            # Servers send "deflate" both with and without the zlib header (RFC 9110 says
            # with); the low nibble of a zlib header's first byte is always 8.
            wbits = zlib.MAX_WBITS if data and data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            z = self._zlib = zlib.decompressobj(wbits)
        if self._tail:
            data = self._tail + data
        out = z.decompress(data, max(room, 1))
        self._tail = z.unconsumed_tail
        return out


class Connection(asyncio.Protocol):
    """A keep-alive connection carrying one request at a time."""

    __slots__ = (
        "_deadline",
        "_expecting",
        "_framed",
        "_head",
        "_on_lost",
        "_parser",
        "_paused",
        "_timer",
        "_timer_at",
        "_waiter",
        "buffered",
        "chunks",
        "closed",
        "complete",
        "encoding",
        "error",
        "got_bytes",
        "head",
        "headers_done",
        "idle",
        "idle_since",
        "keep_alive",
        "loop",
        "requests",
        "status",
        "transport",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[Connection], None]
    ) -> None:
        self.loop = loop
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle = False  # in the pool's idle list
        self.idle_since = 0.0
        self.requests = 0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # when `_timer` fires
        self._deadline = 0.0  # when the current wait times out
        self._paused = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.head = b""  # status line and header lines of the answer
        self.encoding = b""
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: HTTPError | None = None
        self.got_bytes = False
        self._framed = False  # Content-Length or chunked: the body does not end at EOF
        self._head = b""  # bytes received until the head is complete
        self._expecting = False

    # -- used by the pool and the response ------------------------------------------------

    def send(self, data: bytes, deadline: float) -> asyncio.Future[None]:
        """Write one request; the future resolves when the headers are in or `error` is set,
        and raises `TimeoutError` at `deadline`."""
        self._reset()
        self.requests += 1
        self._expecting = True
        if self.closed or self.transport is None:
            self.error = ConnectionClosed(before_response=True)
            self._expecting = False
            done = self.loop.create_future()
            done.set_result(None)
            return done
        self.transport.write(data)
        return self.wait(deadline)

    def wait(self, deadline: float) -> asyncio.Future[None]:
        """A future that resolves at the next headers, body bytes, end or error, and raises
        `TimeoutError` at `deadline`."""
        waiter = self.loop.create_future()
        self._waiter = waiter
        self._deadline = deadline
        # One timer per connection, moved only when a deadline comes sooner than it fires:
        # a uvloop timer costs ~10 us to arm and cancel, more than the rest of a call. Most
        # deadlines are "now + the same timeout", later than the armed one, so a busy
        # connection re-arms about once per timeout period instead of once per wait.
        timer = self._timer
        if timer is None or deadline < self._timer_at:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._expire)
            self._timer_at = deadline
        return waiter

    def take(self) -> bytes | None:
        """The next unread body chunk, if one has arrived."""
        chunks = self.chunks
        if not chunks:
            return None
        chunk = chunks.popleft()
        self.buffered -= len(chunk)
        if self._paused and self.buffered <= _LOW_WATER:
            self._paused = False
            if not self.closed and self.transport is not None:
                self.transport.resume_reading()
        return chunk

    def recycle(self) -> None:
        """Forget unread body bytes of a complete response, before the next request."""
        self.chunks.clear()
        self.buffered = 0
        if self._paused:
            self._paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection now; a waiting reader wakes up to `Aborted`."""
        self._drop(None)

    def shutdown(self) -> None:
        """Close an idle connection politely."""
        self._stop_timer()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None:
            return  # nothing waits: the next wait arms a timer again
        if self.loop.time() < self._deadline:  # armed for an earlier wait, since answered
            self._timer = self.loop.call_at(self._deadline, self._expire)
            self._timer_at = self._deadline
            return
        self._waiter = None
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop(self, error: HTTPError | None) -> None:
        """Abort the connection; a response still expected fails with `error`."""
        if self._expecting:
            self._expecting = False
            if self.error is None:
                self.error = error or Aborted("call cancelled")
        self.keep_alive = False
        self._wake()
        self._stop_timer()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._expecting:
            # Nothing was asked: an idle connection the server talks on (a 408 before it
            # closes, say) or bytes after a complete answer. Either way it cannot be reused.
            self._drop(ProtocolError("unexpected bytes from the server"))
            return
        self.got_bytes = True
        if not self.headers_done:
            # Kept for on_headers_complete, which reads the header fields in one go (calling
            # back into Python per header costs more than the rest of the parse).
            self._head = self._head + data if self._head else data
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._drop(ProtocolError(f"invalid HTTP response ({exc})"))
            return
        if self._expecting and not self.headers_done and len(self._head) > _MAX_HEAD:
            self._drop(ProtocolError(f"response head over {_MAX_HEAD} bytes"))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._expecting:
            self._expecting = False
            if not self.headers_done:
                self.error = ConnectionClosed(before_response=not self.got_bytes)
            elif self._framed:
                self.error = BodyCutOff("response body was cut off")
            else:
                self.complete = True  # a body without a length ends where the connection does
            self.keep_alive = False
        self._wake()
        self._stop_timer()
        self._on_lost(self)

    # -- httptools callbacks --------------------------------------------------------------

    # After `complete` only a misbehaving server sends more (a second, unasked-for answer).

    def on_headers_complete(self) -> None:
        if self.complete:
            self._drop(ProtocolError("an answer nobody asked for"))
            return
        received = self._head
        end = received.find(b"\r\n\r\n")  # llhttp accepts nothing but CRLF
        status = self._parser.get_status_code()
        if status < 200:  # an interim 1xx answer: the real one follows on this connection
            self._head = received[end + 4 :]
            return
        head = self.head = received[:end]
        self._head = b""
        lower = head.lower()
        encoding = _field(lower, b"\ncontent-encoding:")
        if encoding is not None:
            self.encoding = encoding
        chunked = b"chunked" in (_field(lower, b"\ntransfer-encoding:") or b"")
        self._framed = chunked or _field(lower, b"\ncontent-length:") is not None
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self._waiter is not None:
            self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of a 1xx interim answer
        self.complete = True
        self._expecting = False
        if self._waiter is not None:
            self._wake()
