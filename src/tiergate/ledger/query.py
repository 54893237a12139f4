"""Reading the ledger: spend per key or route since a time, and rows for reports.

Filters are always parameters; the grouping column comes from a fixed list.
"""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.store.db import DatabaseURL
from tiergate.store.migrations import open_migrated

GROUPS = {"model": "model", "tier": "tier", "route": "route", "key": "key_name"}


@dataclass(frozen=True, slots=True)
class Row:
    """What a report needs of one ledger entry."""

    group: str | None
    cost_usd: float  # the answer plus sub-calls
    baseline_cost_usd: float
    cache: str
    cache_saved_usd: float
    latency_ms: float
    fallbacks: int
    status: int


class LedgerReader:
    """Synchronous queries (run them in a thread from async code)."""

    def __init__(self, url: DatabaseURL):
        self.db = open_migrated(url)  # a fresh database reads as an empty ledger

    def spend_since(self, scope: str, name: str, since: float) -> float:
        """USD booked to a key (`scope="key"`) or a route since `since` (unix seconds)."""
        column = "key_name" if scope == "key" else "route"
        rows = self.db.query(
            f"SELECT COALESCE(SUM(cost_usd + extra_cost_usd), 0) FROM {{p}}ledger"
            f" WHERE {column} = ? AND ts >= ?",
            (name, since),
        )
        return float(rows[0][0])

    def rows(
        self,
        *,
        since: float,
        until: float | None = None,
        by: str = "model",
        key: str | None = None,
        route: str | None = None,
        model: str | None = None,
    ) -> list[Row]:
        column = GROUPS[by]
        where = ["ts >= ?"]
        params: list[object] = [since]
        if until is not None:
            where.append("ts < ?")
            params.append(until)
        for name, value in (("key_name", key), ("route", route), ("model", model)):
            if value is not None:
                where.append(f"{name} = ?")
                params.append(value)
        result = self.db.query(
            f"SELECT {column}, cost_usd + extra_cost_usd, baseline_cost_usd, cache,"
            f" cache_saved_usd, latency_ms, fallbacks, status FROM {{p}}ledger"
            f" WHERE {' AND '.join(where)}",
            params,
        )
        return [
            Row(r[0], float(r[1]), float(r[2]), r[3], float(r[4]), float(r[5]), int(r[6]), r[7])
            for r in result
        ]

    def close(self) -> None:
        self.db.close()
