"""`tiergate report --export-outcomes FILE`: scored production traffic as outcome records."""

from __future__ import annotations

import click
import orjson

from tiergate.cli.keys_cmd import database_url


def export_report(
    config_path: str | None,
    scores_path: str | None,
    out_path: str,
    since: float,
    until: float | None,
    as_json: bool,
    only: dict[str, str | None] | None = None,
) -> None:
    """Join the score log with the ledger and its prompts; write outcome records."""
    from tiergate.ledger.export import export_outcomes, scores_by_request
    from tiergate.ledger.query import LedgerReader
    from tiergate.outcomes import OutcomeFormatError, read_outcomes, write_outcomes

    scores_path = scores_path or _configured_scores(config_path)
    if scores_path is None:
        raise click.ClickException(
            "no scores to export: give --outcomes FILE (the score log) "
            "or set quality.outcomes_path in the config"
        )
    try:
        scores = read_outcomes(scores_path)
    except OutcomeFormatError as exc:
        raise click.ClickException(str(exc)) from None
    reader = LedgerReader(database_url(config_path, for_keys=False))
    try:
        records, stats = export_outcomes(
            reader.db, scores_by_request(scores), since=since, until=until, only=only
        )
    finally:
        reader.close()
    write_outcomes(out_path, records)
    if as_json:
        click.echo(orjson.dumps({"out": out_path, **stats.as_json()}).decode())
        return
    click.echo(
        f"Wrote {stats.exported} outcome record(s) to {out_path} "
        f"from {stats.requests} scored request(s) in {scores_path}."
    )
    if stats.unanswered:
        click.echo(f"  {stats.unanswered} not answered in this period and selection.")
    if stats.no_prompt:
        click.echo(
            f"  {stats.no_prompt} without a recorded prompt "
            "(set record_prompts: true on their routes)."
        )


def _configured_scores(config_path: str | None) -> str | None:
    if config_path is None:
        return None
    from tiergate.config.loader import load_config
    from tiergate.errors import ConfigError

    try:
        return load_config(config_path).quality.outcomes_path
    except ConfigError as exc:
        raise click.ClickException("; ".join(exc.problems)) from None
