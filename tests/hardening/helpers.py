"""Shared checks for the hardening tests: raw HTTP, refusal assertions, SQLite gateways."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tiergate.config.loader import parse_config
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer

KEY = "tg-test-key"
UPSTREAM_KEY = "sk-upstream"
AUTH = {"authorization": f"Bearer {KEY}"}
HELLO = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def post(gw, body: bytes | dict, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"content-type": "application/json", **AUTH, **(headers or {})}
    if isinstance(body, dict):
        return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=h, timeout=30)
    return httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=h, timeout=30)


def assert_refused(gw, fake, response: httpx.Response, status: int, needle: str = "") -> dict:
    """The client's mistake: its status, the OpenAI envelope, no upstream call, no spend, no leak."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert needle in error["message"], error["message"]
    assert fake.calls == 0
    assert all(e.cost_usd == 0 and e.input_tokens == 0 for e in gw.ledger.entries)
    assert_no_secret(response.text)
    return error


def assert_no_secret(text: str) -> None:
    assert KEY not in text
    assert UPSTREAM_KEY not in text
    assert "sk-up" not in text


@dataclass
class RawResponse:
    status: int
    head: str
    body: bytes


def raw_exchange(url: str, request: bytes, *, timeout: float = 5.0) -> RawResponse:
    """Send bytes as they are (no client library fixes them up) and read one response."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock)


def read_response(sock: socket.socket) -> RawResponse:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    status = int(text.split(" ", 2)[1]) if text else 0
    length = None
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is not None:
        while len(body) < length:
            part = sock.recv(65536)
            if not part:
                break
            body += part
    return RawResponse(status, text, body)


@dataclass
class SqliteGateway:
    gateway: Gateway
    server: BackgroundServer
    path: Path

    @property
    def url(self) -> str:
        return self.server.url

    def rows(self, columns: str = "*") -> list[tuple]:
        with sqlite3.connect(self.path) as db:
            return db.execute(f"SELECT {columns} FROM tiergate_ledger").fetchall()


@contextmanager
def sqlite_gateway(config_text: str, path: Path) -> Iterator[SqliteGateway]:
    """A live gateway writing its ledger to SQLite; stopping it flushes the ledger."""
    config = parse_config(config_text + f"\nledger: {{url: 'sqlite:///{path}'}}\n")
    gateway = Gateway.from_config(config)
    server = BackgroundServer(create_app(gateway)).start()
    live = SqliteGateway(gateway, server, path)
    try:
        yield live
    finally:
        server.stop()
