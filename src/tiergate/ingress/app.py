"""The ASGI application: routes, lifespan, and the error envelope for everything else."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tiergate.errors import ClientError, NotFound, TiergateError
from tiergate.gateway import Gateway
from tiergate.ingress import admin, dashboard
from tiergate.ingress.chat import chat_completions
from tiergate.ingress.errors import error_body, error_response
from tiergate.ingress.feedback import feedback
from tiergate.ingress.messages import messages
from tiergate.ingress.models import list_models, live, ready
from tiergate.ingress.openapi import openapi_document


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"no such endpoint: {request.url.path}", code="not_found"))
    body = error_body(str(exc.detail), "invalid_request_error", None, None)
    return Response(body, status_code=exc.status_code, media_type="application/json")


async def _tiergate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TiergateError)
    return error_response(exc)


def unexpected_error_response() -> Response:
    """A bug, not the client's fault: answer in the envelope, never with a traceback."""
    body = error_body("internal error", "server_error", "internal_error", None)
    return Response(body, status_code=500, media_type="application/json")


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error_response()


CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


class GatewayApp(Starlette):
    """Starlette, except that POST /v1/chat/completions goes straight to its handler.

    The router and the exception middleware cost about 5% of a chat request's CPU at high
    load, for an endpoint whose handler answers every error itself. The shortcut keeps what
    the stack does for it: `scope["app"]`, the envelope for a `TiergateError` that escapes,
    and for anything else a 500 envelope, then the exception re-raised for the server to log.
    With middleware configured, every request takes the full stack.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in CHAT_PATHS
            and scope["method"] == "POST"
            and not self.user_middleware
        ):
            scope["app"] = self
            request = Request(scope, receive, send)
            try:
                response = await chat_completions(request)
            except TiergateError as exc:
                response = error_response(exc)
            except Exception as exc:
                await (await _unexpected(request, exc))(scope, receive, send)
                raise
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def tune_runtime() -> None:
    """The interpreter, tuned for a long-running server process.

    Garbage collection: what exists once the gateway has started (config tables, imported
    modules) is frozen out of every future collection, and the youngest generation is
    collected every 10,000 allocations instead of 700. A request makes a few hundred
    short-lived objects, nearly all freed by reference counting; with the defaults the
    collector ran every few requests and took ~5% of the CPU at load.

    Thread switching: the ledger writer thread turns entries into rows in Python; the event
    loop waiting for the GIL meanwhile would wait up to the default 5 ms switch interval,
    a latency spike for whichever request arrived then. 1 ms bounds that wait.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
    sys.setswitchinterval(0.001)


_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process, unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread that allocates while another holds the main arena an arena of
    its own (up to 8 per core), and memory freed in one arena is never reused by another.
    In the gateway the event loop, the ledger writer and the resolver threads all allocate,
    and resident memory crept up by a fifth over the first 250,000 requests before it
    levelled off; with two arenas it grew 7% over a million (bench/RESULTS.md). Python's own
    allocator serves small objects under the GIL anyway, so the arenas bought nothing.
    Must run before the gateway starts its threads. False where this is not glibc."""
    if os.environ.get("MALLOC_ARENA_MAX") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False


def create_app(
    gateway: Gateway, *, manage_lifecycle: bool = True, server_process: bool = False
) -> Starlette:
    """The ASGI app for a prepared gateway; starts and closes it with the server.

    `server_process`: this process exists to serve (`tiergate serve`), so malloc's arenas
    are capped before the gateway starts (`limit_malloc_arenas`) and the collector is
    tuned once it has (`tune_runtime`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if server_process:
            limit_malloc_arenas()
        if manage_lifecycle:
            await gateway.start()
        if server_process:
            tune_runtime()
        try:
            yield
        finally:
            if manage_lifecycle:
                await gateway.close()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
        *admin.routes(),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/metrics", dashboard.metrics, methods=["GET"]),
        Route("/dashboard", dashboard.page, methods=["GET"]),
        Route("/dashboard/api/summary", dashboard.summary, methods=["GET"]),
        Route("/dashboard/assets/{name}", dashboard.asset, methods=["GET"]),
    ]
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            ClientError: _tiergate_error,
            TiergateError: _tiergate_error,
            Exception: _unexpected,
        },
    )
    app.state.gateway = gateway
    return app
