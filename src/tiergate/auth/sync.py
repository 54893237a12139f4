"""Keeping a running gateway's keys in step with the key store.

Keys are held in memory (`KeyRing`): authenticating never touches the database. A
background task reloads the whole store every `store.refresh_interval` seconds (2 by
default), so a key created or revoked anywhere (CLI, another instance) takes effect
everywhere within that interval; on the instance that served an admin API call it takes
effect at once. When the database is unreachable the last loaded keys stay in force.
"""

from __future__ import annotations

import asyncio
import logging

from tiergate.auth.keys import KeyRing
from tiergate.background import stop_task
from tiergate.store.keys import KeySpec, KeyStore, StoredKey

log = logging.getLogger("tiergate.keys")


class KeySync:
    def __init__(self, store: KeyStore, ring: KeyRing, interval: float = 2.0):
        self.store = store
        self.ring = ring
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="tiergate-key-sync")

    async def refresh(self) -> None:
        keys = await asyncio.to_thread(self.store.load)
        self.ring.replace_stored(keys)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving with the keys we have; retry next tick
                log.warning("reloading keys from %s failed: %s", self.store.url.describe(), exc)

    async def create(self, spec: KeySpec) -> tuple[str, StoredKey]:
        secret, stored = await asyncio.to_thread(self.store.create, spec)
        self.ring.put_stored(stored.info)
        return secret, stored

    async def revoke(self, name: str) -> StoredKey | None:
        stored = await asyncio.to_thread(self.store.revoke, name)
        if stored is not None:
            self.ring.put_stored(stored.info)
        return stored

    async def list(self) -> list[StoredKey]:
        return await asyncio.to_thread(self.store.list)

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        await asyncio.to_thread(self.store.close)
