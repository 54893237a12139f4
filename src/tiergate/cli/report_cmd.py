"""`tiergate report`: spend, savings against the baseline, cache hit rate, latency and
fallbacks over a period, from the ledger."""

from __future__ import annotations

import sys

import click
import orjson

from tiergate.cli.keys_cmd import config_option, database_url
from tiergate.ledger.query import GROUPS, LedgerReader
from tiergate.ledger.report import Summary, parse_since
from tiergate.ledger.report import report as build_report


@click.command()
@click.option("--since", default="24h", show_default=True, help="24h, 7d, 2026-01-31, …")
@click.option("--until", help="End of the period (default: now).")
@click.option("--by", type=click.Choice(sorted(GROUPS)), default="model", show_default=True)
@click.option("--key", "key_name", help="Only this key.")
@click.option("--route", help="Only this route.")
@click.option("--model", help="Only this model.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--suggest", is_flag=True, help="Propose tier changes from quality scores.")
@click.option(
    "--outcomes",
    "outcomes_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Score records for --suggest and --export-outcomes (default: quality.outcomes_path).",
)
@click.option(
    "--export-outcomes",
    "export_path",
    type=click.Path(dir_okay=False),
    help="Write scored requests of the period as outcome records (for router train).",
)
@config_option
def report(
    since: str,
    until: str | None,
    by: str,
    key_name: str | None,
    route: str | None,
    model: str | None,
    as_json: bool,
    suggest: bool,
    outcomes_path: str | None,
    export_path: str | None,
    config_path: str | None,
) -> None:
    """Spend, savings, cache hit rate, latency p50/p95 and fallbacks, grouped."""
    if suggest:
        from tiergate.observability.suggest import suggest_report

        suggest_report(config_path, outcomes_path, as_json)
        return
    try:
        start = parse_since(since)
        end = parse_since(until) if until else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if export_path:
        from tiergate.cli.outcomes_export import export_report

        only = {"route": route, "model": model, "key_name": key_name}
        export_report(config_path, outcomes_path, export_path, start, end, as_json, only)
        return
    reader = LedgerReader(database_url(config_path, for_keys=False))
    try:
        rows = reader.rows(since=start, until=end, by=by, key=key_name, route=route, model=model)
    finally:
        reader.close()
    groups, total = build_report(rows)
    if as_json:
        payload = {
            "since": start,
            "until": end,
            "by": by,
            "groups": [g.as_json() for g in groups],
            "total": total.as_json(),
        }
        click.echo(orjson.dumps(payload).decode())
        return
    _table(by, groups, total)


def _money(x: float) -> str:
    return f"${x:,.4f}" if abs(x) < 100 else f"${x:,.2f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _table(by: str, groups: list[Summary], total: Summary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        by,
        "requests",
        "errors",
        "spend",
        "baseline",
        "saved",
        "saved %",
        "cache hits",
        "p50 ms",
        "p95 ms",
        "fallbacks",
    )
    for s in [*groups, total]:
        table.add_row(
            s.group,
            f"{s.requests:,}",
            f"{s.errors:,}",
            _money(s.spend_usd),
            _money(s.baseline_usd),
            _money(s.savings_usd),
            "-" if s.savings_pct is None else f"{s.savings_pct:.1f}%",
            f"{s.cache_hit_rate:.1%}",
            _ms(s.latency_p50_ms),
            _ms(s.latency_p95_ms),
            f"{s.fallbacks:,}",
            end_section=s is groups[-1] if groups else False,
        )
    Console(file=sys.stdout, width=160).print(table)
