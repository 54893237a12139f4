"""Scratch databases for tests of the SQLite, PostgreSQL and Redis backends.

Each test gets its own table prefix (PostgreSQL) or key prefix (Redis), unique per
process and call, so parallel test processes never see each other's rows; everything
is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import drop_all

POSTGRES_URL = os.environ.get("TIERGATE_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TIERGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unique_prefix(stem: str = "t") -> str:
    """`t_<pid>_<random>_`: a table or key prefix no other test process uses."""
    return f"{stem}_{os.getpid()}_{uuid.uuid4().hex[:8]}_"


@contextmanager
def scratch_postgres() -> Iterator[DatabaseURL]:
    """A PostgreSQL URL with a fresh table prefix; its tables are dropped on exit."""
    url = DatabaseURL.parse(POSTGRES_URL, unique_prefix())
    try:
        yield url
    finally:
        db = Database.connect(url)
        try:
            drop_all(db)
        finally:
            db.close()


@contextmanager
def scratch_redis_prefix() -> Iterator[str]:
    """A Redis key prefix of its own; every key under it is deleted on exit."""
    import redis

    prefix = "tgtest:" + unique_prefix()
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
