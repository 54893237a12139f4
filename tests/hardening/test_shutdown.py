"""Graceful shutdown of `tiergate serve` under load: SIGTERM turns readiness to 503, then
new connections are refused, requests and streams in flight finish, and every request that
completed has its row in the SQLite ledger."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import three_tier_config
from tests.hardening.helpers import AUTH, HELLO
from tests.serving import wait_ready
from tiergate.fakes import Reply
from tiergate.ingress.server import free_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-c",
        "from tiergate.cli.main import main; main()",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--drain-timeout",
        "15",
        "--drain-delay",
        "1.0",
    ]
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)


class Load:
    """Clients sending a mix of plain and streamed requests until told to stop."""

    def __init__(self, url: str, clients: int):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.completed: list[str] = []  # request ids of fully received answers
        self.cut: list[str] = []  # answers that started but did not finish
        self.refused = 0
        self.other: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, index: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            stream = (index + n) % 2 == 0
            try:
                self._one(stream)
            except httpx.ConnectError:
                with self.lock:
                    self.refused += 1
                time.sleep(0.05)
            except httpx.TransportError as exc:
                with self.lock:
                    self.other.append(type(exc).__name__)

    def _one(self, stream: bool) -> None:
        body = {**HELLO, "stream": stream}
        # a fresh connection per request: keep-alive would hide "new connections refused"
        with (
            httpx.Client(timeout=20) as client,
            client.stream(
                "POST", f"{self.url}/v1/chat/completions", json=body, headers=AUTH
            ) as response,
        ):
            request_id = response.headers.get("x-tiergate-request-id", "")
            try:
                text = response.read().decode()
            except httpx.TransportError:
                with self.lock:
                    self.cut.append(request_id)
                return
        finished = response.status_code == 200 and (not stream or text.rstrip().endswith("[DONE]"))
        with self.lock:
            (self.completed if finished else self.cut).append(request_id)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_sigterm_drains_in_flight_work_and_flushes_the_ledger(fake, tmp_path):
    # Every answer takes a while, so that SIGTERM always lands with work in flight.
    fake.respond_with(
        lambda prompt: (
            Reply(stream_chunks=8, chunk_delay=0.08) if prompt.stream else Reply(delay_headers=0.4)
        )
    )
    db = tmp_path / "ledger.db"
    config = tmp_path / "tiergate.yaml"
    config.write_text(
        three_tier_config(
            fake,
            f"observability: {{request_log: 'off'}}\nledger: {{url: 'sqlite:///{db}', flush_interval: 5}}\n",
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = _serve(config, port, log)
    try:
        wait_ready(url, proc, log.read_text)
        with Load(url, clients=8) as load:
            time.sleep(1.5)
            in_flight_before = fake.in_flight
            proc.send_signal(signal.SIGTERM)
            # during the drain delay: still answering, but not ready
            ready = httpx.get(f"{url}/health/ready", timeout=2)
            assert ready.status_code == 503, ready.text
            # then new connections are refused
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(f"{url}/health/live", timeout=1)
                except httpx.ConnectError:
                    break
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    # accepted in the instant the listener closed, then closed (or reset)
                    # unanswered: the listener is going; a later probe must be refused
                    pass
                assert time.monotonic() < deadline, "still accepting connections"
                time.sleep(0.05)
            returncode = proc.wait(timeout=30)
        assert returncode in (0, -signal.SIGTERM), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert in_flight_before > 0
    assert load.completed, "no request completed"
    assert not load.cut, f"{len(load.cut)} answers were cut off during the drain"
    # `other` holds requests that failed before any response began (a connection accepted in
    # the instant the listener closed, then closed idle by the server): never answered, never
    # booked, and a client retries them like a refused connection. What must not happen is
    # an answer cut off once it started (`cut`, above).
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT request_id, status FROM tiergate_ledger").fetchall())
    missing = [rid for rid in load.completed if rid not in rows]
    assert not missing, (
        f"{len(missing)} of {len(load.completed)} completed requests have no ledger row"
    )
    assert all(rows[rid] == 200 for rid in load.completed)
    assert load.refused > 0  # the clients did see the listener close
    print(
        json.dumps({"completed": len(load.completed), "rows": len(rows), "refused": load.refused})
    )
