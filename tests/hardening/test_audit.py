"""The audit log: admin actions recorded with secrets redacted, one line per event, and a
hash chain that shows any edit."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import three_tier_config
from tiergate.cli.main import cli
from tiergate.config.loader import parse_config
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.security.audit import AuditLog, read_events, verify_chain


def test_secrets_are_masked_by_name_and_by_shape(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl", secrets=["admin-secret-value"])
    audit.record(
        "key.create",
        "team-a",
        actor="admin-api",
        details={
            "key": "tg-0123456789abcdef0123",
            "api_key": "anything",
            "provider": {"secret": "s3cret!", "base_url": "https://api.example"},
            "note": "pasted sk-abcdefghijklmnop and admin-secret-value",
            "budget_usd": 10.0,
            "hint": "tg-…cdef",
        },
    )
    text = (tmp_path / "audit.jsonl").read_text()
    for secret in (
        "tg-0123456789abcdef0123",
        "anything",
        "s3cret!",
        "sk-abcdefghijklmnop",
        "admin-secret-value",
    ):
        assert secret not in text
    (event,) = read_events(tmp_path / "audit.jsonl")
    assert event["details"]["budget_usd"] == 10.0
    assert event["details"]["provider"]["base_url"] == "https://api.example"
    assert event["details"]["hint"] == "tg-…cdef"


def test_control_characters_cannot_forge_a_second_line(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.record("key.revoke", 'x"}\n{"action": "forged"', actor="cli:\rroot")
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["action"] == "key.revoke"


def test_the_chain_shows_edits_and_deletions(tmp_path):
    path = tmp_path / "audit.jsonl"
    # two writers, as two gateway processes or the CLI beside a gateway would be
    first, second = AuditLog(path), AuditLog(path)
    for i in range(6):
        (first if i % 2 else second).record(
            "budget.change", f"key{i}", actor="admin-api", details={"usd": i}
        )
    assert verify_chain(path) is None
    lines = path.read_text().splitlines()
    edited = lines.copy()
    edited[2] = edited[2].replace('"usd":2', '"usd":2000')
    path.write_text("\n".join(edited) + "\n")
    assert verify_chain(path) == 4
    path.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    assert verify_chain(path) == 3


def test_off_writes_nothing(tmp_path):
    audit = AuditLog.from_env({"TIERGATE_AUDIT_LOG": "off"})
    assert audit.record("key.create", "x", actor="a")["action"] == "key.create"
    assert not list(tmp_path.iterdir())


@pytest.fixture
def audit_path(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("TIERGATE_AUDIT_LOG", str(path))
    monkeypatch.setenv("TIERGATE_ADMIN_KEY", "admin-secret-value")
    return path


def test_admin_api_actions_are_audited_without_secrets(fake, tmp_path, audit_path):
    db = tmp_path / "gw.db"
    gateway = Gateway.from_config(
        parse_config(three_tier_config(fake, f"ledger: {{url: 'sqlite:///{db}'}}\n"))
    )
    admin = {"authorization": "Bearer admin-secret-value"}
    with BackgroundServer(create_app(gateway)) as server:
        created = httpx.post(
            f"{server.url}/admin/keys", headers=admin, json={"name": "team-a", "budget_usd": 5}
        )
        assert created.status_code == 201
        secret = created.json()["key"]
        assert httpx.delete(f"{server.url}/admin/keys/team-a", headers=admin).status_code == 200
        refused = httpx.get(
            f"{server.url}/admin/keys", headers={"authorization": "Bearer guess-1234567"}
        )
        assert refused.status_code == 401
    text = audit_path.read_text()
    assert secret not in text and "admin-secret-value" not in text and "guess-1234567" not in text
    events = read_events(audit_path)
    assert [(e["action"], e["target"], e["outcome"]) for e in events] == [
        ("key.create", "team-a", "ok"),
        ("key.revoke", "team-a", "ok"),
        ("admin.login", "/admin/keys", "refused"),
    ]
    assert events[0]["details"]["budget_usd"] == 5 and events[0]["source"] == "127.0.0.1"
    assert verify_chain(audit_path) is None


def test_keys_cli_actions_are_audited(tmp_path, audit_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'k.db'}'}}\n")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["keys", "create", "--name", "cli-made", "--budget", "3", "--config", str(config)]
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    assert (
        runner.invoke(cli, ["keys", "revoke", "cli-made", "--config", str(config)]).exit_code == 0
    )
    assert secret not in audit_path.read_text()
    events = read_events(audit_path)
    assert [(e["action"], e["target"]) for e in events] == [
        ("key.create", "cli-made"),
        ("key.revoke", "cli-made"),
    ]
    assert events[0]["actor"].startswith("cli:")
