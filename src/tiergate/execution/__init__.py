"""Execution: turning a routing decision into an answer (retries, failover, cascade,
speculative), with per-deployment health."""
