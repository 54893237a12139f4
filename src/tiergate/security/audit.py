"""The audit log: one JSON line per admin action (key create/revoke, budget changes, secret
rotation, refused admin logins), secrets redacted, each line chained to the one before.

Callers say what happened in domain words and never pass a secret on purpose; the log
still masks any detail whose name or shape says "credential" (the second line of
defence). Each line carries `prev`, the SHA-256 of the previous line, so that an edited
or deleted line breaks the chain (`verify_chain`). Where it goes: the file named by
`TIERGATE_AUDIT_LOG` (recommended), else the `tiergate.audit` logger at WARNING level;
`TIERGATE_AUDIT_LOG=off` turns it off.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from tiergate.observability.redact import MASK, Redactor

ENV = "TIERGATE_AUDIT_LOG"
_GENESIS = "0" * 64
_SECRET_NAMES = ("key", "secret", "token", "password", "credential", "authorization")
_NOT_SECRET = frozenset({"key_name", "key_hint", "hint", "name"})

log = logging.getLogger("tiergate.audit")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _NOT_SECRET and any(word in lowered for word in _SECRET_NAMES)


class AuditLog:
    """Append-only, hash-chained audit trail. Thread-safe; one per process."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        secrets: Iterable[str | None] = (),
        enabled: bool = True,
    ):
        self.path = Path(path) if path is not None else None
        self.enabled = enabled
        self._redact = Redactor(secrets)
        self._lock = threading.Lock()
        self._prev: str | None = None  # the chain's head when writing to the logger

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, secrets: Iterable[str | None] = ()
    ) -> AuditLog:
        """The audit log `TIERGATE_AUDIT_LOG` asks for (a path, `off`, or unset: the logger)."""
        value = (environ if environ is not None else os.environ).get(ENV, "").strip()
        if value.lower() == "off":
            return cls(enabled=False)
        return cls(value or None, secrets=secrets)

    def record(
        self,
        action: str,
        target: str,
        *,
        actor: str,
        source: str | None = None,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one event and return it as written (already redacted)."""
        event: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "action": action,
            "target": self._clean(target),
            "actor": self._clean(actor),
            "source": self._clean(source) if source else None,
            "outcome": outcome,
            "details": {k: self._value(k, v) for k, v in sorted((details or {}).items())},
        }
        if not self.enabled:
            return event
        with self._lock:
            if self.path is None:
                event["prev"] = self._prev or _GENESIS
                line = orjson.dumps(event)
                self._prev = hashlib.sha256(line).hexdigest()
                # WARNING, so that no default level threshold ever hides an audit event
                log.warning(line.decode())
            else:
                self._append(event)
        return event

    def _clean(self, text: str) -> str:
        # One line per event: no control characters from a caller can forge a second one.
        return self._redact("".join(c if c.isprintable() else "?" for c in str(text)))[:500]

    def _value(self, name: str, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if _secret_name(name):
            return MASK
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, Mapping):
            return {str(k): self._value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(name, v) for v in value]
        return self._clean(str(value))

    def _append(self, event: dict[str, Any]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Several processes (workers, the CLI) may append: the lock makes "read the last
            # line, chain to it, append" one step, so the chain holds across all of them.
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(self.path)
            event["prev"] = hashlib.sha256(last).hexdigest() if last else _GENESIS
            os.write(fd, orjson.dumps(event) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock


def _last_line(path: Path) -> bytes:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(size - 65536, 0))
        lines = f.read().rstrip(b"\n").split(b"\n")
    return lines[-1] if lines else b""


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every event of an audit file, oldest first."""
    with Path(path).open("rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def verify_chain(path: str | Path) -> int | None:
    """The number of the first line whose `prev` does not match (1-based), else None."""
    prev = _GENESIS
    with Path(path).open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.rstrip(b"\n")
            if not line:
                continue
            if orjson.loads(line).get("prev") != prev:
                return number
            prev = hashlib.sha256(line).hexdigest()
    return None
