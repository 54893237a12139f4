"""What durability costs the request path: `SpooledLedger.record()` per row.

Run: .venv/bin/python bench/bench_spool.py   (prints microseconds per row; no assertions)
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tiergate.cluster.spooled_ledger import SpooledLedger
from tiergate.ledger import LedgerEntry
from tiergate.store.db import DatabaseURL


def _entry(n: int) -> LedgerEntry:
    return LedgerEntry(
        request_id=f"bench-{n}",
        ts=time.time(),
        key_name="bench",
        route="auto",
        strategy="rules",
        reasons="rules: bench",
        model="small-model",
        tier="budget",
        deployment="small-model@up",
        input_tokens=100,
        output_tokens=20,
        cost_usd=0.00001,
    )


async def _run(folder: Path, rows: int) -> float:
    url = DatabaseURL.parse(f"sqlite:///{folder / 'ledger.db'}")
    ledger = SpooledLedger(url, folder / "spool", flush_interval=0.05)
    await ledger.start()
    entries = [_entry(n) for n in range(rows)]
    started = time.perf_counter()
    for entry in entries:
        ledger.record(entry)
    per_row = (time.perf_counter() - started) / rows
    await ledger.close()
    return per_row


def main() -> None:
    samples = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as folder:
            samples.append(asyncio.run(_run(Path(folder), 5000)))
    print(
        f"spooled record(): median {statistics.median(samples) * 1e6:.1f} us per row "
        f"(min {min(samples) * 1e6:.1f}, max {max(samples) * 1e6:.1f}; 5 runs x 5,000 rows)"
    )


if __name__ == "__main__":
    main()
