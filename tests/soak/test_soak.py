"""Soak: many requests with injected upstream failures on a route with fallbacks.

Every request must be answered correctly, the ledger must hold exactly one row per
request, and memory and file descriptors must stay flat. The default run sends 2,000
requests; `TIERGATE_SOAK=1` runs the 100,000-request version (figures in docs/security.md).
Everything stays on loopback: the gateway, the fake upstream and the clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import textwrap
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import three_tier_config
from tests.hardening.helpers import AUTH, sqlite_gateway
from tiergate.fakes import FakeUpstream, Fault, Reply

FAILURE_RATE = 0.10
FAULTS = (429, 500, 502, 503, 529)
CONCURRENCY = 8
STREAM_SHARE = 0.2

# Generous retries so that a request fails only if ~8 independent 10% faults line up
# (1e-8); a high circuit threshold so random bad luck never takes a tier out.
EXTRA = """
observability: {request_log: 'off'}
circuit: {failure_threshold: 12, cooldown: 1}
"""


def _config(fake: FakeUpstream) -> str:
    config = three_tier_config(fake, textwrap.dedent(EXTRA))
    return config.replace(
        "fallback: {retries: 1, backoff_base: 0.01, backoff_max: 0.05}",
        "fallback: {retries: 2, backoff_base: 0.001, backoff_max: 0.005, max_attempts: 9}",
    )


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Figures:
    requests: int = 0
    ok: int = 0
    wrong: list[str] = field(default_factory=list)
    samples: list[tuple[int, float, int]] = field(default_factory=list)  # (done, rss, fds)


class Injector:
    """Answers from the fake: a fault for ~10% of upstream calls, chosen by a seeded RNG."""

    def __init__(self, seed: int):
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls = 0
        self.faults = 0

    def __call__(self, prompt):
        with self._lock:
            self.calls += 1
            if self._rng.random() < FAILURE_RATE:
                self.faults += 1
                return Fault(status=self._rng.choice(FAULTS))
        return Reply(stream_chunks=3) if prompt.stream else Reply()


async def _drive(url: str, total: int, figures: Figures) -> None:
    counter = iter(range(total))
    sample_every = max(total // 20, 100)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for i in counter:
                stream = (i * 7919) % 100 < STREAM_SHARE * 100
                # unique prompts: the response cache must not answer in the upstream's place
                body = {
                    "model": "auto",
                    "messages": [{"role": "user", "content": f"soak request {i}"}],
                    "stream": stream,
                }
                response = await client.post("/v1/chat/completions", json=body)
                figures.requests += 1
                _check(i, stream, response, figures)
                if figures.requests % sample_every == 0:
                    figures.samples.append((figures.requests, _rss_mb(), _fds()))

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _check(i: int, stream: bool, response: httpx.Response, figures: Figures) -> None:
    # (ids are checked for uniqueness in the ledger: a set of 100,000 here would itself
    # look like a leak in the memory figures)
    if response.status_code != 200 or not response.headers.get("x-tiergate-request-id"):
        figures.wrong.append(f"{i}: {response.status_code} {response.text[:200]}")
        return
    if stream:
        lines = [ln for ln in response.text.splitlines() if ln.startswith("data: ")]
        text = "".join(
            (c.get("delta") or {}).get("content") or ""
            for ln in lines[:-1]
            for c in json.loads(ln[6:]).get("choices", [])
        )
        good = lines[-1] == "data: [DONE]" and bool(text)
    else:
        good = bool(response.json()["choices"][0]["message"]["content"])
    if good:
        figures.ok += 1
    else:
        figures.wrong.append(f"{i}: malformed answer {response.text[:200]}")


def run_soak(total: int, tmp_path) -> dict[str, float]:
    injector = Injector(seed=8)
    db = tmp_path / "soak.db"
    figures = Figures()
    with FakeUpstream.in_thread(api_key="sk-upstream", history_limit=1000) as fake:
        fake.respond_with(injector)
        with sqlite_gateway(_config(fake), db) as gw:
            started = time.monotonic()
            asyncio.run(_drive(gw.url, total, figures))
            elapsed = time.monotonic() - started
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM tiergate_ledger"
        ).fetchone()
        statuses = dict(
            conn.execute("SELECT status, COUNT(*) FROM tiergate_ledger GROUP BY status")
        )
        fallbacks = conn.execute("SELECT SUM(fallbacks) FROM tiergate_ledger").fetchone()[0]
        attempts = [
            a
            for (text,) in conn.execute("SELECT attempts FROM tiergate_ledger")
            for a in (text or "").split(",")
            if a
        ]
    # Every injected fault is an HTTP status; an attempt that failed without one (a timeout
    # on a starved machine) is a real failover too, but not one the injector caused.
    not_injected = sum(1 for a in attempts if a.rsplit(":", 1)[-1] == "error")

    warm = figures.samples[len(figures.samples) // 4]  # after warm-up: pools, caches, JIT-less
    last = figures.samples[-1]
    result = {
        "requests": total,
        "answered_ok": figures.ok,
        "ledger_rows": rows[0],
        "distinct_request_ids": rows[1],
        "upstream_calls": injector.calls,
        "injected_faults": injector.faults,
        "fallbacks_booked": fallbacks,
        "failovers_not_injected": not_injected,
        "seconds": round(elapsed, 1),
        "requests_per_second": round(total / elapsed),
        "rss_mb_after_warmup": round(warm[1], 1),
        "rss_mb_at_end": round(last[1], 1),
        "fds_after_warmup": warm[2],
        "fds_at_end": last[2],
        "rss_mb_samples": [round(rss) for _, rss, _ in figures.samples],
    }
    print("\nsoak figures:", json.dumps(result))
    assert not figures.wrong, figures.wrong[:5]
    assert figures.ok == total
    assert rows == (total, total), "one ledger row per request"
    assert statuses == {200: total}
    assert injector.faults > 0 and fallbacks == injector.faults + not_injected
    assert len(attempts) == fallbacks, "the ledger names every failed attempt"
    return result


def test_soak_2000(tmp_path):
    result = run_soak(2_000, tmp_path)
    assert result["rss_mb_at_end"] - result["rss_mb_after_warmup"] < 40
    assert result["fds_at_end"] - result["fds_after_warmup"] <= 8


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("TIERGATE_SOAK") != "1", reason="set TIERGATE_SOAK=1")
def test_soak_100k(tmp_path):
    result = run_soak(100_000, tmp_path)
    assert result["rss_mb_at_end"] - result["rss_mb_after_warmup"] < 40
    assert result["fds_at_end"] - result["fds_after_warmup"] <= 8
