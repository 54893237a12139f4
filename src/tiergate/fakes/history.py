"""What a fake upstream received: one typed record per request."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tiergate.fakes.prompt import WireProtocol
from tiergate.fakes.script import Scripted


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake saw it; filled in while the request is served.

    ``headers`` are case-insensitive; ``started``/``finished`` are
    ``time.monotonic()`` values. ``disconnected`` is true when the client went
    away (or cancelled) before the response was complete —
    the proof that a caller cancelled its upstream call. ``completed`` is true when
    the whole response, including the end of a stream, was sent.
    """

    protocol: WireProtocol
    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    started: float
    body: Any = None
    model: str | None = None
    stream: bool = False
    answer: Scripted | None = None
    status: int | None = None
    finished: float | None = None
    completed: bool = False
    disconnected: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from arrival to the end of the response (or the disconnect)."""
        return None if self.finished is None else self.finished - self.started


@dataclass(slots=True)
class History:
    """Every request received, oldest first (the oldest dropped beyond ``limit``)."""

    limit: int | None = None
    _records: deque[RecordedRequest] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._records = deque(maxlen=self.limit)

    def add(self, record: RecordedRequest) -> None:
        """Append a record (the server does this as each request arrives)."""
        self._records.append(record)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(list(self._records))

    def __getitem__(self, index: int) -> RecordedRequest:
        return self._records[index]

    def where(
        self, *, protocol: WireProtocol | None = None, model: str | None = None
    ) -> list[RecordedRequest]:
        """The records for one protocol and/or upstream model id."""
        return [
            r
            for r in list(self._records)
            if (protocol is None or r.protocol == protocol) and (model is None or r.model == model)
        ]
