"""Database URLs and connections, SQLite or PostgreSQL, with one SQL text for both.

Every statement in tiergate is written once with `?` placeholders; `Database.sql` turns
them into `%s` for psycopg. Values always travel as parameters, never inside the text:
only table names (from a validated prefix) are formatted in.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal, Protocol

from tiergate.errors import ConfigError

Dialect = Literal["sqlite", "postgresql"]
PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """What we use of a DB-API connection (sqlite3 and psycopg both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    dialect: Dialect
    target: str  # a file path for SQLite, a libpq conninfo URL for PostgreSQL
    prefix: str = "tiergate_"

    @classmethod
    def parse(cls, url: str, prefix: str = "tiergate_") -> DatabaseURL:
        """`sqlite:///relative.db`, `sqlite:////abs/path.db`, `postgresql://…`."""
        if not PREFIX.match(prefix):
            raise ConfigError([f"table prefix {prefix!r} must match {PREFIX.pattern}"])
        if url.startswith("sqlite:///"):
            return cls("sqlite", url[len("sqlite:///") :] or "tiergate.db", prefix)
        if url.startswith(("postgresql://", "postgres://")):
            return cls("postgresql", url, prefix)
        raise ConfigError(
            [
                f"database url {url.split('://')[0]!r}:// is not supported (sqlite:///, postgresql://)"
            ]
        )

    def describe(self) -> str:
        """The URL without credentials, for messages."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.target}"
        return re.sub(r"//[^@/]*@", "//", self.target)


# Rows per multi-row statement: binding them holds the GIL with no break (C code), so a
# statement of thousands of values would stall the event loop for milliseconds.
_MOST_ROWS = 64
_BUSY_TIMEOUT = 10.0  # seconds a SQLite connection waits for another's lock


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (kept in the file: later connections find it so).

    Switching takes an exclusive lock, and when several processes open a new file at once
    SQLite may answer "database is locked" at once instead of waiting on the busy timeout
    (it does not wait for a lock it could deadlock on). So: try again, within that timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Database:
    """One connection plus the dialect's SQL quirks. Used from one thread at a time."""

    def __init__(self, url: DatabaseURL, conn: Any):
        self.url = url
        self.conn = conn
        self.dialect: Dialect = url.dialect
        self.prefix = url.prefix
        self._multi_row: dict[tuple[str, int], str] = {}

    @classmethod
    def connect(cls, url: DatabaseURL) -> Database:
        if url.dialect == "sqlite":
            if url.target != ":memory:":
                Path(url.target).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                url.target, timeout=_BUSY_TIMEOUT, check_same_thread=False, isolation_level=None
            )
            # WAL: readers (reports, key reloads) never block the writer, nor it them.
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            return cls(url, conn)
        import psycopg

        return cls(url, psycopg.connect(url.target, autocommit=True))

    def sql(self, text: str) -> str:
        """Table names filled in (`{p}` is the prefix) and placeholders for the dialect."""
        text = text.replace("{p}", self.prefix)
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(text), params)

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.execute(text, params).fetchall()]

    def insert_many(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Every row through `text`, an `INSERT … VALUES (?, …)` statement.

        On SQLite the rows go in as few multi-row statements (`VALUES (…), (…), …`, in
        power-of-two groups so that few distinct statements are prepared), not one
        statement per row: sqlite3 releases and retakes the GIL around every statement,
        and a thread that wants the GIL back while the event loop runs Python waits up to
        the switch interval for it. 256 rows one by one took ~150 ms of the writer's time
        against a busy loop, and forced the loop to hand the GIL over 256 times; in
        statements of 64 rows, a few milliseconds and four times. PostgreSQL takes them
        through `executemany`.
        """
        if self.dialect != "sqlite" or len(rows) < 2:
            self.executemany(text, rows)
            return
        sql = self.sql(text)
        head, found, one = sql.rpartition(" VALUES ")
        if not found:
            raise ValueError("insert_many needs an INSERT … VALUES (…) statement")
        limit = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        most = max(1, min(_MOST_ROWS, limit // max(1, len(rows[0]))))
        at = 0
        while at < len(rows):
            n = min(most, 1 << ((len(rows) - at).bit_length() - 1))
            statement = self._multi_row.get((sql, n))
            if statement is None:
                statement = f"{head} VALUES {', '.join([one] * n)}"
                self._multi_row[(sql, n)] = statement
            self.conn.execute(statement, list(chain.from_iterable(rows[at : at + n])))
            at += n

    def executemany(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        sql = self.sql(text)
        if self.dialect == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def transaction(self) -> Any:
        """A context manager: one transaction (BEGIN IMMEDIATE on SQLite: take the write lock)."""
        if self.dialect == "sqlite":
            return _SqliteTransaction(self.conn)
        return self.conn.transaction()

    def close(self) -> None:
        self.conn.close()


class _SqliteTransaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, t: object, e: object, tb: object) -> None:
        self.conn.execute("COMMIT" if t is None else "ROLLBACK")
