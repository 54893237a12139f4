"""A client that goes away mid-stream cancels the upstream call, and what was produced so
far is booked (status 499)."""

from __future__ import annotations

import json
import socket
import time

from tests.hardening.helpers import HELLO, KEY, read_response
from tiergate.fakes import Reply


def _wait(predicate, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _open_stream(gw) -> socket.socket:
    body = json.dumps({**HELLO, "stream": True}).encode()
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def test_disconnect_mid_stream_cancels_upstream_and_books_499(gw, fake):
    words = " ".join(f"w{i}" for i in range(100))
    fake.enqueue(Reply(words, stream_chunks=100, chunk_delay=0.05, input_tokens=7))
    sock = _open_stream(gw)
    response = read_response(sock)
    assert response.status == 200
    received = response.body
    while received.count(b"data: {") < 5:
        received += sock.recv(65536)
    sock.close()  # the client goes away after ~5 of 100 chunks

    _wait(lambda: gw.ledger.entries)
    (entry,) = gw.ledger.entries
    assert entry.status == 499 and entry.stream
    assert entry.error == "client disconnected"
    # what was produced before the disconnect is paid for and booked
    assert 0 < entry.output_tokens < 100
    assert entry.cost_usd > 0 and entry.input_tokens > 0
    _wait(lambda: fake.history[-1].finished is not None)
    record = fake.history[-1]
    assert record.disconnected and not record.completed
    # cancelled long before the 5 s the full answer would have taken
    assert record.duration is not None and record.duration < 3


def test_disconnect_before_the_first_chunk_cancels_upstream(gw, fake):
    fake.enqueue(Reply("late answer", stream_chunks=2, delay_headers=3))
    sock = _open_stream(gw)
    _wait(lambda: fake.calls == 1)
    time.sleep(0.2)
    sock.close()
    _wait(lambda: fake.history[-1].finished is not None, within=5)
    assert fake.history[-1].disconnected
    # no answer was produced: nothing is spent (the row, if any, is at $0)
    _wait(lambda: gw.ledger.entries, within=5)
    assert all(e.cost_usd == 0 for e in gw.ledger.entries)


def test_disconnect_while_a_plain_answer_is_pending_cancels_upstream(gw, fake):
    fake.enqueue(Reply("slow plain answer", delay_headers=3))
    body = json.dumps(HELLO).encode()
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    _wait(lambda: fake.calls == 1)
    sock.close()
    _wait(lambda: gw.ledger.entries)
    (entry,) = gw.ledger.entries
    assert entry.status == 499 and entry.cost_usd == 0
    _wait(lambda: fake.history[-1].finished is not None)
    assert fake.history[-1].disconnected
