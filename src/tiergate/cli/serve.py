"""`tiergate serve`."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from starlette.applications import Starlette

from tiergate.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

    from tiergate.gateway import Gateway

_CONFIG_ENV = "TIERGATE_CONFIG"


def build_app() -> Starlette:
    """App factory (also used by uvicorn's worker processes)."""
    from tiergate.cli.env_config import config_from_env
    from tiergate.config.loader import load_config
    from tiergate.gateway import Gateway
    from tiergate.ingress.app import create_app

    path = os.environ.get(_CONFIG_ENV)
    config = load_config(path) if path else config_from_env()
    return create_app(Gateway.from_config(config), server_process=True)


def build_worker_app() -> Starlette:
    """App factory for `--workers N`: each worker also reports "not ready" once signalled.

    uvicorn calls the factory inside its own signal handling, so chaining works here.
    """
    app = build_app()
    gateway: Gateway = app.state.gateway
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                gateway.ready = False
                if callable(previous):
                    previous(number, frame)

            signal.signal(sig, handler)
    return app


def _draining_server(config: uvicorn.Config, gateway: Gateway, delay: float) -> uvicorn.Server:
    """A uvicorn server whose shutdown starts by failing readiness.

    On SIGTERM/SIGINT `/health/ready` answers 503 at once; after `delay` seconds (time for a
    load balancer to notice) the listener closes, so new connections are refused, while
    requests and streams in flight finish within uvicorn's graceful-shutdown timeout. Then
    the lifespan closes the gateway, which flushes the ledger.
    """
    import uvicorn

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            first = gateway.ready
            gateway.ready = False
            if first and delay > 0 and not self.should_exit:
                self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
                timer = threading.Timer(delay, self._begin_exit)
                timer.daemon = True
                timer.start()
                return
            super().handle_exit(sig, frame)

        def _begin_exit(self) -> None:
            self.should_exit = True

    return DrainingServer(config)


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--log-level", default="warning", show_default=True)
@click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds in-flight requests and streams get to finish after SIGTERM.",
)
@click.option(
    "--drain-delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to keep accepting (readiness already 503) before refusing connections.",
)
def serve(
    config_path: str | None,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    drain_timeout: float,
    drain_delay: float,
) -> None:
    """Run the gateway."""
    import uvicorn

    from tiergate.ingress.fastpath import http_protocol

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
    gateway = app.state.gateway
    if not gateway.fleet.models:
        click.echo(
            "tiergate: warning: no models are configured. Pass --config FILE, or set "
            "OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, DEEPSEEK_API_KEY or "
            "MISTRAL_API_KEY to use the built-in catalog.",
            err=True,
        )
    else:
        click.echo(
            f"tiergate: {len(gateway.fleet.models)} model(s) in tiers "
            f"{', '.join(t for t in gateway.fleet.tiers if gateway.fleet.by_tier[t])}; "
            f"routes: {', '.join(sorted(gateway.routes))}",
            err=True,
        )
    click.echo(f"tiergate listening on http://{host}:{port} ({workers} worker(s))", err=True)
    common = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "loop": "uvloop",
        # uvicorn's httptools protocol, answering POST /v1/chat/completions without ASGI
        "http": http_protocol(),
        "timeout_graceful_shutdown": max(int(drain_timeout + 0.999), 1),
    }
    if workers > 1:
        uvicorn.run(
            "tiergate.cli.serve:build_worker_app",
            factory=True,
            workers=workers,
            # uvicorn kills a worker that misses a 5 s health ping; on a busy machine a worker
            # still importing, or saturated by load, can miss it, and is then restarted forever.
            timeout_worker_healthcheck=30,
            **common,  # type: ignore[arg-type]
        )
    else:
        server = _draining_server(uvicorn.Config(app, **common), app.state.gateway, drain_delay)  # type: ignore[arg-type]
        server.run()
