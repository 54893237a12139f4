"""`tiergate serve`."""

from __future__ import annotations

import os
import sys

import click
from starlette.applications import Starlette

from tiergate.errors import ConfigError

_CONFIG_ENV = "TIERGATE_CONFIG"


def build_app() -> Starlette:
    """App factory (also used by uvicorn's worker processes)."""
    from tiergate.cli.env_config import config_from_env
    from tiergate.config.loader import load_config
    from tiergate.gateway import Gateway
    from tiergate.ingress.app import create_app

    path = os.environ.get(_CONFIG_ENV)
    config = load_config(path) if path else config_from_env()
    return create_app(Gateway.from_config(config))


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--log-level", default="warning", show_default=True)
def serve(config_path: str | None, host: str, port: int, workers: int, log_level: str) -> None:
    """Run the gateway."""
    import uvicorn

    if config_path:
        os.environ[_CONFIG_ENV] = os.path.abspath(config_path)
    else:
        os.environ.pop(_CONFIG_ENV, None)
    try:
        app = build_app()  # fail fast, in the parent, on a bad config
    except ConfigError as exc:
        click.echo("tiergate: the configuration has problems:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    click.echo(f"tiergate listening on http://{host}:{port} ({workers} worker(s))", err=True)
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 30,
    }
    if workers > 1:
        uvicorn.run("tiergate.cli.serve:build_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
    else:
        uvicorn.run(app, **common)  # type: ignore[arg-type]
