"""Incremental server-sent-events parser (the subset LLM providers use)."""

from __future__ import annotations

from tiergate.providers.base import SSEEvent


class SSEParser:
    """Feed raw bytes as they arrive; get complete events back."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = "message"

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                break
            raw = self._buffer[:nl]
            self._buffer = self._buffer[nl + 1 :]
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    events.append(SSEEvent("\n".join(self._data), self._event))
                self._data, self._event = [], "message"
                continue
            if line.startswith(b":"):
                continue  # comment / keep-alive
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        return events

    def close(self) -> list[SSEEvent]:
        """Events left when the connection ends (a final event without its blank line)."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events
