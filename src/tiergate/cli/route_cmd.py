"""`tiergate route "PROMPT"`: the routing decision and its reasons, without calling a model."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from tiergate.errors import ConfigError, TiergateError

if TYPE_CHECKING:
    from tiergate.routing.router import Router


def _load(config_path: str | None) -> Router:
    from tiergate.cli.env_config import config_from_env
    from tiergate.config.loader import build_fleet, load_config
    from tiergate.routing.route import build_routes
    from tiergate.routing.router import Router

    path = config_path or os.environ.get("TIERGATE_CONFIG")
    config = load_config(path) if path else config_from_env()
    fleet = build_fleet(config)
    return Router(fleet, build_routes(config, fleet))


@click.command()
@click.argument("prompt")
@click.option("--route", "route_name", default="auto", show_default=True, help="auto:NAME, ...")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--max-tokens", type=click.IntRange(1), help="As the request would send it.")
@click.option("--tag", "tags", multiple=True, help="Request tag (repeatable), e.g. legal.")
@click.option("--min-tier", help="Per-request minimum tier.")
@click.option("--max-cost", type=float, help="Per-request maximum cost in USD.")
@click.option("--key", "key_name", help="Virtual key name (for static rules by key).")
def route(
    prompt: str,
    route_name: str,
    as_json: bool,
    config_path: str | None,
    max_tokens: int | None,
    tags: tuple[str, ...],
    min_tier: str | None,
    max_cost: float | None,
    key_name: str | None,
) -> None:
    """Print the routing decision for PROMPT without calling any model.

    The classifier step, which needs a model call, is skipped and marked as such.
    """
    from tiergate.chat import ChatRequest, Message
    from tiergate.routing.context import RequestContext

    try:
        router = _load(config_path)
    except ConfigError as exc:
        click.echo("tiergate: the configuration has problems:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    if not router.fleet.models:
        click.echo("tiergate: no models configured; pass --config FILE", err=True)
        sys.exit(2)
    request = ChatRequest(
        model=route_name, messages=[Message(role="user", content=prompt)], max_tokens=max_tokens
    )
    context = RequestContext(
        key_name=key_name, tags=frozenset(tags), min_tier=min_tier, max_cost_usd=max_cost
    )
    try:
        decision = router.decide(request, context=context)
    except TiergateError as exc:
        click.echo(f"tiergate: {exc.message}", err=True)
        sys.exit(1)
    if decision.pending == "classifier":
        decision.reasons = [
            "classifier: skipped (no model call in `tiergate route`)"
            if r.startswith("classifier: skipped")
            else r
            for r in decision.reasons
        ]
    data = decision.to_dict()
    baseline = decision.baseline
    data["baseline_estimated_cost_usd"] = (
        round(baseline.estimate_cost(decision.prompt_tokens, decision.expected_output_tokens), 10)
        if baseline
        else None
    )
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        ("route", decision.route),
        ("strategy", decision.strategy),
        ("tier", decision.tier),
        ("model", decision.model.name),
        ("candidates", ", ".join(m.name for m in decision.candidates)),
        (
            "tokens",
            f"{decision.prompt_tokens} prompt, ~{decision.expected_output_tokens} output expected",
        ),
        ("est. cost", f"${decision.estimated_cost_usd:.8f}"),
    ]
    if baseline is not None:
        rows.append(("baseline", f"{baseline.name} ${data['baseline_estimated_cost_usd']:.8f}"))
    for label, value in rows:
        click.echo(f"{label:>10}  {value}")
    for i, reason in enumerate(decision.reasons):
        click.echo(f"{'why' if i == 0 else '':>10}  {reason}")
