"""Secrets at rest: AES-256-GCM under data keys kept outside the database.

Nothing secret is stored in tiergate's database today (provider keys come from the
environment, virtual keys are stored as hashes). This is the one way to store one if that
changes: `SecretBox.seal` turns a secret into a versioned token

    tg1.<key id>.<base64url(nonce | ciphertext | tag)>

bound to its purpose (the AAD: a token sealed for `provider:openai` does not open as
`provider:anthropic`). Data keys come from `TIERGATE_DATA_KEYS` ("id:base64key,...",
the first one seals, all of them open), so that rotation is: add a new key in front,
`rotate` every stored token, then drop the old key. Needs the `cryptography` package.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

ENV = "TIERGATE_DATA_KEYS"
VERSION = "tg1"
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_NONCE = 12


class SecretError(ValueError):
    """A token that cannot be opened: wrong purpose, unknown key, tampered or malformed."""


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class DataKeys:
    """Data keys by id; `primary` seals new tokens."""

    keys: Mapping[str, bytes]
    primary: str

    @classmethod
    def parse(cls, text: str) -> DataKeys:
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise SecretError(f"{ENV}: expected 'id:base64key', got an entry for {key_id!r}")
            try:
                raw = _b64d(encoded)
            except ValueError:
                raise SecretError(f"{ENV}: key {key_id!r} is not base64") from None
            if len(raw) != 32:
                raise SecretError(f"{ENV}: key {key_id!r} must be 32 bytes, not {len(raw)}")
            if key_id in keys:
                raise SecretError(f"{ENV}: key id {key_id!r} appears twice")
            keys[key_id] = raw
            order.append(key_id)
        if not order:
            raise SecretError(f"{ENV} holds no data key")
        return cls(keys, order[0])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DataKeys:
        return cls.parse((environ if environ is not None else os.environ).get(ENV, ""))


def generate_key(key_id: str | None = None) -> str:
    """A fresh `id:base64key` entry for `TIERGATE_DATA_KEYS`."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    if not _KEY_ID.match(key_id):
        raise SecretError(f"key id {key_id!r}: use lower-case letters, digits and '-'")
    return f"{key_id}:{_b64e(secrets.token_bytes(32))}"


class SecretBox:
    """Seals and opens secrets with the data keys."""

    def __init__(self, keys: DataKeys):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._keys = keys
        self._ciphers = {key_id: AESGCM(raw) for key_id, raw in keys.keys.items()}

    @staticmethod
    def _aad(key_id: str, purpose: str) -> bytes:
        return f"{VERSION}|{key_id}|{purpose}".encode()

    def seal(self, secret: str, purpose: str) -> str:
        key_id = self._keys.primary
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[key_id].encrypt(nonce, secret.encode(), self._aad(key_id, purpose))
        return f"{VERSION}.{key_id}.{_b64e(nonce + sealed)}"

    def open(self, token: str, purpose: str) -> str:
        from cryptography.exceptions import InvalidTag

        _, key_id, payload = self._split(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretError(f"token sealed with data key {key_id!r}, which is not configured")
        try:
            raw = _b64d(payload)
            plain = cipher.decrypt(raw[:_NONCE], raw[_NONCE:], self._aad(key_id, purpose))
        except (InvalidTag, ValueError):
            raise SecretError("token does not open: wrong purpose, or altered") from None
        return plain.decode()

    def needs_rotation(self, token: str) -> bool:
        """Whether the token was sealed with a key other than the primary one."""
        return self._split(token)[1] != self._keys.primary

    def rotate(self, token: str, purpose: str) -> str:
        """The same secret sealed under the primary key (the token itself if it already is)."""
        if not self.needs_rotation(token):
            return token
        return self.seal(self.open(token, purpose), purpose)

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise SecretError(f"not a {VERSION} sealed secret")
        return parts[0], parts[1], parts[2]
