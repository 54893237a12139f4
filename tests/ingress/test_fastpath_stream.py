"""The fast path's chunk writer: the first event at once, a burst in one write."""

import asyncio
from types import SimpleNamespace

from tiergate.ingress.fastpath import _ChunkWriter


class Transport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True


def cycle(transport: Transport) -> SimpleNamespace:
    return SimpleNamespace(
        transport=transport,
        disconnected=False,
        keep_alive=True,
        response_complete=False,
        message_event=asyncio.Event(),
        on_response=lambda: None,
    )


async def test_first_event_goes_at_once_and_a_burst_goes_in_one_write():
    transport = Transport()
    c = cycle(transport)
    writer = _ChunkWriter(c, b"HEAD\r\n\r\n", asyncio.get_running_loop())
    writer.add(b"data: 1\n\n")
    assert transport.writes == [b"HEAD\r\n\r\n9\r\ndata: 1\n\n\r\n"]
    for i in range(100):
        writer.add(b"data: x\n\n")
    assert len(transport.writes) == 1  # nothing yet: the rest waits for the loop's next turn
    await asyncio.sleep(0)
    assert len(transport.writes) == 2 and transport.writes[1].count(b"data: x") == 100
    writer.add(b"data: last\n\n")
    writer.finish()
    assert transport.writes[-1].endswith(b"0\r\n\r\n")
    assert c.response_complete and not transport.closed
    body = b"".join(transport.writes)
    assert body.count(b"\r\n0\r\n\r\n") == 1


async def test_nothing_is_written_after_the_client_left():
    transport = Transport()
    c = cycle(transport)
    writer = _ChunkWriter(c, b"HEAD\r\n\r\n", asyncio.get_running_loop())
    writer.add(b"a")
    writer.add(b"b")
    c.disconnected = True
    await asyncio.sleep(0)
    assert len(transport.writes) == 1


async def test_a_connection_without_keep_alive_is_closed_at_the_end():
    transport = Transport()
    c = cycle(transport)
    c.keep_alive = False
    writer = _ChunkWriter(c, b"HEAD\r\n\r\n", asyncio.get_running_loop())
    writer.finish()
    assert transport.closed and transport.writes == [b"HEAD\r\n\r\n0\r\n\r\n"]
