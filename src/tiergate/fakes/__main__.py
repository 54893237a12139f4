"""``python -m tiergate.fakes --port 18080 [--profile demo]``: a fake upstream process.

Prints one line ``fake upstream listening on http://HOST:PORT`` once it accepts
connections, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Sequence

from tiergate.fakes.profile import PROFILES
from tiergate.fakes.server import FakeUpstream


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of the fake upstream process."""
    parser = argparse.ArgumentParser(
        prog="python -m tiergate.fakes",
        description="Fake OpenAI / Anthropic / Gemini upstream for tests, benchmarks, demo.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080, help="0 picks a free port")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="instant")
    parser.add_argument("--seed", type=int, help="override the profile's random seed")
    parser.add_argument("--api-key", help="require this key in each protocol's auth header")
    parser.add_argument(
        "--history-limit", type=int, default=1000, help="requests kept in memory (0: none)"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until a termination signal arrives."""
    profile = PROFILES[args.profile]
    if args.seed is not None:
        profile = dataclasses.replace(profile, seed=args.seed)
    fake = FakeUpstream(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        profile=profile,
        history_limit=max(args.history_limit, 0),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # signal handlers: not on Windows
            loop.add_signal_handler(sig, stop.set)
    async with fake:
        print(f"fake upstream listening on {fake.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:  # the fake works on the default loop, only slower
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
