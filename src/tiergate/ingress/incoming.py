"""What the chat handler needs of an HTTP request, whichever server layer delivered it.

Two layers deliver chat requests: the ASGI app (Starlette; every endpoint, and the
Messages ingress, which hands its translated body to the chat handler) and the fast path
in `tiergate.ingress.fastpath`, which answers `POST /v1/chat/completions` straight from
uvicorn's protocol. Both give the handler the same three things: the headers (lower-case
names), the body (refused with 413 once it passes the limit), and a way to learn that the
client hung up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from starlette.requests import Request

from tiergate.config.schema import ServerConfig
from tiergate.ingress.body import read_body


class Incoming(Protocol):
    """One HTTP request as the chat handler sees it."""

    @property
    def headers(self) -> Mapping[str, str]:
        """Header values by lower-case name (the first value of a repeated header)."""
        ...

    @property
    def endpoint(self) -> str:
        """What the ledger books the request as ("chat", or "messages" when delegated)."""
        ...

    async def body(self, server: ServerConfig) -> bytes:
        """The whole body, checked against the server's size, type and depth limits."""
        ...

    def watch_disconnect(self, on_disconnect: Callable[[], None]) -> Callable[[], None]:
        """Call `on_disconnect` once if the client hangs up; returns the way to stop
        watching. Only called once the body has been read."""
        ...


class AsgiIncoming:
    """A Starlette request: the body through `receive`, a disconnect seen by a watcher task."""

    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    @property
    def endpoint(self) -> str:
        # /v1/messages delegates to the chat handler and marks itself, to be booked as such.
        return str(getattr(self._request.state, "endpoint", "chat"))

    async def body(self, server: ServerConfig) -> bytes:
        return await read_body(self._request, server)

    def watch_disconnect(self, on_disconnect: Callable[[], None]) -> Callable[[], None]:
        receive = self._request.receive

        async def watch() -> None:
            # After the body, `receive` has nothing to deliver but the disconnect (a stray
            # empty body message is skipped).
            while (await receive())["type"] != "http.disconnect":
                pass
            on_disconnect()

        watcher = asyncio.get_running_loop().create_task(watch())

        def unwatch() -> None:
            watcher.cancel()

        return unwatch
