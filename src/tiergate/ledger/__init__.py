"""The ledger: one entry per request, written off the request path."""

from tiergate.ledger.entry import Ledger, LedgerEntry, MemoryLedger, SubCall
from tiergate.ledger.writer import DatabaseLedger

__all__ = ["DatabaseLedger", "Ledger", "LedgerEntry", "MemoryLedger", "SubCall", "open_ledger"]


def open_ledger(
    url: str,
    *,
    table_prefix: str,
    batch_size: int,
    flush_interval: float,
    spool_dir: str | None = None,
    spool_fsync: bool = False,
) -> Ledger:
    """The ledger a config asks for: `memory://`, `sqlite:///…` or `postgresql://…`,
    through a spool on local disk when `spool_dir` is given."""
    if url.startswith("memory://"):
        return MemoryLedger()
    from tiergate.store.db import DatabaseURL

    if spool_dir is not None:
        from tiergate.cluster.spooled_ledger import SpooledLedger

        return SpooledLedger(
            DatabaseURL.parse(url, table_prefix),
            spool_dir,
            batch_size=batch_size,
            flush_interval=flush_interval,
            fsync=spool_fsync,
        )

    return DatabaseLedger(
        DatabaseURL.parse(url, table_prefix), batch_size=batch_size, flush_interval=flush_interval
    )
