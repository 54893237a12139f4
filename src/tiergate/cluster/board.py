"""Circuit-breaker state shared by every instance, through a Redis stream.

The executor and router keep asking the local `HealthBoard`, which answers from memory:
no request waits on Redis. What is shared are the *transitions*: when a circuit opens
(for how long, and whether the credential is dead) or closes, this instance appends one
entry to the stream `<prefix>health`, in the background. Every instance tails that
stream with a blocking `XREAD` and adopts other instances' verdicts into its own board.

How stale a view can be: one `XADD` plus the `XREAD` delivery, a few milliseconds on a
LAN, bounded by the 1 s block timeout only when a read is being re-issued. While Redis
is unreachable each instance keeps its own breakers (the behaviour of a single
instance); when Redis returns, the tail resumes where it stopped and catches up.

An instance that starts replays the stream's recent entries (the stream is capped at
about 1,000 entries), so it starts with the cluster's open circuits. Times travel as
wall-clock deadlines (keep clocks in sync, as NTP does) and become local monotonic ones.

Failure *counts* stay local: each instance trips its own breaker after
`circuit.failure_threshold` consecutive failures, and the trip is what is shared. After
the cooldown each instance lets its own single probe through, so a recovering upstream
sees at most one probe per instance.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from tiergate.background import stop_task
from tiergate.cluster.link import RedisLink, redis_errors
from tiergate.execution.health import HealthBoard

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tiergate.cluster")

_MAXLEN = 1000
_BLOCK_MS = 1000


class SharedHealth:
    """Publishes this board's circuit transitions and adopts the other instances'."""

    def __init__(
        self,
        board: HealthBoard,
        client: Redis,
        tail: Redis,
        prefix: str,
        link: RedisLink,
    ):
        self.board = board
        self.client = client  # requests and replies
        self.tail = tail  # blocking reads get a client (and connection) of their own
        self.stream = f"{prefix}health"
        self.link = link
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.published = 0
        self.adopted = 0
        self._last_id = "$"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        board.listeners.append(self._publish)

    # -- outgoing ----------------------------------------------------------------------------

    def _publish(self, deployment: str, open_for: float, dead_credential: bool) -> None:
        if not self.link.up:
            return  # other instances cannot hear us; they keep their own breakers meanwhile
        until = time.time() + open_for if open_for > 0 else 0.0
        fields = {
            "origin": self.origin,
            "deployment": deployment,
            "until": f"{until:.3f}",
            "dead": "1" if dead_credential else "0",
        }
        call = self.client.xadd(self.stream, fields, maxlen=_MAXLEN, approximate=True)  # type: ignore[arg-type]
        task = asyncio.get_running_loop().create_task(self._send(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, call: Any) -> None:
        try:
            await call
            self.published += 1
        except redis_errors() as exc:
            self.link.lost(exc)

    # -- incoming ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._replay()
        except redis_errors() as exc:  # start anyway, with local breakers; the tail retries
            self.link.lost(exc)
        self._reader = asyncio.create_task(self._read(), name="tiergate-shared-health")

    async def _replay(self) -> None:
        entries: Any = await self.client.xrevrange(self.stream, count=_MAXLEN)
        latest: dict[str, dict[str, str]] = {}
        for entry_id, raw in entries:  # newest first: the first seen per deployment wins
            fields = _text(raw)
            latest.setdefault(fields.get("deployment", ""), fields)
            if self._last_id == "$":
                self._last_id = _str(entry_id)
        for fields in latest.values():
            self._adopt(fields, replay=True)

    async def _read(self) -> None:
        errors = redis_errors()
        while True:
            if not self.link.up:
                await asyncio.sleep(0.5)
                continue
            try:
                got: Any = await self.tail.xread({self.stream: self._last_id}, block=_BLOCK_MS)
            except errors as exc:
                self.link.lost(exc)
                continue
            for _stream, entries in got or ():
                for entry_id, raw in entries:
                    self._last_id = _str(entry_id)
                    self._adopt(_text(raw))

    def _adopt(self, fields: dict[str, str], *, replay: bool = False) -> None:
        if fields.get("origin") == self.origin and not replay:
            return
        deployment = fields.get("deployment")
        if not deployment:
            return
        until = float(fields.get("until", "0") or 0)
        open_for = until - time.time() if until else 0.0
        if replay and open_for <= 0:
            return  # an old verdict that has run out: nothing to adopt at startup
        self.board.adopt(deployment, max(open_for, 0.0), fields.get("dead") == "1")
        self.adopted += 1

    async def close(self) -> None:
        self.board.listeners.remove(self._publish)
        reader, self._reader = self._reader, None
        await stop_task(reader)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text(raw: dict[Any, Any]) -> dict[str, str]:
    return {_str(k): _str(v) for k, v in raw.items()}
