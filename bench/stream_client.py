"""A minimal blocking HTTP/1.1 client that times streamed answers byte by byte.

It measures, per request, the time to the first response byte (the status line: a
gateway sends its headers only once the upstream's first chunk is in), the time until the
first whole `data:` event has arrived (the fair "first byte" to compare, since a paced
upstream may send its first event in pieces), the time until the first event carrying
answer text has arrived (the first token: an OpenAI stream opens with a role-only event,
which tiergate holds back and sends with the first text, so that a failure before any text
can still fail over to another deployment), and the time to the end of the body. It
speaks just enough HTTP for nginx (Content-Length) and uvicorn (chunked), over one
keep-alive connection, so that its own cost is tiny and the same on both sides of a
comparison.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timing:
    first_byte_s: float
    first_event_s: float
    first_content_s: float
    total_s: float
    body_bytes: int


class StreamClient:
    def __init__(self, host: str, port: int, path: str, key: str) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host, self._port, self._path, self._key = host, port, path, key
        self._n = 0

    def close(self) -> None:
        self._sock.close()

    def _request(self) -> bytes:
        self._n += 1
        body = (
            '{"model":"auto","stream":true,"messages":[{"role":"user","content":'
            f'"Summarise stream request {self._n} in one short sentence, please."}}]}}'
        ).encode()
        head = (
            f"POST {self._path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {self._key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def fetch(self) -> Timing:
        """One streamed request, read to its end."""
        request = self._request()
        recv = self._sock.recv
        started = time.perf_counter()
        self._sock.sendall(request)
        buf = bytearray(recv(1 << 16))
        first_byte = time.perf_counter()
        if not buf:
            raise ConnectionError("server closed the connection")
        while b"\r\n\r\n" not in buf:
            buf += recv(1 << 16)
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end]).lower()
        if not head.startswith(b"http/1.1 200"):
            raise RuntimeError(f"unexpected answer: {bytes(buf[:200])!r}")
        body = buf[end:]
        first_event = time.perf_counter() if _has_event(body) else 0.0
        first_content = time.perf_counter() if _has_content(body) else 0.0
        chunked = b"transfer-encoding: chunked" in head
        length = -1
        if not chunked:
            marker = head.index(b"content-length:") + len(b"content-length:")
            length = int(head[marker : head.index(b"\r\n", marker)])
        while True:
            if chunked and body.endswith(b"\r\n0\r\n\r\n"):
                break
            if not chunked and len(body) >= length:
                break
            data = recv(1 << 16)
            if not data:
                raise ConnectionError("connection closed mid-body")
            body += data
            if not first_event and _has_event(body):
                first_event = time.perf_counter()
            if not first_content and _has_content(body):
                first_content = time.perf_counter()
        done = time.perf_counter()
        if b"[DONE]" not in body:
            raise RuntimeError("stream ended without [DONE]")
        return Timing(
            first_byte - started,
            first_event - started,
            first_content - started,
            done - started,
            len(body),
        )


def _has_event(body: bytearray) -> bool:
    """Whether a whole SSE event (a `data:` line and the blank line after it) is in."""
    start = body.find(b"data:")
    return start >= 0 and body.find(b"\n\n", start) >= 0


_CONTENT = re.compile(rb'"content":\s*"[^"]')


def _has_content(body: bytearray) -> bool:
    """Whether a whole event with answer text (a non-empty `content`) is in."""
    found = _CONTENT.search(body)
    return found is not None and body.find(b"\n\n", found.end()) >= 0
