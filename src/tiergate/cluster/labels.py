"""The classifier's label cache shared by every instance, through Redis.

A label is looked up locally first; on a local miss the instance asks Redis (one GET,
bounded by the client's socket timeout) before paying for a classifier call, and every new
label is written back with a TTL in the background. While Redis is down each instance
keeps only its own labels.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tiergate.cluster.link import RedisLink, redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

_TTL_SECONDS = 24 * 3600


class SharedLabels:
    """Remote half of a `LabelCache`: prompt hash -> label in Redis."""

    def __init__(self, client: Redis, prefix: str, link: RedisLink, ttl: int = _TTL_SECONDS):
        self.client = client
        self.prefix = f"{prefix}classifier:"
        self.link = link
        self.ttl = ttl
        self._tasks: set[asyncio.Task[Any]] = set()

    async def get(self, key: bytes) -> str | None:
        if not self.link.up:
            return None
        try:
            value = await self.client.get(self.prefix + key.hex())
        except redis_errors() as exc:
            self.link.lost(exc)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def put(self, key: bytes, label: str) -> None:
        if not self.link.up:
            return
        task = asyncio.get_running_loop().create_task(self._set(key, label))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _set(self, key: bytes, label: str) -> None:
        try:
            await self.client.set(self.prefix + key.hex(), label, ex=self.ttl)
        except redis_errors() as exc:
            self.link.lost(exc)
