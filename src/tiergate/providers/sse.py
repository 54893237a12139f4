"""Incremental server-sent-events parser (the subset LLM providers use).

Parsing is lazy: `push` only appends bytes, `next` parses up to the end of one event. A
burst of a thousand events is handed on one event at a time, so the first one is not held
back while the rest are parsed.
"""

from __future__ import annotations

from tiergate.providers.base import SSEEvent

_LF = 10
_CR = 13
_COLON = 58
_SPACE = 32


class SSEParser:
    """Feed raw bytes as they arrive; get complete events back."""

    __slots__ = ("_buffer", "_carried", "_data", "_event", "_mark", "_pos", "_scanned")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0  # start of the first line not parsed yet
        self._scanned = 0  # no line feed before this offset (saves rescans of a long line)
        self._mark = 0  # where the event being parsed began (for `pending`)
        self._carried = 0  # bytes of that event already dropped from the buffer
        self._data: list[str] = []
        self._event = "message"

    @property
    def pending(self) -> int:
        """Bytes received since the last complete event: what one event is costing so far."""
        return self._carried + len(self._buffer) - self._mark

    def push(self, chunk: bytes) -> None:
        """Append received bytes; nothing is parsed until `next`."""
        buffer = self._buffer
        pos = self._pos
        if pos:
            self._carried += pos - self._mark
            del buffer[:pos]
            self._scanned = max(self._scanned - pos, 0)
            self._pos = self._mark = 0
        buffer += chunk

    def next(self) -> SSEEvent | None:
        """The next complete event, or None until more bytes are pushed."""
        buffer = self._buffer
        pos = self._pos
        if not self._data and buffer.startswith(b"data: ", pos):
            # The usual event, "data: <one line>\n\n", in one step.
            nl = buffer.find(b"\n", pos + 6)
            if 0 < nl < len(buffer) - 1 and buffer[nl + 1] == _LF and buffer[nl - 1] != _CR:
                event = SSEEvent(buffer[pos + 6 : nl].decode("utf-8", "replace"), self._event)
                self._event = "message"
                self._pos = self._mark = nl + 2
                self._carried = 0
                return event
        while True:
            nl = buffer.find(b"\n", max(pos, self._scanned))
            if nl < 0:
                self._pos = pos
                self._scanned = len(buffer)
                return None
            start, pos = pos, nl + 1
            end = nl - 1 if nl > start and buffer[nl - 1] == _CR else nl
            if end == start:  # a blank line ends the event
                self._mark, self._carried = pos, 0
                if self._data:
                    event = SSEEvent("\n".join(self._data), self._event)
                    self._data, self._event = [], "message"
                    self._pos = pos
                    return event
                self._event = "message"
                continue
            first = buffer[start]
            if first == _COLON:  # comment / keep-alive: nothing of it is kept
                if not self._data:
                    self._mark, self._carried = pos, 0
                continue
            if buffer.startswith(b"data:", start):
                value = start + 5
                if value < end and buffer[value] == _SPACE:
                    value += 1
                self._data.append(buffer[value:end].decode("utf-8", "replace"))
                continue
            name, _, field = bytes(buffer[start:end]).partition(b":")
            if field.startswith(b" "):
                field = field[1:]
            if name == b"data":
                self._data.append(field.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = field.decode("utf-8", "replace")

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Push `chunk` and parse every event it completes."""
        self.push(chunk)
        events: list[SSEEvent] = []
        while (event := self.next()) is not None:
            events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Events left when the connection ends (a final event without its blank line)."""
        if len(self._buffer) > self._pos or self._data:
            return self.feed(b"\n\n")
        return []
