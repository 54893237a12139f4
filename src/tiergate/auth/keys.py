"""Virtual keys: accepted from `Authorization: Bearer`, `x-api-key` or `api-key`, stored
only as SHA-256 hashes and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from tiergate.config.schema import KeyConfig
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


KEY_PREFIX = "tg-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(presented: str, expected: str) -> bool:
    """Whether a presented secret equals the expected one, in constant time.

    Both are hashed first, so the compared values have equal length and timing reveals
    neither the secret's content nor its length."""
    want = hashlib.sha256(expected.encode("utf-8")).digest()
    got = hashlib.sha256(presented.encode("utf-8")).digest()
    return hmac.compare_digest(want, got)


def generate_key() -> str:
    """A new secret: `tg-` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hint(secret: str) -> str:
    """What may be shown of a key after it is created: its first characters."""
    return secret[:7] + "…"


def key_from_config(k: KeyConfig) -> KeyInfo:
    """A `keys:` entry of the YAML config as the ring holds it."""
    return KeyInfo(
        name=k.name,
        key_hash=hash_key(k.key),
        budget_usd=k.budget_usd,
        period=k.period,
        rpm=k.rpm,
        tpm=k.tpm,
        models=frozenset(k.models),
        tiers=frozenset(k.tiers),
        routes=frozenset(k.routes),
    )


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
    """Keys known to this process, indexed by hash: the config's keys, plus the key store's
    as last loaded (`replace_stored` swaps them in one assignment; readers never lock)."""

    def __init__(self, keys: Iterable[KeyInfo] = (), *, required: bool | None = None):
        self._fixed = {k.key_hash: k for k in keys}
        self._stored: dict[str, KeyInfo] = {}
        self._by_hash = dict(self._fixed)
        self._required = required

    @property
    def required(self) -> bool:
        """Explicitly configured, else: whenever any key exists."""
        return bool(self._by_hash) if self._required is None else self._required

    @required.setter
    def required(self, value: bool) -> None:
        self._required = value

    def add(self, key: KeyInfo) -> None:
        """A key that stays whatever the store says (config keys, tests)."""
        self._fixed[key.key_hash] = key
        self._by_hash = {**self._stored, **self._fixed}

    def put_stored(self, key: KeyInfo) -> None:
        """One key created or revoked in the store by this process: effective at once."""
        self._stored = {**self._stored, key.key_hash: key}
        self._by_hash = {**self._stored, **self._fixed}

    def replace_stored(self, keys: Iterable[KeyInfo]) -> None:
        """Every key of the store, as just loaded."""
        self._stored = {k.key_hash: k for k in keys}
        self._by_hash = {**self._stored, **self._fixed}

    def __iter__(self) -> Iterator[KeyInfo]:
        return iter(list(self._by_hash.values()))

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
