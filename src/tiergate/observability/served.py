"""Where each recent request went, for feedback: a bounded index of fixed size.

Feedback names a request by its id, and may come minutes after the answer; the quality
monitor must know the route, model and key of the last N requests. The index is a ring
of N slots allocated (and touched) once, at start: 16 bytes of id and 4 bytes naming the
slot's `Served` each, 2 MB for 100,000 requests. Resident memory therefore does not grow
as requests are served, neither while the ring fills nor after it has turned (a dict per
request id grew ~5 MB over the first 100,000 requests and, with first-in-first-out
eviction, jumped again when it compacted).

Adding a request costs two slice writes. Finding one scans the ids (`bytearray.rfind`,
newest first), a millisecond at most: feedback is rare, requests are not.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass

_ID_BYTES = 16


@dataclass(frozen=True, slots=True)
class Served:
    """What feedback needs to know about a request: where it went."""

    route: str
    model: str
    tier: str | None
    key_name: str | None


def _id_bytes(request_id: str) -> bytes:
    """The id's 16 bytes when it is 32 hex digits (every id tiergate makes), else a
    128-bit digest of it."""
    if len(request_id) == 2 * _ID_BYTES:
        try:
            return bytes.fromhex(request_id)
        except ValueError:
            pass
    return hashlib.blake2b(request_id.encode(), digest_size=_ID_BYTES).digest()


class ServedIndex:
    """The last `limit` requests' `Served`, by request id."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        # bytes(...) writes every page now, so the memory is resident from the start
        self._ids = bytearray(bytes(self.limit * _ID_BYTES))
        self._where = array("I", bytes(4 * self.limit))  # 0: empty, else 1 + index in _known
        self._known: list[Served] = []
        self._numbers: dict[Served, int] = {}
        self._next = 0  # the slot the next request takes
        self._count = 0

    def add(self, request_id: str, served: Served) -> None:
        number = self._numbers.get(served)
        if number is None:
            self._known.append(served)
            number = self._numbers[served] = len(self._known)
        slot = self._next
        self._ids[slot * _ID_BYTES : (slot + 1) * _ID_BYTES] = _id_bytes(request_id)
        self._where[slot] = number
        self._next = (slot + 1) % self.limit
        if self._count < self.limit:
            self._count += 1

    def get(self, request_id: str) -> Served | None:
        needle = _id_bytes(request_id)
        start = self._next * _ID_BYTES
        # newest first: the slots before the next one, then those after it (older)
        for lo, hi in ((0, start), (start, len(self._ids))):
            end = hi
            while end - lo >= _ID_BYTES:
                at = self._ids.rfind(needle, lo, end)
                if at < 0:
                    break
                if at % _ID_BYTES == 0:
                    number = self._where[at // _ID_BYTES]
                    return self._known[number - 1] if number else None
                end = at + _ID_BYTES - 1  # a match across two slots: look further back
        return None

    def __len__(self) -> int:
        return self._count
