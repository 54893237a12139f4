"""Databases behind the ledger and the key store: SQLite by default, PostgreSQL when configured."""
