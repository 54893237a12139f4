"""The ledger spool: rows on disk before the response, replayed after a SIGKILL and after
a database outage, never twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import require_servers
from tests.cluster.proxy import SwitchableProxy
from tiergate.cluster.spooled_ledger import SpooledLedger
from tiergate.config.loader import parse_config
from tiergate.fakes import FakeUpstream
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.ledger import LedgerEntry
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import drop_all
from tiergate.store.testing import POSTGRES_URL, unique_prefix


def _entry(n: int) -> LedgerEntry:
    return LedgerEntry(f"req-{n}", time.time(), "k", "auto", "rules", "r", "m", "budget", "d")


def _ids(url: DatabaseURL) -> Counter[str]:
    db = Database.connect(url)
    try:
        return Counter(r[0] for r in db.query("SELECT request_id FROM {p}ledger"))
    finally:
        db.close()


def test_rows_reach_the_database_and_written_segments_are_deleted(tmp_path: Path) -> None:
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")

    async def run() -> None:
        ledger = SpooledLedger(url, tmp_path / "spool", flush_interval=0.05)
        ledger.spool.segment_entries = 40  # several segments, so that rotation is exercised
        await ledger.start()
        for n in range(150):
            ledger.record(_entry(n))
        assert await ledger.flush(within=10)
        await ledger.close()

    asyncio.run(run())
    assert _ids(url) == Counter(f"req-{n}" for n in range(150))
    assert list((tmp_path / "spool").iterdir()) == []


_KILLED = textwrap.dedent(
    """
    import asyncio, os, signal, sys, time
    from tiergate.cluster.spooled_ledger import SpooledLedger
    from tiergate.ledger import LedgerEntry
    from tiergate.store.db import DatabaseURL

    async def main():
        url = DatabaseURL.parse(sys.argv[1])
        # A flush interval far longer than the run: rows exist only in the spool.
        ledger = SpooledLedger(url, sys.argv[2], flush_interval=3600)
        await ledger.start()
        for n in range(int(sys.argv[3])):
            ledger.record(LedgerEntry(f"req-{n}", time.time(), "k", "auto", "rules", "r",
                                      "m", "budget", "d"))
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


def test_rows_of_a_killed_process_are_replayed_exactly_once(tmp_path: Path) -> None:
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    spool = tmp_path / "spool"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, f"sqlite:///{tmp_path / 'ledger.db'}", str(spool), "300"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert _ids(url) == Counter()  # nothing reached the database before the kill
    # ...except, say, the first 40 rows, written just before it died: never booked twice.
    db = Database.connect(url)
    try:
        db.executemany(
            "INSERT INTO {p}ledger (request_id, ts, route, strategy, reasons, input_tokens,"
            " output_tokens, cached_tokens, cost_usd, extra_cost_usd, baseline_cost_usd,"
            " cache_saved_usd, latency_ms, upstream_ms, status, fallbacks, attempts, cache,"
            " stream, tags, endpoint, sub_calls)"
            " VALUES (?, 0, 'auto', 'rules', '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, '', 'miss',"
            " 0, '[]', 'chat', '[]')",
            [(f"req-{n}",) for n in range(40)],
        )
    finally:
        db.close()

    async def survivor() -> SpooledLedger:
        ledger = SpooledLedger(url, spool, flush_interval=0.05)
        await ledger.start()
        deadline = time.monotonic() + 10
        while ledger.replayed + ledger.skipped < 300 and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter bumped by the writer thread)
            await asyncio.sleep(0.05)
        await ledger.close()
        return ledger

    ledger = asyncio.run(survivor())
    assert (ledger.replayed, ledger.skipped) == (260, 40)
    assert _ids(url) == Counter(f"req-{n}" for n in range(300))
    assert list(spool.iterdir()) == []


@pytest.mark.postgres
def test_a_postgresql_outage_buffers_rows_on_disk_and_replays_them(tmp_path: Path) -> None:
    require_servers()
    target = POSTGRES_URL.split("://", 1)[1].split("/", 1)
    host, _, port = target[0].rsplit("@", 1)[-1].partition(":")
    proxy = SwitchableProxy((host or "127.0.0.1", int(port or 5432))).up()
    url = DatabaseURL.parse(
        f"postgresql://{host or '127.0.0.1'}:{proxy.port}/{target[1]}", unique_prefix("o")
    )
    direct = DatabaseURL.parse(POSTGRES_URL, url.prefix)
    try:
        with FakeUpstream.in_thread(api_key="sk-upstream") as fake:
            _outage_scenario(fake, url, direct, proxy, tmp_path)
    finally:
        proxy.down()
        db = Database.connect(direct)
        try:
            drop_all(db)
        finally:
            db.close()


def _outage_scenario(
    fake: FakeUpstream,
    url: DatabaseURL,
    direct: DatabaseURL,
    proxy: SwitchableProxy,
    tmp_path: Path,
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
            keys: [{{name: test, key: tg-test-key}}]
            observability: {{request_log: 'off'}}
            """
        )
    )
    ledger = SpooledLedger(url, tmp_path / "spool", flush_interval=0.05)
    gateway = Gateway.from_config(config, ledger=ledger)
    server = BackgroundServer(create_app(gateway)).start()

    def ask(n: int) -> str:
        response = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "small-model", "messages": [{"role": "user", "content": f"q{n}"}]},
            headers={"authorization": "Bearer tg-test-key"},
            timeout=20,
        )
        assert response.status_code == 200, response.text
        return response.headers["x-tiergate-request-id"]

    def wait_rows(expected: set[str]) -> Counter[str]:
        deadline = time.monotonic() + 20
        while True:
            rows = _ids(direct)
            if set(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)

    try:
        before = {ask(n) for n in range(5)}
        assert set(wait_rows(before)) == before
        proxy.down()  # PostgreSQL "goes away": connections cut, new ones refused
        during = {ask(n) for n in range(5, 25)}  # answers keep flowing
        time.sleep(0.5)
        assert not set(_ids(direct)) & during  # nothing of it could reach the database
        ready = httpx.get(f"{server.url}/health/ready", timeout=5).json()
        assert ready["status"] == "ready"
        assert ledger.spool.backlog() > 0 and ledger.last_error
        proxy.up()  # back on the same port
        rows = wait_rows(before | during)
        assert set(rows) == before | during
        assert max(rows.values()) == 1
        assert ledger.dropped == 0
    finally:
        server.stop()
