"""HTTP/1.1 POSTs on behalf of one provider: the URL picks a pool (one per origin, with the
proxy chosen for it), the request head is written here, once per call, from parts prepared
on first use."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from tiergate.providers.http1 import InvalidRequest
from tiergate.providers.http1_pool import Pool
from tiergate.providers.http1_proxy import choose_proxy

# Names we write ourselves; a provider's configured headers may not repeat them.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "accept-encoding"})
_MAX_CACHED = 1024  # URLs and header sets remembered (both come from config: few)


class Client:
    """Every connection one provider has, by origin."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        limit: int,
        connect_timeout: float,
        configured: tuple[tuple[str, str], ...],
        tls: Callable[[], ssl.SSLContext],
        proxy: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """`proxy` is the provider's setting (see `choose_proxy`); `environment` the proxy
        variables, as `urllib.request.getproxies_environment()` gives them."""
        self._loop = loop
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._proxy = proxy
        self._environment = environment or {}
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._routes: dict[str, tuple[Pool, str]] = {}  # URL -> (pool, request line and host)
        self._blocks: dict[tuple[tuple[str, str], ...], str] = {}  # headers -> their lines
        self._skip = frozenset(name for name, _ in configured if name.lower() in _OWN_HEADERS)
        own_agent = not any(name.lower() == "user-agent" for name, _ in configured)
        self._agent = "user-agent: tiergate\r\n" if own_agent else ""

    def prepare(self, url: str, headers: dict[str, str], body: bytes) -> tuple[Pool, bytes]:
        """The pool for `url` and the request's bytes (head and body), to `Pool.request`.
        Raises `InvalidRequest`."""
        route = self._routes.get(url)
        if route is None:
            route = self._route(url)
        pool, start = route
        items = tuple(headers.items())
        block = self._blocks.get(items)
        if block is None:
            block = self._block(items)
        return pool, f"{start}content-length: {len(body)}\r\n{block}\r\n".encode() + body

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._routes.clear()

    @property
    def pools(self) -> list[Pool]:
        return list(self._pools.values())

    def _route(self, url: str) -> tuple[Pool, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest("not an http(s) URL")
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname, port)
        pool = self._pools.get(origin)
        if pool is None:
            try:
                proxy = choose_proxy(self._proxy, scheme, parts.hostname, self._environment)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
            pool = self._pools[origin] = Pool(
                self._loop,
                parts.hostname,
                port,
                tls=self._tls() if scheme == "https" else None,
                limit=self._limit,
                connect_timeout=self._connect_timeout,
                proxy=proxy,
            )
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        start = (
            f"POST {target} HTTP/1.1\r\nhost: {parts.netloc.rpartition('@')[2]}\r\n"
            f"{self._agent}accept-encoding: gzip, deflate\r\n"
        )
        if len(self._routes) >= _MAX_CACHED:
            self._routes.clear()
        self._routes[url] = (pool, start)
        return pool, start

    def _block(self, items: tuple[tuple[str, str], ...]) -> str:
        lines = [f"{name}: {value}\r\n" for name, value in items if name not in self._skip]
        block = "".join(lines)
        if block.count("\n") != len(lines) or block.count("\r") != len(lines):
            raise InvalidRequest("a request header contains a line break")
        if len(self._blocks) >= _MAX_CACHED:
            self._blocks.clear()
        self._blocks[items] = block
        return block
