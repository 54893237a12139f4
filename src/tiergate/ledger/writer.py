"""The database ledger: `record` enqueues, a writer thread inserts in batches.

The request path only appends to a deque (no await, no I/O, no lock). One thread owns the
connection; it wakes every `flush_interval`, or as soon as `batch_size` entries wait, and
inserts what has queued up in transactions of up to `batch_size`. Waking per batch rather
than per entry matters: a `queue.Queue` wakes the thread on every request, and each wake-up
costs the event loop a lock handoff and a GIL switch (a sixth of a request's CPU time
in bench/). `flush()` and `close()` wake it at once: every entry recorded before shutdown
reaches the database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tiergate.ledger.entry import LedgerEntry
from tiergate.ledger.rows import INSERT, INSERT_PROMPT, prompt_row, to_row
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import open_migrated

log = logging.getLogger("tiergate.ledger")

_RETRIES = 5


@dataclass(eq=False)
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class DatabaseLedger:
    """Ledger in SQLite (WAL) or PostgreSQL, written by a dedicated thread."""

    def __init__(
        self,
        url: DatabaseURL,
        *,
        batch_size: int = 256,
        flush_interval: float = 0.25,
        max_pending: int = 200_000,
    ):
        self.url = url
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.written = 0
        self.dropped = 0
        self._max_pending = max_pending
        # deque append/popleft are atomic under the GIL: the one lock left is the wake-up.
        self._pending: deque[object] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: Database | None = None

    def record(self, entry: LedgerEntry) -> None:
        """Enqueue; never blocks. When the database has been down long enough to fill the
        queue, the entry is dropped and counted (memory must stay bounded)."""
        pending = self._pending
        if len(pending) >= self._max_pending:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("ledger queue full: %d entries dropped so far", self.dropped)
            return
        pending.append(entry)
        if len(pending) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    async def start(self) -> None:
        if self._thread is not None:
            return
        self._db = await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._run, name="tiergate-ledger", daemon=True)
        self._thread.start()

    def _open(self) -> Database:
        return open_migrated(self.url)

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the database."""
        if self._thread is None:
            return
        marker = _Flush()
        self._pending.append(marker)
        self._wake.set()
        await asyncio.to_thread(marker.done.wait)

    async def close(self) -> None:
        """Flush everything recorded so far, then close the connection."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._pending.append(_STOP)
        self._wake.set()
        await asyncio.to_thread(thread.join)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stop = self._drain()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _drain(self) -> bool:
        """Write everything queued, in order; True once the stop marker is reached."""
        pending = self._pending
        batch: list[LedgerEntry] = []
        while pending:
            item = pending.popleft()
            if isinstance(item, LedgerEntry):
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._write(batch)
                    batch = []
                continue
            if batch:  # a marker: what came before it is written first
                self._write(batch)
                batch = []
            if isinstance(item, _Flush):
                item.done.set()
            elif item is _STOP:
                return True
        if batch:
            self._write(batch)
        return False

    def _write(self, batch: list[LedgerEntry]) -> None:
        rows = [to_row(e) for e in batch]
        prompts = [row for row in map(prompt_row, batch) if row is not None]
        for attempt in range(_RETRIES):
            try:
                if self._db is None:
                    self._db = self._open()
                with self._db.transaction():
                    self._db.insert_many(INSERT, rows)
                    if prompts:
                        self._db.insert_many(INSERT_PROMPT, prompts)
                self.written += len(rows)
                return
            except Exception as exc:  # any driver error: reconnect and retry, below
                log.warning("ledger write failed (attempt %d): %s", attempt + 1, exc)
                self._reset()
                time.sleep(min(self.flush_interval * 2**attempt, 5.0))
        self.dropped += len(rows)
        log.error("ledger: %d entries lost after %d failed writes", len(rows), _RETRIES)

    def _reset(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except Exception:  # the connection is already broken; nothing to release
                log.debug("closing a broken ledger connection failed", exc_info=True)
