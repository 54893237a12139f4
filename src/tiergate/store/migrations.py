"""Schema migrations for the ledger and the key store, versioned in `<prefix>migrations`.

Each migration is a list of statements valid on both SQLite and PostgreSQL (types chosen
from their common subset). They run once, in order, under a lock, so several gateway
processes starting together apply each one exactly once.
"""

from __future__ import annotations

import time

from tiergate.store.db import Database, DatabaseURL

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "ledger and keys",
        (
            """CREATE TABLE IF NOT EXISTS {p}ledger (
                request_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                key_name TEXT,
                route TEXT NOT NULL,
                strategy TEXT NOT NULL,
                reasons TEXT NOT NULL,
                model TEXT,
                tier TEXT,
                deployment TEXT,
                input_tokens BIGINT NOT NULL,
                output_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                cost_usd DOUBLE PRECISION NOT NULL,
                extra_cost_usd DOUBLE PRECISION NOT NULL,
                baseline_model TEXT,
                baseline_cost_usd DOUBLE PRECISION NOT NULL,
                cache_saved_usd DOUBLE PRECISION NOT NULL,
                latency_ms DOUBLE PRECISION NOT NULL,
                ttft_ms DOUBLE PRECISION,
                upstream_ms DOUBLE PRECISION NOT NULL,
                status INTEGER NOT NULL,
                error TEXT,
                fallbacks INTEGER NOT NULL,
                attempts TEXT NOT NULL,
                cache TEXT NOT NULL,
                cache_match TEXT,
                stream INTEGER NOT NULL,
                tags TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                sub_calls TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS {p}ledger_ts ON {p}ledger (ts)",
            "CREATE INDEX IF NOT EXISTS {p}ledger_key_ts ON {p}ledger (key_name, ts)",
            "CREATE INDEX IF NOT EXISTS {p}ledger_route_ts ON {p}ledger (route, ts)",
            "CREATE INDEX IF NOT EXISTS {p}ledger_request ON {p}ledger (request_id)",
            """CREATE TABLE IF NOT EXISTS {p}keys (
                name TEXT PRIMARY KEY,
                key_hash TEXT NOT NULL UNIQUE,
                hint TEXT NOT NULL,
                budget_usd DOUBLE PRECISION,
                period TEXT,
                rpm INTEGER,
                tpm INTEGER,
                models TEXT NOT NULL,
                tiers TEXT NOT NULL,
                routes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION
            )""",
        ),
    ),
    (
        2,
        "prompts of routes with record_prompts",
        (
            """CREATE TABLE IF NOT EXISTS {p}prompts (
                request_id TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                route TEXT NOT NULL,
                prompt TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS {p}prompts_request ON {p}prompts (request_id)",
        ),
    ),
)


def migrate(db: Database) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    with db.transaction():
        if db.dialect == "postgresql":
            # Held until the transaction ends: concurrent starters wait, then see the rows
            # (even CREATE TABLE IF NOT EXISTS races without it).
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (db.prefix + "migrations",))
        db.execute(
            "CREATE TABLE IF NOT EXISTS {p}migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {int(r[0]) for r in db.query("SELECT version FROM {p}migrations")}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO {p}migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
    return max(v for v, _, _ in MIGRATIONS)


def drop_all(db: Database) -> None:
    """Remove every table of this prefix (tests clean up with it)."""
    for table in ("ledger", "keys", "prompts", "migrations"):
        db.execute(f"DROP TABLE IF EXISTS {{p}}{table}")


def open_migrated(url: DatabaseURL) -> Database:
    """A connection to `url` whose schema is up to date (a fresh database is created)."""
    db = Database.connect(url)
    migrate(db)
    return db
