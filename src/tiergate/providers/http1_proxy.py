"""Upstream connections through an HTTP proxy: which proxy an origin uses, and the CONNECT
handshake that turns a connection to the proxy into a tunnel to the provider.

Every upstream, http or https, goes through a tunnel, so TLS runs end to end between
tiergate and the provider and the proxy sees neither the requests nor the keys. The proxy
comes only from config or the environment, never from a client's request.

Proxy URLs may carry a password: it lives only in `Proxy.authorization`, which no repr,
message or error text shows. Messages name the proxy as host:port.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

# Undocumented and missing from typeshed, but it is how urllib itself reads NO_PROXY.
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

from tiergate.providers.http1 import HTTPError

DIRECT = "direct"  # the `proxy` setting that ignores the environment
_MAX_HEAD = 16 * 1024  # a CONNECT answer is a status line and a few headers


class ProxyError(HTTPError):
    """The proxy would not open a tunnel (refused, wants credentials, or answered nonsense).

    `status` is the proxy's answer when it gave one (407, 403, 502, ...)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def lasting(self) -> bool:
        """A refusal that the same proxy will repeat (credentials, policy): not worth a
        retry of the same deployment. A 502 or 504 (the provider unreachable from the
        proxy) may pass."""
        return self.status in (403, 407)


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy that opens CONNECT tunnels."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # "Basic ...", a secret

    def __str__(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """`http://[user:password@]host[:port]` as a `Proxy`. Raises `ValueError` with a message
    that never repeats the URL, which may hold a password."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("proxy is not a valid URL (http://[user:password@]host[:port])") from None
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise ValueError(
            "an https:// proxy is not supported (TLS to the proxy itself); use http://: "
            "the tunnel still carries TLS end to end to an https provider"
        )
    if scheme != "http":
        raise ValueError(f"proxy must be an http:// URL or {DIRECT!r}")
    if not parts.hostname:
        raise ValueError("proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("proxy URL must be http://[user:password@]host[:port], with no path")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    # Without a port: 80, the http scheme's, as httpx and requests do (curl assumes 1080).
    return Proxy(parts.hostname, port or 80, authorization)


def choose_proxy(
    setting: str | None, scheme: str, host: str, environment: Mapping[str, str]
) -> Proxy | None:
    """The proxy for a provider's origin, or None to connect directly.

    `setting` is the provider's `proxy`: a URL (always that proxy), `direct` (never a
    proxy), or None: the environment as curl, httpx and requests read it
    (`urllib.request.getproxies_environment()`: HTTPS_PROXY for https origins, HTTP_PROXY
    for http ones, NO_PROXY to bypass). Raises `ValueError` for an unusable proxy.
    """
    if setting == DIRECT:
        return None
    if setting is not None:
        return parse_proxy(setting)
    url = environment.get(scheme)
    if not url or proxy_bypass_environment(host, dict(environment)):
        return None
    if "://" not in url:  # "proxy.corp:3128" is common in the environment: http:// is meant
        url = f"http://{url}"
    try:
        return parse_proxy(url)
    except ValueError as exc:
        raise ValueError(f"{scheme.upper()}_PROXY from the environment: {exc}") from None


async def open_tunnel(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy, host: str, port: int
) -> None:
    """Ask the proxy, connected on `sock`, for a tunnel to host:port; return once it is open.

    Raises `ProxyError` or `OSError`; the caller bounds the time it may take. Only the
    answer's head is read, and nothing may follow it: the client speaks first in both HTTP
    and TLS, so bytes after a 2xx head are not the provider's.
    """
    target = f"{_bracketed(host)}:{port}"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if proxy.authorization is not None:
        request += f"Proxy-Authorization: {proxy.authorization}\r\n"
    await loop.sock_sendall(sock, f"{request}\r\n".encode())
    head = b""
    while (end := head.find(b"\r\n\r\n")) < 0:
        if len(head) > _MAX_HEAD:
            raise ProxyError(f"the proxy's answer to CONNECT has a head over {_MAX_HEAD} bytes")
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ProxyError("the proxy closed the connection without answering CONNECT")
        head += chunk
    status_line = head[: head.find(b"\r\n")].decode("latin-1")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProxyError("the proxy did not answer CONNECT in HTTP/1.1")
    shown = _printable(status_line)
    status = int(code)
    if status == 407:
        given = "the credentials given" if proxy.authorization else "no credentials configured"
        raise ProxyError(f"the proxy refused authentication ({given}): {shown}", status)
    if not 200 <= status < 300:
        raise ProxyError(f"the proxy refused the tunnel to {target}: {shown}", status)
    if len(head) > end + 4:
        raise ProxyError("the proxy sent bytes after its answer to CONNECT")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _printable(text: str, limit: int = 200) -> str:
    """A status line from the wire, safe to put in a message."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
