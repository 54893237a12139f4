"""Several `tiergate serve` processes sharing one Redis and one PostgreSQL, as in production.

Each cluster gets its own Redis key prefix and PostgreSQL table prefix (unique per test
process and call), so parallel test runs never see each other's state; `Cluster.close`
stops the processes and deletes both.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tiergate.fakes import FakeUpstream
from tiergate.ingress.server import free_port
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.testing import POSTGRES_URL, REDIS_URL, unique_prefix

KEY = "tg-cluster-key"


def _reachable(url: str, default_port: int) -> bool:
    rest = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = rest.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or default_port)), 1):
            return True
    except OSError:
        return False


def require_servers() -> None:
    """Skip (with the reason) unless the shared Redis and PostgreSQL answer."""
    if not _reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    if not _reachable(POSTGRES_URL, 5432):
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")


def cluster_config(
    fake: FakeUpstream,
    *,
    redis_url: str,
    redis_prefix: str,
    postgres_url: str,
    table_prefix: str,
    spool_dir: Path | None = None,
    flush_interval: float = 0.2,
    extra: str = "",
) -> str:
    """Three tiers on one fake upstream, plus a second provider for the cooldown test."""
    spool = f"spool_dir: '{spool_dir}'" if spool_dir is not None else ""
    return textwrap.dedent(
        f"""
        providers:
          upstream:
            kind: openai
            base_url: {fake.base_url("openai")}
            api_key: sk-upstream
            timeout: {{connect: 2, first_byte: 5, inactivity: 5, total: 15}}
          flaky:
            kind: openai
            base_url: {fake.base_url("openai")}
            api_key: sk-upstream
        models:
          small-model:  {{provider: upstream, model: mock-small, tier: budget,   price: {{input: 0.05, output: 0.40}}}}
          medium-model: {{provider: upstream, model: mock-medium, tier: standard, price: {{input: 0.25, output: 2.00}}}}
          large-model:  {{provider: upstream, model: mock-large, tier: premium,  price: {{input: 2.50, output: 15.00}}}}
          shaky-model:
            tier: budget
            price: {{input: 0.01, output: 0.01}}
            deployments:
              - {{provider: flaky, model: mock-flaky}}
              - {{provider: upstream, model: mock-steady}}
        use_catalog: false
        routes:
          auto:
            strategy: rules
            fallback: {{retries: 0, backoff_base: 0.01, backoff_max: 0.05}}
        keys:
          - {{name: cluster, key: {KEY}}}
          - {{name: limited, key: tg-limited, rpm: 20}}
          - {{name: budgeted, key: tg-budgeted, budget_usd: 0.002, period: day}}
        redis: {{url: '{redis_url}', prefix: '{redis_prefix}'}}
        ledger: {{url: '{postgres_url}', table_prefix: {table_prefix}, flush_interval: {flush_interval}, {spool}}}
        circuit: {{failure_threshold: 2, cooldown: 30}}
        observability: {{request_log: 'off'}}
        """
    ) + textwrap.dedent(extra)


@dataclass
class Instance:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None


def serve(config: Path, log: Path, port: int | None = None) -> Instance:
    port = port or free_port()
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
        "5",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    return Instance(port, proc, log)


def wait_ready(instances: list[Instance], within: float = 40.0) -> None:
    deadline = time.monotonic() + within
    pending = list(instances)
    while pending:
        inst = pending[0]
        assert inst.alive(), inst.log.read_text()
        try:
            if httpx.get(f"{inst.url}/health/ready", timeout=1).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "a gateway did not become ready:\n" + (
            inst.log.read_text()
        )
        time.sleep(0.1)


def stop(inst: Instance, sig: int = signal.SIGTERM) -> int:
    if inst.alive():
        inst.proc.send_signal(sig)
    try:
        return inst.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        inst.proc.kill()
        return inst.proc.wait()


@dataclass
class Cluster:
    instances: list[Instance]
    config: Path
    db_url: DatabaseURL
    redis_prefix: str
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def next(self) -> Instance:
        """Round-robin over the live instances, as a load balancer would."""
        live = [i for i in self.instances if i.alive()]
        return live[next(self._turn) % len(live)]

    def ledger_rows(self, where: str = "", params: tuple[object, ...] = ()) -> list[tuple]:
        db = Database.connect(self.db_url)
        try:
            return db.query(
                f"SELECT request_id, key_name, status, cost_usd FROM {{p}}ledger {where}", params
            )
        finally:
            db.close()

    def close(self) -> None:
        for inst in self.instances:
            stop(inst)


@contextmanager
def scratch_state() -> Iterator[tuple[DatabaseURL, str]]:
    """A fresh table prefix and Redis key prefix, both removed on exit."""
    import redis

    from tiergate.store.migrations import drop_all

    url = DatabaseURL.parse(POSTGRES_URL, unique_prefix("c"))
    redis_prefix = "tgtest:" + unique_prefix("c")
    try:
        yield url, redis_prefix
    finally:
        db = Database.connect(url)
        try:
            drop_all(db)
        finally:
            db.close()
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=redis_prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def cluster(
    fake: FakeUpstream,
    tmp: Path,
    *,
    size: int = 3,
    spool: bool = False,
    flush_interval: float = 0.2,
    extra: str = "",
) -> Iterator[Cluster]:
    """`size` gateways on free loopback ports, sharing Redis, PostgreSQL (and a spool dir)."""
    require_servers()
    with scratch_state() as (db_url, redis_prefix):
        config = tmp / "tiergate.yaml"
        config.write_text(
            cluster_config(
                fake,
                redis_url=REDIS_URL,
                redis_prefix=redis_prefix,
                postgres_url=POSTGRES_URL,
                table_prefix=db_url.prefix,
                spool_dir=tmp / "spool" if spool else None,
                flush_interval=flush_interval,
                extra=extra,
            )
        )
        instances = [serve(config, tmp / f"serve-{n}.log") for n in range(size)]
        group = Cluster(instances, config, db_url, redis_prefix)
        try:
            wait_ready(instances)
            yield group
        finally:
            group.close()
