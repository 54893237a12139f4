from collections.abc import Iterator
from pathlib import Path

import pytest

from tiergate.store.db import DatabaseURL
from tiergate.store.testing import scratch_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseURL]:
    """The same test against a SQLite file and against the real PostgreSQL server."""
    if request.param == "sqlite":
        yield DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        with scratch_postgres() as url:
            yield url
