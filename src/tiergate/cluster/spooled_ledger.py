"""A database ledger whose queue is a spool on local disk (`ledger.spool_dir`).

`record` appends the row to the spool (`tiergate.cluster.spool`) and returns; nothing is
kept in memory. A writer thread reads what was appended, inserts it into SQLite or
PostgreSQL in transactions of up to `batch_size` rows, and deletes segments once all
their rows are in. So:

- a response that completed has its row on disk (the ingress books before the last
  byte is sent), and a SIGKILL loses nothing: the segment is replayed by whichever
  process sharing the directory locks it first;
- while the database is unreachable rows accumulate on disk, not in memory, and are
  written when it returns — never dropped (a full disk is the only limit: then rows are
  kept in memory, bounded, and counted);
- every insert skips rows whose `request_id` is already in the ledger (one indexed query
  per batch), so replaying a segment that was partly written never books a row twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from pathlib import Path

from tiergate.cluster.spool import Record, Segment, Spool, decode, encode
from tiergate.ledger.entry import LedgerEntry
from tiergate.ledger.rows import INSERT, INSERT_PROMPT, prompt_row, to_row
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import open_migrated

log = logging.getLogger("tiergate.ledger")

_ORPHAN_SCAN = 1.0  # seconds between looks for dead processes' segments
_MAX_BACKOFF = 5.0


class SpooledLedger:
    def __init__(
        self,
        url: DatabaseURL,
        spool_dir: str | Path,
        *,
        batch_size: int = 256,
        flush_interval: float = 0.25,
        fsync: bool = False,
        max_memory: int = 200_000,
        close_timeout: float = 10.0,
    ):
        self.url = url
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.spool = Spool(spool_dir, fsync=fsync)
        self.written = 0
        self.replayed = 0  # rows inserted from other (dead) processes' segments
        self.skipped = 0  # replayed rows the ledger already had
        self.dropped = 0
        self.spool_errors = 0
        self.last_error: str | None = None
        self._max_memory = max_memory
        self.close_timeout = close_timeout
        self._memory: deque[Record] = deque()  # only when the disk refuses rows
        self._db: Database | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._next_scan = 0.0
        self._next_flush = 0.0

    # -- the request path --------------------------------------------------------------------

    def record(self, entry: LedgerEntry) -> None:
        """Append to the spool; never raises (a failing disk degrades to memory)."""
        record = (to_row(entry), prompt_row(entry))
        try:
            self.spool.append(encode(*record))
        except OSError as exc:
            self.spool_errors += 1
            if self.spool_errors % 1000 == 1:
                log.error("ledger spool write failed, keeping rows in memory: %s", exc)
            if len(self._memory) >= self._max_memory:
                self.dropped += 1
                return
            self._memory.append(record)
        segment = self.spool.segments[-1]
        if segment.written - segment.read >= self.batch_size * 512 and not self._wake.is_set():
            self._wake.set()  # a large backlog: do not wait for the interval

    def describe(self) -> dict[str, object]:
        """For `/health/ready`: how far behind the database is, and why."""
        return {
            "spool_backlog_bytes": self.spool.backlog(),
            "written": self.written,
            "replayed": self.replayed,
            "dropped": self.dropped,
            "database": "down" if self._failures else "up",
            "last_error": self.last_error,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None:
            return
        self.spool.open()
        try:
            self._db = await asyncio.to_thread(self._open)
        except Exception as exc:  # serve anyway: rows wait on disk until the database is back
            self._note_failure(exc)
        self._thread = threading.Thread(target=self._run, name="tiergate-ledger", daemon=True)
        self._thread.start()

    def _open(self) -> Database:
        return open_migrated(self.url)

    async def flush(self, within: float = 30.0) -> bool:
        """Wait until everything recorded so far is in the database; False on timeout."""
        if self._thread is None:
            return True
        self._wake.set()
        return await asyncio.to_thread(self._wait_idle, within)

    def _wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.spool.backlog() or self._memory:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.1))
        return True

    async def close(self) -> None:
        """Write what is spooled (for up to `close_timeout` seconds while the database is
        down; what is left stays on disk for the next process to replay)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        await asyncio.to_thread(self._wait_idle, self.close_timeout)
        self._stop.set()
        self._wake.set()
        await asyncio.to_thread(thread.join)
        self.spool.close()
        if self._memory:
            self.dropped += len(self._memory)
            log.error("ledger: %d rows held in memory could not be written", len(self._memory))

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            # Wake for the orphan scan too, however long the flush interval is.
            until_scan = max(self._next_scan - time.monotonic(), 0.0)
            woken = self._wake.wait(min(self._backoff(), until_scan))
            self._wake.clear()
            try:
                if woken or self._failures or time.monotonic() >= self._next_flush:
                    self._next_flush = time.monotonic() + self.flush_interval
                    self._drain()
                if time.monotonic() >= self._next_scan:
                    self._next_scan = time.monotonic() + _ORPHAN_SCAN
                    self._adopt_orphans()
                self._failures = 0
            except Exception as exc:  # any driver error: reconnect and retry, rows stay spooled
                self._note_failure(exc)
                self._reset()
            with self._idle:
                self._idle.notify_all()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _backoff(self) -> float:
        if not self._failures:
            return self.flush_interval
        return min(self.flush_interval * 2 ** min(self._failures, 8), _MAX_BACKOFF)

    def _note_failure(self, exc: Exception) -> None:
        self._failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning("ledger database unreachable, rows wait in the spool: %s", exc)

    def _database(self) -> Database:
        if self._db is None:
            self._db = self._open()
        return self._db

    def _drain(self) -> None:
        """Insert everything appended to our own segments, in order."""
        for segment in list(self.spool.segments):
            self._drain_segment(segment)
            if segment.sealed and segment.read >= segment.written:
                self.spool.retire(segment)
        while self._memory:
            batch = [self._memory[i] for i in range(min(self.batch_size, len(self._memory)))]
            self._insert(batch)
            for _ in batch:
                self._memory.popleft()

    def _drain_segment(self, segment: Segment) -> None:
        while segment.read < segment.written:
            rows, used = decode(self.spool.pending(segment))
            if not used:
                return
            for start in range(0, len(rows), self.batch_size):
                self._insert(rows[start : start + self.batch_size])
            segment.read += used

    def _insert(self, records: list[Record], *, replay: bool = False) -> None:
        """Insert rows whose request id is not in the ledger yet, in one transaction."""
        db = self._database()
        ids = [row[0] for row, _ in records]
        marks = ", ".join("?" for _ in ids)
        with db.transaction():
            present = {
                r[0]
                for r in db.query(
                    f"SELECT request_id FROM {{p}}ledger WHERE request_id IN ({marks})", ids
                )
            }
            fresh = [(row, prompt) for row, prompt in records if row[0] not in present]
            if fresh:
                db.insert_many(INSERT, [row for row, _ in fresh])
                prompts = [prompt for _, prompt in fresh if prompt is not None]
                if prompts:
                    db.insert_many(INSERT_PROMPT, prompts)
        if replay:
            self.replayed += len(fresh)
            self.skipped += len(records) - len(fresh)
        else:
            self.written += len(fresh)

    def _adopt_orphans(self) -> None:
        """Replay and delete segments whose process has died."""
        for path in self.spool.orphans():
            with Spool.claim(path) as data:
                if data is None:
                    continue
                rows, _ = decode(data)
                for start in range(0, len(rows), self.batch_size):
                    self._insert(rows[start : start + self.batch_size], replay=True)
                path.unlink()
                log.warning("ledger: replayed %d rows from %s", len(rows), path.name)

    def _reset(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except Exception:  # the connection is already broken; nothing to release
                log.debug("closing a broken ledger connection failed", exc_info=True)
