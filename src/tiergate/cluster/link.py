"""Whether this instance can reach Redis, and noticing when it comes back.

Every shared-state wrapper reports failures here (`lost`); while the link is down they
skip Redis entirely and use their local stand-ins, so a dead Redis costs the request
path nothing — not even a refused connection. A watcher pings Redis once a second while
it is down and flips the link back up on the first answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tiergate.background import stop_task

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tiergate.cluster")


def redis_errors() -> tuple[type[BaseException], ...]:
    """What "Redis is unreachable or misbehaving" looks like (timeouts included)."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


class RedisLink:
    """Up/down state of one Redis client, with the time and cause of the last change."""

    def __init__(
        self, client: Redis, *, ping_interval: float = 1.0, clock: Callable[[], float] = time.time
    ):
        self.client = client
        self.ping_interval = ping_interval
        self.up = True
        self.since = clock()
        self.last_error: str | None = None
        self.outages = 0
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Called (without arguments) each time the link comes back: resubscribe, resync.
        self.on_restore: list[Callable[[], None]] = []

    def lost(self, exc: BaseException) -> None:
        """A Redis call failed: degrade to local state until a ping succeeds."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.up:
            self.up = False
            self.since = self._clock()
            self.outages += 1
            log.warning("redis unreachable, serving with local state: %s", self.last_error)
            self._wake.set()

    def describe(self) -> dict[str, object]:
        return {
            "state": "up" if self.up else "down",
            "since": round(self.since, 3),
            "outages": self.outages,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="tiergate-redis-link")

    async def _watch(self) -> None:
        errors = redis_errors()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while not self.up:
                await asyncio.sleep(self.ping_interval)
                try:
                    await self.client.ping()
                except errors as exc:  # still down; try again next interval
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    continue
                self.up = True
                self.since = self._clock()
                log.warning("redis reachable again, shared state resumes")
                for restore in self.on_restore:
                    restore()

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
