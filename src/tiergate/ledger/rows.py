"""A `LedgerEntry` as a database row and back; the column order of `<prefix>ledger`."""

from __future__ import annotations

from typing import Any

import orjson

from tiergate.ledger.entry import LedgerEntry, SubCall

COLUMNS: tuple[str, ...] = (
    "request_id",
    "ts",
    "key_name",
    "route",
    "strategy",
    "reasons",
    "model",
    "tier",
    "deployment",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "extra_cost_usd",
    "baseline_model",
    "baseline_cost_usd",
    "cache_saved_usd",
    "latency_ms",
    "ttft_ms",
    "upstream_ms",
    "status",
    "error",
    "fallbacks",
    "attempts",
    "cache",
    "cache_match",
    "stream",
    "tags",
    "endpoint",
    "sub_calls",
)

INSERT = (
    f"INSERT INTO {{p}}ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
SELECT = f"SELECT {', '.join(COLUMNS)} FROM {{p}}ledger"
# Prompts of routes with `record_prompts`, apart from the ledger rows (see LedgerEntry.prompt).
INSERT_PROMPT = "INSERT INTO {p}prompts (request_id, ts, route, prompt) VALUES (?, ?, ?, ?)"


def to_row(e: LedgerEntry) -> tuple[Any, ...]:
    """The row for `INSERT`; NUL characters (which PostgreSQL refuses in text) become U+FFFD."""
    row = _values(e)
    # One scan of the row's text for the rare NUL, rather than one test per column.
    if "\x00" in "".join([v for v in row if type(v) is str]):
        return tuple(
            v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in row
        )
    return row


_EMPTY = "[]"


def prompt_row(e: LedgerEntry) -> tuple[Any, ...] | None:
    """The row for `INSERT_PROMPT`, or None when the entry carries no prompt."""
    if e.prompt is None:
        return None
    return (e.request_id, e.ts, e.route, e.prompt.replace("\x00", "\ufffd"))


def _values(e: LedgerEntry) -> tuple[Any, ...]:
    return (
        e.request_id,
        e.ts,
        e.key_name,
        e.route,
        e.strategy,
        e.reasons,
        e.model,
        e.tier,
        e.deployment,
        e.input_tokens,
        e.output_tokens,
        e.cached_tokens,
        e.cost_usd,
        e.extra_cost_usd,
        e.baseline_model,
        e.baseline_cost_usd,
        e.cache_saved_usd,
        e.latency_ms,
        e.ttft_ms,
        e.upstream_ms,
        e.status,
        e.error,
        e.fallbacks,
        e.attempts,
        e.cache,
        e.cache_match,
        int(e.stream),
        orjson.dumps(e.tags).decode() if e.tags else _EMPTY,
        e.endpoint,
        _sub_calls_json(e.sub_calls),
    )


def _sub_calls_json(calls: list[SubCall]) -> str:
    return orjson.dumps([_sub_call_json(c) for c in calls]).decode() if calls else _EMPTY


def _sub_call_json(c: SubCall) -> dict[str, Any]:
    return {
        "purpose": c.purpose,
        "model": c.model,
        "input_tokens": c.input_tokens,
        "output_tokens": c.output_tokens,
        "cost_usd": c.cost_usd,
    }


def from_row(row: tuple[Any, ...]) -> LedgerEntry:
    values = dict(zip(COLUMNS, row, strict=True))
    values["stream"] = bool(values["stream"])
    values["tags"] = orjson.loads(values["tags"])
    values["sub_calls"] = [SubCall(**c) for c in orjson.loads(values["sub_calls"])]
    return LedgerEntry(**values)
