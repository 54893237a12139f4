"""Redis goes away: the gateway keeps serving from local limits and cache, says so in
`/health/ready` and `/metrics`, and shares state again once Redis is back.

Uses a private `redis-server` on a free port (the shared one is never stopped)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tiergate.config.loader import parse_config
from tiergate.fakes import FakeUpstream
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer, free_port
from tiergate.ledger import MemoryLedger

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


class PrivateRedis:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.tmp)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def keys(self, pattern: str) -> list[bytes]:
        return list(redis.Redis(port=self.port).scan_iter(match=pattern))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_serving_degrades_to_local_state_and_recovers(
    private_redis: PrivateRedis, fake: FakeUpstream
) -> None:
    config = parse_config(
        textwrap.dedent(
            f"""
            providers:
              upstream: {{kind: openai, base_url: {fake.base_url("openai")}, api_key: sk-upstream}}
            models:
              small-model: {{provider: upstream, model: mock-small, tier: budget,
                             price: {{input: 0.05, output: 0.40}}}}
            use_catalog: false
            keys: [{{name: test, key: tg-test-key, rpm: 1000}}]
            redis: {{url: 'redis://127.0.0.1:{private_redis.port}/0', prefix: 'tgo:'}}
            observability: {{request_log: 'off'}}
            """
        )
    )
    gateway = Gateway.from_config(config, ledger=MemoryLedger())
    server = BackgroundServer(create_app(gateway)).start()

    def ask(text: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/v1/chat/completions",
            json={
                "model": "small-model",
                "temperature": 0,
                "messages": [{"role": "user", "content": text}],
            },
            headers={"authorization": "Bearer tg-test-key"},
            timeout=20,
        )

    def cluster_state() -> dict:
        ready = httpx.get(f"{server.url}/health/ready", timeout=5)
        assert ready.status_code == 200  # degraded is still ready: it serves
        return ready.json()["cluster"]

    def redis_up_gauge() -> str:
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        return next(line for line in text.splitlines() if line.startswith("tiergate_redis_up "))

    def wait_for(condition, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.05)

    try:
        assert ask("before").status_code == 200
        wait_for(lambda: bool(private_redis.keys("tgo:cache:*")))
        assert ask("before").headers["x-tiergate-cache"] == "hit"
        assert private_redis.keys("tgo:rl:*")  # rate-limit counters live in Redis
        assert redis_up_gauge() == "tiergate_redis_up 1.0"

        private_redis.stop()
        started = time.monotonic()
        for n in range(10):  # rate limits, budgets and the cache go local; answers flow
            response = ask(f"during {n}")
            assert response.status_code == 200, response.text
        assert ask("during 0").headers["x-tiergate-cache"] == "hit"  # the local cache
        elapsed = time.monotonic() - started
        state = cluster_state()
        assert state["redis"]["state"] == "down"
        assert state["shared_state"].startswith("degraded")
        assert redis_up_gauge() == "tiergate_redis_up 0.0"

        private_redis.start()  # an empty Redis on the same port
        wait_for(lambda: cluster_state()["redis"]["state"] == "up")
        assert ask("after").status_code == 200
        wait_for(lambda: bool(private_redis.keys("tgo:cache:*")))  # shared again
        assert private_redis.keys("tgo:rl:*")
        assert redis_up_gauge() == "tiergate_redis_up 1.0"
        print(f"11 requests during the outage took {elapsed:.2f} s")
    finally:
        server.stop()
