"""A paced SSE upstream for bench/run.py: one event every INTERVAL ms, like a model
producing tokens. nginx cannot do this (`limit_rate` works in one-second steps and lets
the first second's worth through at once), so this small asyncio server does.

    python bench/paced_upstream.py PORT INTERVAL_MS CHUNKS

Every POST gets the same stream (bench/fixtures.py), sent with chunked encoding, one
event per write, over keep-alive connections. The cost of pacing is the same whether
the client is the benchmark itself or the gateway, so the difference stays the gateway's.
"""

from __future__ import annotations

import asyncio
import sys

from fixtures import sse_stream

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _events(chunks: int) -> list[bytes]:
    parts = sse_stream(chunks).split(b"\n\n")
    return [p + b"\n\n" for p in parts if p]


async def _serve(events: list[bytes], interval: float) -> asyncio.Server:
    framed = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(HEAD + framed[0])
                for frame in framed[1:]:
                    await asyncio.sleep(interval)
                    writer.write(frame)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection: this one is done
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)


async def main() -> None:
    interval = float(sys.argv[2]) / 1000
    server = await _serve(_events(int(sys.argv[3])), interval)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
