"""Where each recent request went, for feedback: a bounded, compact index.

Feedback names a request by its id, and may come minutes after the answer; the quality
monitor must know the route, model and key of the last N requests. One entry per request
is kept, so an entry's size is what memory grows by until N requests have been served:
the 32-hex-digit id kept as a 128-bit int (44 bytes instead of an 81-byte string), its
`Served` shared with every other request that went the same way (interned).

Two generations of N/2 ids each, not one dict with first-in-first-out eviction: a dict
that keeps deleting its oldest keys and inserting new ones fills its table with dead
slots and, when it compacts, re-sizes for three times its live entries (a 100,000-id dict
jumped from ~5 to ~10 MB after ~185,000 requests, in the memory benchmark). A fresh dict
per generation never holds a dead slot, and the old generation is freed whole.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Served:
    """What feedback needs to know about a request: where it went."""

    route: str
    model: str
    tier: str | None
    key_name: str | None


def _id_key(request_id: str) -> int | str:
    """The id as an int when it is 32 hex digits (every id tiergate makes), else as is."""
    if len(request_id) == 32:
        try:
            return int(request_id, 16)
        except ValueError:
            pass
    return request_id


class ServedIndex:
    """The last `limit` (at least `limit // 2`) requests' `Served`, by request id."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._half = max(limit // 2, 1)
        self._current: dict[int | str, Served] = {}
        self._previous: dict[int | str, Served] = {}
        self._interned: dict[Served, Served] = {}

    def add(self, request_id: str, served: Served) -> None:
        served = self._interned.setdefault(served, served)
        if len(self._current) >= self._half:
            self._previous, self._current = self._current, {}
        self._current[_id_key(request_id)] = served

    def get(self, request_id: str) -> Served | None:
        key = _id_key(request_id)
        found = self._current.get(key)
        return found if found is not None else self._previous.get(key)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
