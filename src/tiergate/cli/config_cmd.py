"""`tiergate config check FILE`."""

from __future__ import annotations

import sys

import click

from tiergate.errors import ConfigError


@click.group()
def config() -> None:
    """Work with configuration files."""


@config.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate a config file and explain every problem."""
    from tiergate.config.loader import build_fleet, load_config
    from tiergate.routing.route import build_routes

    try:
        cfg = load_config(path)
        fleet = build_fleet(cfg)
        routes = build_routes(cfg, fleet)
    except ConfigError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            click.echo(f"  - {problem}")
        sys.exit(1)
    click.echo(
        f"{path}: OK: {len(fleet.providers)} provider(s), {len(fleet.models)} model(s), "
        f"{len(routes)} route(s), tiers {' < '.join(fleet.tiers)}"
    )
    for tier in fleet.tiers:
        names = ", ".join(m.name for m in fleet.by_tier[tier]) or "(none)"
        click.echo(f"  {tier:>10}: {names}")
