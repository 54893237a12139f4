"""Running the gateway's ASGI app on a real socket in a background thread: for tests,
`tiergate demo` and benchmarks that need a live gateway inside another program."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from tiergate.ingress.fastpath import http_protocol


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """`with BackgroundServer(app) as server: server.url` — uvicorn on its own loop and thread."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            log_level="error",
            access_log=False,
            loop="asyncio",
            http=http_protocol(),  # as `tiergate serve` does
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="tiergate-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def settled(self, timeout: float = 10) -> None:
        """Return once the server's loop has finished the step it is in. A chat answer is
        booked in the same step that writes it, so after this every answer a client has
        received is in the ledger and the observers (in-process readers need this; an HTTP
        request is served after that step anyway)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
