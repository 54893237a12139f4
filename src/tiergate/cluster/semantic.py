"""The semantic cache shared by every instance: local indexes kept in step through Redis.

Lookups stay local (a matrix product in this process, no Redis round trip). Each answer
an instance adds is also appended, with its vector, to the stream `<prefix>semantic`
(capped at about 5,000 entries); every instance tails the stream and adds the other
instances' entries to its own index. An instance that starts replays the entries whose
TTL has not run out. Staleness: one XADD plus XREAD delivery (milliseconds). While Redis
is down each instance keeps only its own entries.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from tiergate.background import stop_task
from tiergate.cache.semantic import DIM, SemanticIndex, Vector
from tiergate.cluster.link import RedisLink, redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

_MAXLEN = 5000
_BLOCK_MS = 1000


class SharedSemanticIndex(SemanticIndex):
    def __init__(self, client: Redis, tail: Redis, prefix: str, link: RedisLink):
        super().__init__()
        self.client = client
        self.tail = tail
        self.stream = f"{prefix}semantic"
        self.link = link
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._last_id = "0"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None

    def add(
        self, scope: str, vector: Vector, request_id: str, answer: bytes, ttl: float, size: int
    ) -> None:
        super().add(scope, vector, request_id, answer, ttl, size)
        if not self.link.up:
            return
        fields: dict[Any, Any] = {
            "origin": self.origin,
            "scope": scope,
            "vector": np.asarray(vector, dtype=np.float32).tobytes(),
            "id": request_id,
            "answer": answer,
            "expires": f"{time.time() + ttl:.3f}",
            "size": str(size),
        }
        call = self.client.xadd(self.stream, fields, maxlen=_MAXLEN, approximate=True)
        task = asyncio.get_running_loop().create_task(self._send(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, call: Any) -> None:
        try:
            await call
        except redis_errors() as exc:
            self.link.lost(exc)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="tiergate-shared-semantic")

    async def _read(self) -> None:
        # From "0": the first read replays what is in the stream; later reads tail it.
        errors = redis_errors()
        while True:
            if not self.link.up:
                await asyncio.sleep(0.5)
                continue
            try:
                got: Any = await self.tail.xread(
                    {self.stream: self._last_id}, count=500, block=_BLOCK_MS
                )
            except errors as exc:
                self.link.lost(exc)
                continue
            for _stream, entries in got or ():
                for entry_id, raw in entries:
                    self._last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._adopt(raw)

    def _adopt(self, raw: dict[bytes, bytes]) -> None:
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
        if _text(fields.get("origin")) == self.origin:
            return
        ttl = float(_text(fields.get("expires")) or 0) - time.time()
        vector = np.frombuffer(fields.get("vector", b""), dtype=np.float32)
        if ttl <= 0 or vector.shape != (DIM,):
            return
        super().add(
            _text(fields.get("scope")),
            vector,
            _text(fields.get("id")),
            bytes(fields.get("answer", b"")),
            ttl,
            int(_text(fields.get("size")) or 1),
        )

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        await stop_task(reader)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
