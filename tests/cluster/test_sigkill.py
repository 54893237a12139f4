"""SIGKILL one of three instances under load: every request whose response completed has
exactly one ledger row, although the killed process never flushed its writer."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import KEY, Cluster, cluster, stop
from tiergate.fakes import FakeUpstream, Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


class Load:
    """Client threads spreading plain and streamed requests over the live instances."""

    def __init__(self, group: Cluster, clients: int, limit: int):
        self.group = group
        self.limit = limit  # bound the run in count as well as in time
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.completed: list[str] = []
        self.failed = 0
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, index: int) -> None:
        n = 0
        while not self.stop.is_set() and len(self.completed) < self.limit:
            n += 1
            try:
                self._one(self.group.next().url, stream=(index + n) % 2 == 0)
            except httpx.TransportError:  # the killed instance: a load balancer retries too
                with self.lock:
                    self.failed += 1

    def _one(self, url: str, stream: bool) -> None:
        body = {
            "model": "small-model",
            "messages": [{"role": "user", "content": "hello"}],
            "stream": stream,
        }
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {KEY}"},
            timeout=20,
        ) as response:
            request_id = response.headers.get("x-tiergate-request-id", "")
            text = response.read().decode()
        if response.status_code == 200 and (not stream or text.rstrip().endswith("[DONE]")):
            with self.lock:
                self.completed.append(request_id)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def test_sigkill_mid_load_loses_no_row_of_a_completed_request(tmp_path: Path) -> None:
    with FakeUpstream.in_thread(api_key="sk-upstream") as fake:
        fake.respond_with(lambda p: Reply(text="fine", delay_headers=0.02, stream_chunks=3))
        # Flushes every 30 s: the database sees nothing from the victim before it dies,
        # so each of its rows has to come back from its spool.
        with cluster(fake, tmp_path, spool=True, flush_interval=30) as group:
            victim = group.instances[1]
            with Load(group, clients=6, limit=600) as load:
                time.sleep(2.5)
                with load.lock:
                    before_kill = len(load.completed)
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(timeout=10)
                time.sleep(1.5)
            spool = tmp_path / "spool"
            deadline = time.monotonic() + 15  # a survivor adopts the victim's segments
            while any(p.name.startswith(f"{victim.proc.pid}-") for p in spool.iterdir()):
                assert time.monotonic() < deadline, sorted(p.name for p in spool.iterdir())
                time.sleep(0.2)
            replayed = sum(
                httpx.get(f"{i.url}/health/ready", timeout=5).json()["ledger"]["replayed"]
                for i in group.instances
                if i.alive()
            )
            for inst in group.instances:
                stop(inst)  # SIGTERM: the survivors write what they spooled
            rows = Counter(r[0] for r in group.ledger_rows())
    missing = [rid for rid in load.completed if rid not in rows]
    assert before_kill > 0 and replayed > 0
    assert not missing, f"{len(missing)} of {len(load.completed)} completed requests lost"
    assert max(rows.values()) == 1, [rid for rid, n in rows.items() if n > 1][:5]
    print(
        json.dumps(
            {
                "completed": len(load.completed),
                "rows": len(rows),
                "replayed_from_victim": replayed,
                "failed_connections": load.failed,
            }
        )
    )
