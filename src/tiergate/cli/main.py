"""`tiergate`: the command line entry point.

Subcommands are imported only when they run, so `tiergate demo` does not pay for
scikit-learn and `tiergate serve` starts fast.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from tiergate import __version__

# name -> (module, attribute, one-line help shown by `tiergate --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("tiergate.cli.serve", "serve", "Run the gateway."),
    "demo": ("tiergate.cli.demo", "demo", "The whole product, offline, in under a minute."),
    "route": ("tiergate.cli.route_cmd", "route", "Show the routing decision for a prompt."),
    "simulate": ("tiergate.cli.simulate_cmd", "simulate", "Cost calculator over a traffic mix."),
    "eval": ("tiergate.cli.eval_cmd", "eval_", "Run an eval suite through models."),
    "router": ("tiergate.cli.router_cmd", "router", "Train, score and evaluate learned routers."),
    "report": ("tiergate.cli.report_cmd", "report", "Spend, savings, latency and cache figures."),
    "keys": ("tiergate.cli.keys_cmd", "keys", "Create, list and revoke virtual keys."),
    "config": ("tiergate.cli.config_cmd", "config", "Check configuration files."),
    "secrets": ("tiergate.security.cli", "secrets", "Data keys for secrets at rest."),
}


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n, (module, _, _) in COMMANDS.items() if _module_exists(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None or not _module_exists(spec[0]):
            return None
        command = getattr(importlib.import_module(spec[0]), spec[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tiergate")
def cli() -> None:
    """tiergate: send every LLM request to the cheapest model that can handle it."""


def main() -> None:
    cli()
