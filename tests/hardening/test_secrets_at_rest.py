"""Secrets at rest: versioned AES-GCM tokens bound to their purpose, and key rotation."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("cryptography")

from tiergate.security.cli import secrets as secrets_cli
from tiergate.security.secrets import DataKeys, SecretBox, SecretError, generate_key


def _box(*entries: str) -> SecretBox:
    return SecretBox(DataKeys.parse(",".join(entries)))


def test_seal_and_open_round_trip_and_never_show_the_secret():
    box = _box(generate_key("k1"))
    token = box.seal("sk-live-0123456789", "provider:openai")
    assert token.startswith("tg1.k1.") and "sk-live" not in token
    assert box.open(token, "provider:openai") == "sk-live-0123456789"
    assert box.seal("same", "p") != box.seal("same", "p")  # fresh nonce each time


def test_a_token_opens_only_for_its_purpose_and_unaltered():
    box = _box(generate_key("k1"))
    token = box.seal("secret", "provider:openai")
    with pytest.raises(SecretError):
        box.open(token, "provider:anthropic")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SecretError):
        box.open(flipped, "provider:openai")
    with pytest.raises(SecretError):
        box.open(token.replace("tg1.", "tg2.", 1), "provider:openai")
    # the key id is authenticated too: the same key material under another id does not open
    # a relabelled token
    entry = generate_key("k1")
    sealed = _box(entry).seal("secret", "p")
    alias = _box("k2:" + entry.split(":", 1)[1])
    with pytest.raises(SecretError):
        alias.open(sealed.replace("tg1.k1.", "tg1.k2.", 1), "p")


def test_rotation_moves_tokens_to_the_new_primary_key():
    old = generate_key("old")
    token = _box(old).seal("secret", "p")
    both = _box(generate_key("new"), old)
    assert both.needs_rotation(token)
    rotated = both.rotate(token, "p")
    assert rotated.startswith("tg1.new.") and both.open(rotated, "p") == "secret"
    assert both.rotate(rotated, "p") == rotated
    with pytest.raises(SecretError):
        _box(generate_key("new")).open(token, "p")  # the old key is needed until rotated


@pytest.mark.parametrize("bad", ["", "k1", "k1:short", "K!:" + "A" * 43, "a:%%%"])
def test_bad_data_key_lists_are_refused(bad):
    with pytest.raises(SecretError):
        DataKeys.parse(bad)


def test_rotate_command(monkeypatch, tmp_path):
    old, new = generate_key("old"), generate_key("new")
    token = _box(old).seal("secret", "provider:x")
    monkeypatch.setenv("TIERGATE_DATA_KEYS", f"{new},{old}")
    monkeypatch.setenv("TIERGATE_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    result = CliRunner().invoke(secrets_cli, ["rotate"], input=f"provider:x\t{token}\n")
    assert result.exit_code == 0, result.output
    purpose, rotated = result.stdout.strip().split("\t")
    assert purpose == "provider:x" and rotated.startswith("tg1.new.")
    assert _box(new).open(rotated, "provider:x") == "secret"
    assert '"secret.rotate"' in (tmp_path / "audit.jsonl").read_text()
    keygen = CliRunner().invoke(secrets_cli, ["keygen", "--id", "k9"])
    assert keygen.stdout.startswith("k9:") and DataKeys.parse(keygen.stdout.strip()).primary == "k9"
