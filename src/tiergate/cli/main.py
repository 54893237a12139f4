"""`tiergate`: the command line entry point."""

from __future__ import annotations

import click

from tiergate import __version__
from tiergate.cli.config_cmd import config
from tiergate.cli.serve import serve


@click.group()
@click.version_option(__version__, prog_name="tiergate")
def cli() -> None:
    """tiergate: send every LLM request to the cheapest model that can handle it."""


cli.add_command(serve)
cli.add_command(config)


def _optional_commands() -> None:
    """Commands whose modules are built by other parts of the project."""
    import importlib

    for module, name in (
        ("tiergate.cli.router_cmd", "router"),
        ("tiergate.cli.demo", "demo"),
        ("tiergate.cli.route_cmd", "route"),
        ("tiergate.cli.simulate_cmd", "simulate"),
    ):
        try:
            command = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError:
            continue
        cli.add_command(command)


_optional_commands()


def main() -> None:
    cli()
