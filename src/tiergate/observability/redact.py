"""Secrets out of every text the gateway writes: the second line of defence.

The first line is not writing secrets at all (keys are hashed, headers are never logged).
This one rewrites any text about to leave the process: the exact secret values the
configuration knows (provider keys, virtual keys, the admin key) and anything shaped
like a credential (``Authorization: Bearer …``, ``?key=…``, ``sk-…``, ``AIza…``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"

# Shapes of credentials that must never be written even when the config does not know
# them (a key pasted into a prompt, a provider echoing a key in an error).
_SHAPES = (
    # header or field name, separator, optional scheme, value
    r"(?i:(?P<name>\b(?:authorization|proxy-authorization|x-api-key|api[-_]?key|"
    r"x-goog-api-key|admin[-_]?key|secret|password|access[-_]token)\b"
    r"[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;&}]+)",
    # query parameters carrying credentials
    r"(?i:(?P<query>[?&](?:key|api_key|apikey|access_token|token|sig)=)[^&\s\"'#]+)",
    # bearer tokens anywhere
    r"(?i:(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=-]{6,})",
    # well-known key formats: OpenAI / Anthropic / generic sk-, Google, tiergate keys
    r"\bsk-[A-Za-z0-9_-]{8,}",
    r"\bAIza[0-9A-Za-z_-]{20,}",
    r"\btg-[A-Za-z0-9_-]{16,}",
)


# Lower-case text that every `_SHAPES` match contains (each alternative needs one of these).
# Almost no text written contains any of them, and `in` is far cheaper than the regex, which
# tries every alternative at every position (tens of microseconds per log line).
_TRIGGERS = (
    "authorization",
    "api-key",
    "api_key",
    "apikey",
    "admin",
    "secret",
    "password",
    "access",
    "key=",
    "token=",
    "sig=",
    "bearer",
    "sk-",
    "aiza",
    "tg-",
)


# Every non-ASCII character that `re.IGNORECASE` matches to an ASCII letter or digit
# (found by testing all of Unicode against [a-z0-9]), mapped to that letter.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_FOLDED = ("\u0130", "\u0131", "\u017f", "\u212a")


class Redactor:
    """Replaces known secret values and credential-shaped text with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Very short values would mask ordinary words; configs use real keys anyway.
        known = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
        parts = [re.escape(s) for s in known]
        parts.extend(f"(?:{shape})" for shape in _SHAPES)
        self._pattern = re.compile("|".join(parts))
        self._known = tuple(known)

    @property
    def known(self) -> tuple[str, ...]:
        """The exact secret values this redactor masks (for tests and self-checks)."""
        return self._known

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked (the field name of a ``name: value`` kept)."""
        if not self.may_hold_secret(text):
            return text
        return self._pattern.sub(_mask, text)

    def fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` with every text value masked; one cheap check over all of them first
        (a request line has a dozen), so the usual line is returned as it is."""
        if not self.may_hold_secret("\n".join(v for v in fields.values() if isinstance(v, str))):
            return fields
        return {k: self(v) if isinstance(v, str) else v for k, v in fields.items()}

    def may_hold_secret(self, text: str) -> bool:
        """False only when ``text`` surely holds nothing to mask (a cheap check)."""
        # Case-insensitive matching also lets four non-ASCII letters stand for ASCII ones
        # (the Kelvin sign for "k", ...); fold them first so the triggers still catch them.
        # (Routing reasons hold "→", so most request lines are not ASCII.)
        if not text.isascii() and any(c in text for c in _FOLDED):
            text = text.translate(_FOLD)
        lowered = text.lower()
        for trigger in _TRIGGERS:
            if trigger in lowered:
                return True
        return any(secret in text for secret in self._known)


def _mask(match: re.Match[str]) -> str:
    groups = match.groupdict()
    for name in ("name", "query", "bearer"):
        prefix = groups.get(name)
        if prefix:
            return prefix + MASK
    return MASK


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the message, its fields and any traceback."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = self._redact.fields(fields)
        if record.exc_info:
            # Format the traceback now so its text can be masked; the formatter reuses it.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._redact(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True
