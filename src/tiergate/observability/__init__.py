"""Seeing the gateway work: metrics, request logs, traces, the dashboard's data and quality
monitoring. Everything here is fed by the ledger sinks of `Gateway.book`."""
