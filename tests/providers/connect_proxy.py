"""A real HTTP CONNECT proxy for tests, a `RawServer` in asyncio streams: it parses
CONNECT, may demand Basic credentials (407) or refuse every tunnel, pipes bytes both ways
and counts tunnels."""

from __future__ import annotations

import asyncio
import base64
import contextlib

from tests.providers.test_transport import RawServer


class ConnectProxy(RawServer):
    """`async with ConnectProxy() as proxy:` listens on 127.0.0.1 at `proxy.proxy_url()`.

    `credentials` (user, password) makes it answer 407 to any other Proxy-Authorization;
    `refuse` (a status such as "403 Forbidden") makes it answer that to every CONNECT.
    `heads` are the CONNECT request heads, `tunnels` the tunnels it opened.
    """

    def __init__(
        self, *, credentials: tuple[str, str] | None = None, refuse: str | None = None
    ) -> None:
        super().__init__(ConnectProxy._tunnel)
        self.credentials = credentials
        self.refuse = refuse
        self.tunnels = 0

    def proxy_url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    @property
    def authorizations(self) -> list[str | None]:
        """The decoded user:password of each CONNECT (None where none was sent)."""
        found: list[str | None] = []
        for head in self.heads:
            value = _header(head, b"proxy-authorization")
            scheme, _, token = (value or b"").partition(b" ")
            found.append(base64.b64decode(token).decode() if scheme == b"Basic" else None)
        return found

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        if self.refuse is not None:
            writer.write(f"HTTP/1.1 {self.refuse}\r\ncontent-length: 0\r\n\r\n".encode())
            return
        if self.credentials is not None and self.authorizations[-1] != ":".join(self.credentials):
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'proxy-authenticate: Basic realm="test"\r\ncontent-length: 6\r\n\r\ndenied'
            )
            return
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        self.tunnels += 1
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    # One side ended: end the other, which ends the tunnel.
    with contextlib.suppress(OSError):
        writer.close()


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None
