"""Structured logs: one JSON line per request with its decision, through stdlib logging."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from tiergate.ledger import LedgerEntry
from tiergate.observability.redact import RedactingFilter, Redactor

REQUEST_LOGGER = "tiergate.requests"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


def _iso(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


def json_handler(stream: TextIO, redactor: Redactor) -> logging.Handler:
    """A stream handler writing redacted JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(redactor))
    return handler


def open_request_logger(target: str, redactor: Redactor) -> logging.Logger | None:
    """A private logger (not in logging's global registry, so gateways never share one)
    writing to ``target``: "stdout", "stderr", "off" or a file path."""
    if target == "off":
        return None
    logger = logging.Logger(REQUEST_LOGGER, logging.INFO)
    logger.propagate = False
    if target in ("stdout", "stderr"):
        handler = json_handler(sys.stdout if target == "stdout" else sys.stderr, redactor)
    else:
        handler = logging.FileHandler(target, encoding="utf-8", delay=True)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RedactingFilter(redactor))
    logger.addHandler(handler)
    return logger


def request_fields(entry: LedgerEntry) -> dict[str, Any]:
    """What one request's log line says: the decision summary, cost and timing."""
    return {
        "request_id": entry.request_id,
        "key": entry.key_name,
        "endpoint": entry.endpoint,
        "route": entry.route,
        "strategy": entry.strategy,
        "reasons": entry.reasons,
        "tier": entry.tier,
        "model": entry.model,
        "deployment": entry.deployment,
        "status": entry.status,
        "stream": entry.stream,
        "cache": entry.cache,
        "input_tokens": entry.input_tokens,
        "output_tokens": entry.output_tokens,
        "cost_usd": round(entry.cost_usd, 8),
        "baseline_cost_usd": round(entry.baseline_cost_usd, 8),
        "latency_ms": round(entry.latency_ms, 2),
        "upstream_ms": round(entry.upstream_ms, 2),
        "fallbacks": entry.fallbacks,
        "attempts": entry.attempts or None,
        "error": entry.error,
        "tags": entry.tags or None,
    }


def request_log_sink(logger: logging.Logger) -> Callable[[LedgerEntry], None]:
    """The ledger sink that writes each finished request's line."""

    def sink(entry: LedgerEntry) -> None:
        level = logging.WARNING if entry.status >= 500 else logging.INFO
        # makeRecord + handle rather than logger.log: skips the caller lookup (a stack walk
        # per line) that a request line, always written from here, does not need.
        record = logger.makeRecord(
            logger.name,
            level,
            __file__,
            0,
            "request",
            (),
            None,
            extra={"fields": request_fields(entry)},
        )
        logger.handle(record)

    return sink
