"""POST /v1/chat/completions skips Starlette's router (in the ASGI app) and the ASGI layer
altogether (uvicorn's protocol serves it, `tiergate.ingress.fastpath`): the answers must
not change."""

from __future__ import annotations

import threading

import httpx
import pytest

from tiergate.ingress import app as app_module
from tiergate.ingress import fastpath


def test_chat_and_its_errors_answer_as_before(gw):
    headers = {"authorization": "Bearer tg-test-key"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    ok = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["x-tiergate-model"] == "small-model"
    assert ok.headers["x-tiergate-request-id"] in [e.request_id for e in gw.ledger.entries]
    bad = httpx.post(f"{gw.url}/v1/chat/completions", content=b"{", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    # Other methods still go through the router: 405 in the envelope, as before.
    wrong = httpx.get(f"{gw.url}/v1/chat/completions", headers=headers)
    assert wrong.status_code == 405
    assert "error" in wrong.json()


def test_a_bug_in_the_handler_is_a_500_envelope(gw, monkeypatch: pytest.MonkeyPatch):
    async def broken(*args: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "chat_completions", broken)
    monkeypatch.setattr(fastpath, "handle_chat", broken)
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer tg-test-key"},
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "a bug" not in r.text


def test_the_server_serves_chat_without_asgi_and_other_paths_through_it(
    gw, monkeypatch: pytest.MonkeyPatch
):
    calls: list[str] = []
    original = fastpath.handle_chat

    async def counting(gateway: object, incoming: object, settle: object) -> object:
        calls.append("fast")
        return await original(gateway, incoming, settle)  # type: ignore[arg-type]

    monkeypatch.setattr(fastpath, "handle_chat", counting)
    headers = {"authorization": "Bearer tg-test-key"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=gw.url, headers=headers) as client:
        for _ in range(3):  # one keep-alive connection, several requests
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        assert client.get("/v1/models").status_code == 200
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
        assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
    assert calls == ["fast"] * 4


def test_a_body_over_the_limit_is_refused_while_it_arrives(fake, start_gateway):
    from tests.conftest import three_tier_config

    gw = start_gateway(three_tier_config(fake, "server: {max_body_bytes: 2048}\n"))
    headers = {"authorization": "Bearer tg-test-key"}

    def chunks():  # no content-length: the limit must hold on the bytes themselves
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}]}'

    r = httpx.post(f"{gw.url}/v1/chat/completions", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "invalid_request_error"
    declared = httpx.post(f"{gw.url}/v1/chat/completions", content=b"x" * 4000, headers=headers)
    assert declared.status_code == 413


def _raw_request(body: bytes, *, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/" + version + b"\r\nhost: x\r\n"
        b"content-type: application/json\r\nauthorization: Bearer tg-test-key\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
    ) + body


def _read_until(sock, marker: bytes, count: int = 1) -> bytes:
    import time

    data = b""
    deadline = time.monotonic() + 10
    while data.count(marker) < count and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_pipelined_requests_are_answered_in_order_on_one_connection(gw, fake):
    import socket

    from tiergate.fakes import Reply

    fake.enqueue(Reply("first"), Reply("second"))
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1]))) as sock:
        sock.settimeout(10)
        sock.sendall(
            _raw_request(body)
            + _raw_request(body)
            + b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n"
        )
        # the third head arrives after the first two whole answers
        data = _read_until(sock, b"HTTP/1.1 200", 3)
    assert data.count(b"HTTP/1.1 200") == 3
    assert data.index(b'"first"') < data.index(b'"second"')
    assert len(gw.ledger.entries) == 2


def test_expect_100_continue_and_http_1_0(gw):
    import socket

    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    port = int(gw.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        head = _raw_request(body, extra=b"expect: 100-continue\r\n")[: -len(body)]
        sock.sendall(head)
        assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert _read_until(sock, b"HTTP/1.1 200").startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(_raw_request(body, version=b"1.0"))
        data = b""
        while chunk := sock.recv(65536):  # an HTTP/1.0 answer ends with the connection
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()


def test_the_answer_is_written_before_the_bookkeeping_and_nothing_is_lost(gw):
    # A sink that holds the server until the test lets it go: the client must already have
    # its answer while the request is being booked, and the booking must then complete.
    booking = threading.Event()
    release = threading.Event()

    def slow_sink(entry: object) -> None:
        booking.set()
        release.wait(10)

    gw.gateway.sinks.append(slow_sink)
    headers = {"authorization": "Bearer tg-test-key"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    try:
        answer = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200
        assert booking.wait(5), "the request was never booked"
    finally:
        release.set()
    request_id = answer.headers["x-tiergate-request-id"]
    # The next request on the server runs after the booking: the row is there.
    assert httpx.get(f"{gw.url}/health/live").status_code == 200
    assert request_id in [e.request_id for e in gw.ledger.entries]
