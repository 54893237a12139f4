"""Requests and tokens per minute per key: a sliding-window counter.

The window is approximated from two fixed minutes (this one and the last, weighted by how
much of the last one still lies inside the sliding minute), as most gateways and CDNs do:
constant memory per key, no timestamp lists.

Tokens are only known after the answer, so a request is admitted on what the key has
used so far plus its prompt estimate, charged the estimate at once and the difference
once its real usage is known.
"""

from __future__ import annotations

from typing import Protocol

from tiergate.auth.keys import KeyInfo
from tiergate.errors import RateLimited

WINDOW = 60.0


def minute(now: float) -> int:
    return int(now // WINDOW)


def weighted(previous: int, current: int, now: float) -> float:
    """Usage over the sliding minute that ends now."""
    into = (now % WINDOW) / WINDOW
    return previous * (1.0 - into) + current


def retry_after(now: float) -> float:
    """Seconds until the current fixed minute ends (a safe, simple hint)."""
    return WINDOW - (now % WINDOW)


def over_rpm(key: KeyInfo, now: float) -> RateLimited:
    return RateLimited(
        f"rate limit reached: key {key.name!r} allows {key.rpm} requests per minute",
        retry_after=retry_after(now),
    )


def over_tpm(key: KeyInfo, now: float) -> RateLimited:
    return RateLimited(
        f"rate limit reached: key {key.name!r} allows {key.tpm} tokens per minute",
        retry_after=retry_after(now),
    )


class RateLimitBackend(Protocol):
    async def admit(self, key: KeyInfo, prompt_tokens: int, now: float) -> None:
        """Count one request and its prompt estimate; raises `RateLimited` when over."""
        ...

    def charge(self, key: KeyInfo, tokens: int, now: float) -> None:
        """Add (or, when negative, give back) tokens once the real usage is known."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimits:
    """Counters in this process (one gateway instance)."""

    def __init__(self) -> None:
        # (key name, "r" | "t") -> (minute, count this minute, count last minute)
        self._counts: dict[tuple[str, str], tuple[int, int, int]] = {}

    def _read(self, name: str, kind: str, now: float) -> tuple[int, int, int]:
        m = minute(now)
        got = self._counts.get((name, kind))
        if got is None or got[0] < m - 1:
            return (m, 0, 0)
        if got[0] == m - 1:
            return (m, 0, got[1])
        return got

    def _add(self, name: str, kind: str, amount: int, now: float) -> None:
        m, cur, prev = self._read(name, kind, now)
        self._counts[(name, kind)] = (m, cur + amount, prev)

    async def admit(self, key: KeyInfo, prompt_tokens: int, now: float) -> None:
        if key.rpm is not None:
            _, cur, prev = self._read(key.name, "r", now)
            if weighted(prev, cur, now) + 1 > key.rpm:
                raise over_rpm(key, now)
        if key.tpm is not None:
            _, cur, prev = self._read(key.name, "t", now)
            used = weighted(prev, cur, now)
            # A single prompt larger than the whole allowance may still run on an idle key.
            if used >= key.tpm or (used > 0 and used + prompt_tokens > key.tpm):
                raise over_tpm(key, now)
        if key.rpm is not None:
            self._add(key.name, "r", 1, now)
        if key.tpm is not None:
            self._add(key.name, "t", prompt_tokens, now)

    def charge(self, key: KeyInfo, tokens: int, now: float) -> None:
        if key.tpm is not None and tokens:
            self._add(key.name, "t", tokens, now)

    async def close(self) -> None:
        return None
