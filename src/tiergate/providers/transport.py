"""Thin pooled HTTP I/O to providers (aiohttp): one connection pool per provider, created at
startup. Network failures are mapped to tiergate errors here, in one place."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from types import TracebackType

import aiohttp
from multidict import CIMultiDictProxy

from tiergate.errors import UpstreamError, UpstreamTimeout
from tiergate.fleet import Provider
from tiergate.providers.base import SSEEvent, UpstreamCall
from tiergate.providers.sse import SSEParser

_MAX_ERROR_BODY = 64 * 1024
# A broken or hostile upstream must not be able to fill memory: no real answer comes near.
MAX_BODY = 64 * 1024 * 1024
MAX_EVENT = 8 * 1024 * 1024


def _map_client_error(exc: BaseException, provider: Provider) -> UpstreamError:
    where = f"provider {provider.name}"
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"{where}: timed out")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamError(f"{where}: DNS lookup failed")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(f"{where}: connection failed ({exc.os_error.strerror or exc})")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamError(f"{where}: server disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"{where}: response body was cut off")
    return UpstreamError(f"{where}: {type(exc).__name__}")


class UpstreamResponse:
    """A response whose headers have arrived; the body is read or streamed from here."""

    __slots__ = ("_provider", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, provider: Provider):
        self._response = response
        self._provider = provider
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def read(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        try:
            async for data in self._response.content.iter_any():
                size += len(data)
                if size > MAX_BODY:
                    raise UpstreamError(
                        f"provider {self._provider.name}: response over {MAX_BODY} bytes"
                    )
                parts.append(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_client_error(exc, self._provider) from None
        finally:
            self._response.release()
        return b"".join(parts)

    async def read_error_body(self) -> bytes:
        try:
            return await self._response.content.read(_MAX_ERROR_BODY)
        except (aiohttp.ClientError, TimeoutError):
            return b""  # the status already tells the story; a broken error body adds nothing
        finally:
            self._response.close()

    async def events(self) -> AsyncIterator[SSEEvent]:
        """Server-sent events as they arrive.

        The inactivity timeout runs between *events*, not between reads: an upstream that
        drips keep-alive comments or single bytes would otherwise hold the request forever.
        The whole stream is also bounded by the provider's total timeout.
        """
        parser = SSEParser()
        timeouts = self._provider.timeouts
        loop = asyncio.get_running_loop()
        end = loop.time() + timeouts.total
        quiet_until = min(loop.time() + timeouts.inactivity, end)
        content = self._response.content
        where = f"provider {self._provider.name}"
        unparsed = 0  # bytes since the last complete event
        while True:
            try:
                async with asyncio.timeout_at(quiet_until):
                    data = await content.readany()
            except TimeoutError:
                if quiet_until >= end:
                    raise UpstreamTimeout(f"{where}: stream passed the total timeout") from None
                raise UpstreamTimeout(
                    f"{where}: no stream event for {timeouts.inactivity:g}s"
                ) from None
            except aiohttp.ClientError as exc:
                raise _map_client_error(exc, self._provider) from None
            if not data:
                break
            events = parser.feed(data)
            unparsed = 0 if events else unparsed + len(data)
            if unparsed > MAX_EVENT:
                raise UpstreamError(f"{where}: a stream event ran over {MAX_EVENT} bytes")
            if events:
                quiet_until = min(loop.time() + timeouts.inactivity, end)
            for event in events:
                yield event
        for event in parser.close():
            yield event

    def close(self) -> None:
        """Drop the connection: this is how an upstream call is cancelled."""
        self._response.close()

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._response.close()


class Transport:
    """Pooled clients for every provider; `post` returns once response headers arrive."""

    def __init__(self, providers: Iterable[Provider]):
        self._providers = list(providers)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        for provider in self._providers:
            connector = aiohttp.TCPConnector(
                limit=provider.max_connections,
                limit_per_host=provider.max_connections,
                ttl_dns_cache=300,
                family=socket.AF_UNSPEC,
                enable_cleanup_closed=False,
            )
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=provider.timeouts.connect,
                sock_read=provider.timeouts.inactivity,
            )
            self._sessions[provider.name] = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                headers={"user-agent": "tiergate"},
            )

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def post(self, provider: Provider, call: UpstreamCall) -> UpstreamResponse:
        """Send the request; return when headers arrive (within the first-byte timeout)."""
        session = self._sessions[provider.name]
        try:
            async with asyncio.timeout(provider.timeouts.first_byte):
                response = await session.post(call.url, data=call.body, headers=call.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _map_client_error(exc, provider) from None
        return UpstreamResponse(response, provider)
