"""The ledger: one entry per request, written off the request path."""

from tiergate.ledger.entry import Ledger, LedgerEntry, MemoryLedger

__all__ = ["Ledger", "LedgerEntry", "MemoryLedger"]
