"""Virtual keys: accepted from `Authorization: Bearer`, `x-api-key` or `api-key`, stored
only as SHA-256 hashes and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tiergate.errors import AuthenticationFailed


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a request's key allows. Empty allow-lists mean "everything"."""

    name: str
    key_hash: str
    budget_usd: float | None = None
    period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    models: frozenset[str] = field(default_factory=frozenset)
    tiers: frozenset[str] = field(default_factory=frozenset)
    routes: frozenset[str] = field(default_factory=frozenset)
    revoked: bool = False


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from whichever header carries it; the same key gives the same result."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "api-key"):
        other = headers.get(name)
        if other and other.strip():
            return other.strip()
    return None


class KeyRing:
    """Keys known to this process, indexed by hash."""

    def __init__(self, keys: Iterable[KeyInfo] = (), *, required: bool | None = None):
        self._by_hash = {k.key_hash: k for k in keys}
        self.required = bool(self._by_hash) if required is None else required

    def add(self, key: KeyInfo) -> None:
        self._by_hash[key.key_hash] = key
        self.required = True

    def authenticate(self, headers: Mapping[str, str]) -> KeyInfo | None:
        """The caller's key, None when keys are not required; raises `AuthenticationFailed`."""
        secret = presented_key(headers)
        if secret is None:
            if self.required:
                raise AuthenticationFailed(
                    "missing API key: send it as 'Authorization: Bearer <key>'"
                )
            return None
        digest = hash_key(secret)
        found = self._by_hash.get(digest)
        # The dict lookup finds the candidate; compare_digest keeps the final check
        # constant-time, so timing never reveals how much of a hash matched.
        if found is None or not hmac.compare_digest(found.key_hash, digest):
            if not self.required:
                return None
            raise AuthenticationFailed("invalid API key")
        if found.revoked:
            raise AuthenticationFailed("this API key has been revoked")
        return found
