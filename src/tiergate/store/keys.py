"""The key store: virtual keys in the database (SQLite or PostgreSQL), hashes only.

Used by `tiergate keys`, the admin API and the gateway's periodic reload. Every method
is synchronous and serialised by a lock; the gateway calls it from a worker thread.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from tiergate.auth.keys import KeyInfo, generate_key, hash_key, key_hint
from tiergate.errors import BadRequest
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import open_migrated

PERIODS = ("day", "month", "total")
_COLUMNS = (
    "name, key_hash, hint, budget_usd, period, rpm, tpm, models, tiers, routes,"
    " created_at, revoked_at"
)


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What `keys create` asks for."""

    name: str
    budget_usd: float | None = None
    period: str = "month"
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()

    def check(self) -> None:
        """Raises `BadRequest` naming the first problem."""
        if not self.name or len(self.name) > 128 or not self.name.isprintable():
            raise BadRequest("key name must be 1-128 printable characters", param="name")
        if self.period not in PERIODS:
            raise BadRequest(f"period must be one of {PERIODS}", param="period")
        if self.budget_usd is not None and not 0 <= self.budget_usd < float("inf"):
            raise BadRequest("budget must be a finite number >= 0", param="budget_usd")
        for label, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value < 1:
                raise BadRequest(f"{label} must be >= 1", param=label)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as listed: never the secret, only its first characters."""

    info: KeyInfo
    hint: str
    created_at: float
    revoked_at: float | None = None

    def public(self) -> dict[str, object]:
        """JSON for `keys list --json` and `GET /admin/keys`."""
        k = self.info
        return {
            "name": k.name,
            "hint": self.hint,
            "budget_usd": k.budget_usd,
            "period": k.period,
            "rpm": k.rpm,
            "tpm": k.tpm,
            "models": sorted(k.models),
            "tiers": sorted(k.tiers),
            "routes": sorted(k.routes),
            "created_at": self.created_at,
            "revoked": k.revoked,
            "revoked_at": self.revoked_at,
        }


class KeyExists(BadRequest):
    """A key with this name exists (revoked keys keep their name)."""

    status = 409
    code = "key_exists"


class KeyStore:
    """Virtual keys in one database."""

    def __init__(self, url: DatabaseURL):
        self.url = url
        self._db: Database | None = None
        self._lock = threading.Lock()

    def _conn(self) -> Database:
        if self._db is None:
            self._db = open_migrated(self.url)
        return self._db

    def create(self, spec: KeySpec) -> tuple[str, StoredKey]:
        """A new key: the secret (shown once, never stored) and what is stored."""
        spec.check()
        secret = generate_key()
        now = time.time()
        info = KeyInfo(
            name=spec.name,
            key_hash=hash_key(secret),
            budget_usd=spec.budget_usd,
            period=spec.period,
            rpm=spec.rpm,
            tpm=spec.tpm,
            models=frozenset(spec.models),
            tiers=frozenset(spec.tiers),
            routes=frozenset(spec.routes),
        )
        with self._lock:
            db = self._conn()
            with db.transaction():
                if db.query("SELECT 1 FROM {p}keys WHERE name = ?", (spec.name,)):
                    raise KeyExists(f"a key named {spec.name!r} exists", param="name")
                db.execute(
                    f"INSERT INTO {{p}}keys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        info.name,
                        info.key_hash,
                        key_hint(secret),
                        info.budget_usd,
                        info.period,
                        info.rpm,
                        info.tpm,
                        _json(spec.models),
                        _json(spec.tiers),
                        _json(spec.routes),
                        now,
                        None,
                    ),
                )
        return secret, StoredKey(info, key_hint(secret), now)

    def revoke(self, name: str) -> StoredKey | None:
        """Mark the key revoked; None when there is no such key."""
        with self._lock:
            db = self._conn()
            db.execute(
                "UPDATE {p}keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
            rows = db.query(f"SELECT {_COLUMNS} FROM {{p}}keys WHERE name = ?", (name,))
        return _stored(rows[0]) if rows else None

    def list(self, *, include_revoked: bool = True) -> builtins.list[StoredKey]:
        with self._lock:
            rows = self._conn().query(f"SELECT {_COLUMNS} FROM {{p}}keys ORDER BY name")
        keys = [_stored(r) for r in rows]
        return keys if include_revoked else [k for k in keys if not k.info.revoked]

    def load(self) -> builtins.list[KeyInfo]:
        """Every key, revoked ones included (so that they answer "revoked", not "unknown")."""
        return [k.info for k in self.list()]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _json(values: Iterable[str]) -> str:
    return orjson.dumps(sorted(values)).decode()


def _stored(row: tuple[object, ...]) -> StoredKey:
    name, key_hash, hint, budget, period, rpm, tpm, models, tiers, routes, created, revoked = row
    info = KeyInfo(
        name=str(name),
        key_hash=str(key_hash),
        budget_usd=float(budget) if budget is not None else None,  # type: ignore[arg-type]
        period=str(period) if period is not None else None,
        rpm=int(rpm) if rpm is not None else None,  # type: ignore[call-overload]
        tpm=int(tpm) if tpm is not None else None,  # type: ignore[call-overload]
        models=frozenset(orjson.loads(str(models))),
        tiers=frozenset(orjson.loads(str(tiers))),
        routes=frozenset(orjson.loads(str(routes))),
        revoked=revoked is not None,
    )
    return StoredKey(
        info,
        str(hint),
        float(created),  # type: ignore[arg-type]
        float(revoked) if revoked is not None else None,  # type: ignore[arg-type]
    )
