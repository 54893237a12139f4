"""Opening a SQLite database that another connection holds a write lock on."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from tiergate.store.db import Database, DatabaseURL


def test_wal_is_switched_on_once_a_writer_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # a write lock, as a starting instance's migration has
    holder.execute("INSERT INTO t VALUES (1)")
    # SQLite refuses the switch to WAL at once under that lock, busy timeout or not.
    probe = sqlite3.connect(path, isolation_level=None, timeout=1)
    try:
        probe.execute("PRAGMA journal_mode=WAL")
        raise AssertionError("the lock did not get in the way: this test proves nothing")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
    finally:
        probe.close()
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        db = Database.connect(DatabaseURL.parse(f"sqlite:///{path}"))
        assert db.query("PRAGMA journal_mode") == [("wal",)]
        assert db.query("SELECT x FROM t") == [(1,)]
        db.close()
    finally:
        release.join()
        holder.close()
