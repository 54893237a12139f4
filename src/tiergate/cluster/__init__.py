"""Running many gateway instances on shared Redis and PostgreSQL: shared circuit breakers,
a shared semantic cache, degraded service while Redis is away, and the ledger spool."""
