"""`Database.insert_many`: every row, in order, whatever the batch size (SQLite groups
rows into multi-row statements; PostgreSQL takes them one by one)."""

from __future__ import annotations

import sqlite3

import pytest

from tiergate.store.db import Database, DatabaseURL

INSERT = "INSERT INTO {p}many_rows (n, label, value) VALUES (?, ?, ?)"


def _rows(count: int) -> list[tuple[int, str | None, float | None]]:
    return [
        (i, None if i % 7 == 0 else f"row {i} \u2192 é", None if i % 5 == 0 else i / 3)
        for i in range(count)
    ]


@pytest.fixture
def db(db_url: DatabaseURL):
    database = Database.connect(db_url)
    database.execute("DROP TABLE IF EXISTS {p}many_rows")
    database.execute(
        "CREATE TABLE {p}many_rows (n INTEGER NOT NULL, label TEXT, value DOUBLE PRECISION)"
    )
    try:
        yield database
    finally:
        database.execute("DROP TABLE IF EXISTS {p}many_rows")
        database.close()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 255, 256, 257, 1100])
def test_every_row_arrives_in_order(db: Database, count: int):
    rows = _rows(count)
    with db.transaction():
        db.insert_many(INSERT, rows)
    assert db.query("SELECT n, label, value FROM {p}many_rows ORDER BY n") == rows


def test_sqlite_keeps_under_its_variable_limit(tmp_path):
    db = Database.connect(DatabaseURL.parse(f"sqlite:///{tmp_path / 'x.db'}"))
    db.execute("CREATE TABLE {p}many_rows (n INTEGER NOT NULL, label TEXT, value REAL)")
    db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # three rows per statement
    rows = _rows(50)
    with db.transaction():
        db.insert_many(INSERT, rows)
    assert db.query("SELECT n, label, value FROM {p}many_rows ORDER BY n") == rows
    # groups of at most three rows, and few distinct statements prepared
    assert {n for _, n in db._multi_row} <= {2, 3}
    db.close()


def test_a_failing_row_fails_the_whole_transaction(db: Database):
    db.execute("CREATE UNIQUE INDEX {p}many_rows_n ON {p}many_rows (n)")
    import psycopg

    rows = [*_rows(10), (3, "again", 1.0)]
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        with db.transaction():
            db.insert_many(INSERT, rows)
    assert db.query("SELECT count(*) FROM {p}many_rows") == [(0,)]


def test_only_insert_statements_are_taken(tmp_path):
    db = Database.connect(DatabaseURL.parse(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ValueError):
        db.insert_many("DELETE FROM {p}many_rows WHERE n = ?", [(1,), (2,)])
    db.close()
