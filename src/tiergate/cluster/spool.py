"""Append-only spool files: a ledger row is on local disk before its response completes.

A batched database writer keeps rows in memory until the next flush, so a process killed
with SIGKILL (OOM killer, liveness probe, `kill -9`) loses them although their clients
got complete answers. The spool closes that gap: `SpooledLedger.record` (called on the
request path, before the last byte of the response is sent) appends the row as one JSON
line to this process's current segment with one `write(2)` on an `O_APPEND` descriptor.
Once `write` returns, the row survives the death of the process: it is in the kernel's
page cache and reaches the disk without us. (Surviving a power cut of the host too needs
`spool_fsync: true`: one `fsync` per row, on the request path.)

Segments are named `<pid>-<random>-<n>.jsonl` and each holds an exclusive `flock` for as
long as its owner lives; the kernel drops the lock when the process dies, however it
dies. That is how orphans are found: any process sharing the directory (a surviving
instance on the same host, or the restarted one) periodically tries to lock every
segment it does not own, and replays the ones it can lock, then deletes them. Replays
are idempotent: rows whose `request_id` the ledger already holds are skipped, so a row
written by the dead owner just before it died is never booked twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("tiergate.spool")

SUFFIX = ".jsonl"


@dataclass(eq=False)
class Segment:
    """One spool file: appended to by the event loop, read by the writer thread."""

    path: Path
    fd: int
    written: int = 0  # bytes appended (the appender's view; a plain int: atomic to read)
    read: int = 0  # bytes the writer has put in the database
    entries: int = 0
    sealed: bool = False  # no more appends: delete it once `read == written`


Row = tuple[Any, ...]
Record = tuple[Row, Row | None]  # a ledger row and its prompt row (routes with record_prompts)


def encode(row: Row, prompt: Row | None = None) -> bytes:
    """One line: `[ledger row, prompt row or null]`."""
    return orjson.dumps([row, prompt]) + b"\n"


def decode(chunk: bytes) -> tuple[list[Record], int]:
    """Complete lines of `chunk` as records, and how many bytes they took. A last line
    without its newline is a write cut short by a crash: it was never acknowledged."""
    end = chunk.rfind(b"\n") + 1
    records: list[Record] = []
    for line in chunk[:end].splitlines():
        if line:
            try:
                row, prompt = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError):  # a torn line; skip it
                log.warning("skipping an unreadable spool line (%d bytes)", len(line))
                continue
            records.append((tuple(row), tuple(prompt) if prompt is not None else None))
    return records, end


class Spool:
    """This process's segments in `directory`, plus finding other processes' orphans."""

    def __init__(self, directory: str | Path, *, segment_entries: int = 4096, fsync: bool = False):
        self.directory = Path(directory)
        self.segment_entries = segment_entries
        self.fsync = fsync
        self.stem = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.segments: deque[Segment] = deque()
        self._count = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()

    def _rotate(self) -> Segment:
        if self.segments:
            self.segments[-1].sealed = True
        self._count += 1
        path = self.directory / f"{self.stem}-{self._count:06d}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours for as long as we live
        segment = Segment(path, fd)
        self.segments.append(segment)
        return segment

    def append(self, line: bytes) -> None:
        """One `write(2)`; raises `OSError` (disk full, …) for the caller to handle."""
        segment = self.segments[-1]
        if segment.entries >= self.segment_entries:
            segment = self._rotate()
        written = os.write(segment.fd, line)
        if written != len(line):  # only on a full disk; the torn line is skipped on read
            raise OSError(f"short write to the ledger spool ({written} of {len(line)} bytes)")
        if self.fsync:
            os.fsync(segment.fd)
        segment.entries += 1
        segment.written += written

    def pending(self, segment: Segment, limit: int = 1 << 20) -> bytes:
        """Up to `limit` bytes the writer has not consumed yet (from the writer thread);
        bounded so that a long database outage's backlog is not read into memory at once."""
        size = min(segment.written - segment.read, limit)
        return os.pread(segment.fd, size, segment.read) if size > 0 else b""

    def retire(self, segment: Segment) -> None:
        """Delete a sealed, fully written segment."""
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.fd)
        self.segments.remove(segment)

    def backlog(self) -> int:
        """Bytes appended but not yet in the database."""
        return sum(s.written - s.read for s in list(self.segments))

    def close(self) -> None:
        """Delete segments fully in the database; leave (and unlock) the rest for a replay."""
        for segment in list(self.segments):
            if segment.read >= segment.written:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            os.close(segment.fd)
        self.segments.clear()

    # -- orphans -----------------------------------------------------------------------------

    def orphans(self) -> list[Path]:
        own = {s.path for s in self.segments}
        return sorted(p for p in self.directory.glob(f"*{SUFFIX}") if p not in own)

    @staticmethod
    @contextlib.contextmanager
    def claim(path: Path) -> Any:
        """Yields the orphan's bytes while holding its lock, or None when it is not an
        orphan (its owner lives, or another process already replayed it)."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None  # the owner is alive
                return
            if os.fstat(fd).st_nlink == 0:
                yield None  # replayed and deleted between our listing and our lock
                return
            size = os.fstat(fd).st_size
            yield os.pread(fd, size, 0) if size else b""
        finally:
            os.close(fd)
