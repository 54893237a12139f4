"""The ledger: one entry per request, written off the request path."""

from tiergate.ledger.entry import Ledger, LedgerEntry, MemoryLedger, SubCall
from tiergate.ledger.writer import DatabaseLedger

__all__ = ["DatabaseLedger", "Ledger", "LedgerEntry", "MemoryLedger", "SubCall", "open_ledger"]


def open_ledger(url: str, *, table_prefix: str, batch_size: int, flush_interval: float) -> Ledger:
    """The ledger a config asks for: `memory://`, `sqlite:///…` or `postgresql://…`."""
    if url.startswith("memory://"):
        return MemoryLedger()
    from tiergate.store.db import DatabaseURL

    return DatabaseLedger(
        DatabaseURL.parse(url, table_prefix), batch_size=batch_size, flush_interval=flush_interval
    )
