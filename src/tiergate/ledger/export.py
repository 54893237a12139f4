"""Outcome records from production traffic: scores joined with the ledger and prompts.

Scores come from the quality monitor's score log (`quality.outcomes_path`): one line per
`POST /v1/feedback` and per LLM-judge score, each with the request id it is about. The
export joins each scored request id with

- its ledger entry (model, tokens, cost, latency, route; only answered requests), and
- its prompt: from the ledger's prompts table (routes with `record_prompts: true`), else
  the prompt a judge score line carries (the judge read it); requests with neither are
  counted and skipped, because an outcome record without its prompt teaches nothing.

A request scored several times (a thumbs and a judge score) gets the mean of its scores.
`cost_usd` is the answer's cost; on a cache hit, what the answer cost when it was made.
`task` is the route. The records go into `tiergate router train` as they are.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from tiergate.ledger.entry import LedgerEntry
from tiergate.ledger.rows import SELECT, from_row
from tiergate.outcomes import OutcomeRecord
from tiergate.store.db import Database

__all__ = ["ExportStats", "export_outcomes", "scores_by_request"]

_CHUNK = 500  # request ids per IN (...) query: far below every driver's parameter limit


@dataclass(slots=True)
class ExportStats:
    """What the export found: scored requests, and why some were left out."""

    requests: int = 0  # distinct request ids with a score
    exported: int = 0
    unanswered: int = 0  # no answered entry in the period and filters (or another ledger's)
    no_prompt: int = 0  # answered, but no prompt was recorded for it

    def as_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "exported": self.exported,
            "unanswered": self.unanswered,
            "no_prompt": self.no_prompt,
        }


def scores_by_request(scores: Sequence[OutcomeRecord]) -> dict[str, list[OutcomeRecord]]:
    """Score records grouped by request id, in file order; lines without one are dropped."""
    grouped: dict[str, list[OutcomeRecord]] = {}
    for record in scores:
        if record.request_id:
            grouped.setdefault(record.request_id, []).append(record)
    return grouped


def export_outcomes(
    db: Database,
    scores: Mapping[str, Sequence[OutcomeRecord]],
    *,
    since: float | None = None,
    until: float | None = None,
    only: Mapping[str, str | None] | None = None,
) -> tuple[list[OutcomeRecord], ExportStats]:
    """Outcome records for the scored requests booked in [since, until); ``only`` keeps
    the entries whose ``route`` / ``model`` / ``key_name`` have the given values."""
    filters = {k: v for k, v in (only or {}).items() if v is not None}
    unknown = set(filters) - {"route", "model", "key_name"}
    if unknown:
        raise ValueError(f"cannot filter on {sorted(unknown)}")
    stats = ExportStats(requests=len(scores))
    records: list[OutcomeRecord] = []
    for ids in _chunks(list(scores)):
        entries = _entries(db, ids, since, until, filters)
        prompts = _prompts(db, ids)
        for request_id in ids:
            entry = entries.get(request_id)
            if entry is None or entry.model is None:
                stats.unanswered += 1
                continue
            record = _record(entry, scores[request_id], prompts.get(request_id))
            if record is None:
                stats.no_prompt += 1
                continue
            records.append(record)
    stats.exported = len(records)
    return records, stats


def _record(
    entry: LedgerEntry, scores: Sequence[OutcomeRecord], stored_prompt: str | None
) -> OutcomeRecord | None:
    assert entry.model is not None
    prompt = stored_prompt
    if prompt is None:
        # A judge score line carries the prompt the judge read; feedback lines do not.
        prompt = next((s.prompt for s in reversed(scores) if s.prompt), None)
    if prompt is None:
        return None
    response = next((s.response for s in reversed(scores) if s.response), None)
    return OutcomeRecord(
        model=entry.model,
        score=statistics.fmean(s.score for s in scores),
        prompt=prompt,
        cost_usd=entry.cache_saved_usd if entry.cache == "hit" else entry.cost_usd,
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        latency_ms=entry.latency_ms,
        response=response,
        task=entry.route,
        request_id=entry.request_id,
    )


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _entries(
    db: Database,
    ids: list[str],
    since: float | None,
    until: float | None,
    filters: Mapping[str, str],
) -> dict[str, LedgerEntry]:
    where = [f"request_id IN ({', '.join('?' for _ in ids)})", "status = 200"]
    params: list[object] = list(ids)
    for column, value in filters.items():  # column names come from the fixed set above
        where.append(f"{column} = ?")
        params.append(value)
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    rows = db.query(f"{SELECT} WHERE {' AND '.join(where)}", params)
    # Judge calls are booked in the ledger too; they are not answers to anyone's prompt.
    return {e.request_id: e for e in map(from_row, rows) if e.endpoint != "judge"}


def _prompts(db: Database, ids: list[str]) -> dict[str, str]:
    rows = db.query(
        f"SELECT request_id, prompt FROM {{p}}prompts WHERE request_id IN "
        f"({', '.join('?' for _ in ids)})",
        ids,
    )
    return {str(r[0]): str(r[1]) for r in rows}
