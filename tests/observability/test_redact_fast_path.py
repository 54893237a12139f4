"""The redactor's cheap pre-check must never let through text the full regex would mask."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from tiergate.observability.redact import MASK, RedactingFilter, Redactor

SECRETS = ["upstream-secret-value", "tg-0123456789abcdefXYZ"]

# Fragments that build credential-shaped text, mixed with ordinary words and separators.
FRAGMENTS = [
    "Authorization",
    "authorization",
    "Bearer ",
    "bearer ",
    "x-api-key",
    "API_KEY",
    "apikey",
    "admin_key",
    "Secret",
    "password",
    "access-token",
    "?key=",
    "&token=",
    "&sig=",
    "sk-",
    "AIza",
    "tg-",
    "abcdefghij0123456789",
    ": ",
    "=",
    " ",
    "'",
    '"',
    "hello",
    "route",
    "K",  # Kelvin sign: case-folds to "k"
    "\u017f",  # long s: case-folds to "s"
    *SECRETS,
]


def _slow(redactor: Redactor, text: str) -> str:
    return redactor._pattern.sub(lambda m: MASK, text)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_the_pre_check_never_skips_text_the_regex_would_change(text: str) -> None:
    redactor = Redactor(SECRETS)
    if not redactor.may_hold_secret(text):
        assert _slow(redactor, text) == text
        assert redactor(text) == text


def test_plain_text_passes_unchanged_and_secrets_are_masked() -> None:
    redactor = Redactor(SECRETS)
    assert not redactor.may_hold_secret("rules: short prompt -> budget")
    assert redactor("rules: short prompt -> budget") == "rules: short prompt -> budget"
    assert redactor("oops upstream-secret-value here") == f"oops {MASK} here"
    assert redactor("Authorization: Bearer abcdefgh") == f"Authorization: {MASK}"


def test_the_filter_masks_a_secret_in_any_one_field() -> None:
    record = logging.LogRecord("t", logging.INFO, "f", 1, "request", None, None)
    record.fields = {"route": "auto", "error": "upstream said upstream-secret-value", "n": 3}
    RedactingFilter(Redactor(SECRETS)).filter(record)
    assert record.fields == {"route": "auto", "error": f"upstream said {MASK}", "n": 3}
