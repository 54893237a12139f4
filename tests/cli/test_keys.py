"""`tiergate keys` against SQLite and PostgreSQL, and a running gateway picking keys up."""

import time
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import three_tier_config
from tiergate.auth.keys import hash_key
from tiergate.cli.main import cli
from tiergate.config.loader import parse_config
from tiergate.fakes import Reply
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.store.db import Database
from tiergate.store.testing import POSTGRES_URL, scratch_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def config_file(request, tmp_path: Path):
    path = tmp_path / "tiergate.yaml"
    if request.param == "sqlite":
        path.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'keys.db'}'}}\n")
        yield path
    else:
        with scratch_postgres() as url:
            path.write_text(f"ledger: {{url: '{POSTGRES_URL}', table_prefix: {url.prefix}}}\n")
            yield path


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_list_revoke(config_file):
    cfg = ["--config", str(config_file)]
    weird = "team'; DROP TABLE x;--%_"
    out = orjson.loads(
        _run(
            "keys",
            "create",
            "--name",
            weird,
            "--budget",
            "5",
            "--period",
            "day",
            "--rpm",
            "10",
            "--models",
            "small-model,medium-model",
            "--json",
            *cfg,
        )
    )
    secret = out["key"]
    assert secret.startswith("tg-") and len(secret) > 40
    assert out["budget_usd"] == 5 and out["models"] == ["medium-model", "small-model"]
    plain = _run("keys", "create", "--name", "b", *cfg).strip()
    assert plain.startswith("tg-")
    listed = orjson.loads(_run("keys", "list", "--json", *cfg))
    assert [k["name"] for k in listed] == ["b", weird]
    assert secret not in _run("keys", "list", *cfg)
    # only the hash is stored
    from tiergate.cli.keys_cmd import database_url

    db = Database.connect(database_url(str(config_file), for_keys=True))
    stored = db.query("SELECT key_hash FROM {p}keys WHERE name = ?", (weird,))
    dump = repr(db.query("SELECT * FROM {p}keys"))
    db.close()
    assert stored == [(hash_key(secret),)] and secret not in dump
    _run("keys", "revoke", weird, *cfg)
    assert [k["name"] for k in orjson.loads(_run("keys", "list", "--json", *cfg))] == ["b"]
    assert orjson.loads(_run("keys", "list", "--all", "--json", *cfg))[1]["revoked"] is True
    result = CliRunner().invoke(cli, ["keys", "revoke", "nobody%", *cfg])
    assert result.exit_code != 0 and "no key named" in result.output
    result = CliRunner().invoke(cli, ["keys", "create", "--name", "b", *cfg])
    assert result.exit_code != 0 and "exists" in result.output


def test_running_gateway_picks_up_created_and_revoked_keys(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERGATE_ADMIN_KEY", "admin-secret")
    db = tmp_path / "gw.db"
    text = three_tier_config(
        fake, f"ledger: {{url: 'sqlite:///{db}'}}\nstore: {{refresh_interval: 0.2}}\n"
    )
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"ledger: {{url: 'sqlite:///{db}'}}\n")
    gateway = Gateway.from_config(parse_config(text))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with BackgroundServer(create_app(gateway)) as server:
        url = f"{server.url}/v1/chat/completions"
        secret = _run("keys", "create", "--name", "cli-made", "--config", str(config_path)).strip()
        time.sleep(0.5)  # one refresh interval and then some
        fake.enqueue(Reply("hello"))
        assert httpx.post(url, json=body, headers={"x-api-key": secret}).status_code == 200
        _run("keys", "revoke", "cli-made", "--config", str(config_path))
        time.sleep(0.5)
        r = httpx.post(url, json=body, headers={"x-api-key": secret})
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
        # config keys keep working
        fake.enqueue(Reply("still"))
        ok = httpx.post(url, json=body, headers={"authorization": "Bearer tg-test-key"})
        assert ok.status_code == 200
        # the admin API: create, list, revoke; effective at once on this instance
        admin = {"authorization": "Bearer admin-secret"}
        assert httpx.get(f"{server.url}/admin/keys").status_code == 401
        assert (
            httpx.get(f"{server.url}/admin/keys", headers={"x-api-key": "nope"}).status_code == 401
        )
        made = httpx.post(
            f"{server.url}/admin/keys", headers=admin, json={"name": "api made", "routes": ["auto"]}
        )
        assert made.status_code == 201
        new = made.json()["key"]
        names = [
            k["name"] for k in httpx.get(f"{server.url}/admin/keys", headers=admin).json()["data"]
        ]
        assert names == ["api made", "cli-made"]
        assert new not in httpx.get(f"{server.url}/admin/keys", headers=admin).text
        fake.enqueue(Reply("api"))
        assert httpx.post(url, json=body, headers={"api-key": new}).status_code == 200
        denied = httpx.post(url, json={**body, "model": "large-model"}, headers={"api-key": new})
        assert denied.status_code == 403
        gone = httpx.delete(f"{server.url}/admin/keys/api%20made", headers=admin)
        assert gone.status_code == 200 and gone.json()["revoked"] is True
        assert httpx.post(url, json=body, headers={"api-key": new}).status_code == 401
        assert httpx.delete(f"{server.url}/admin/keys/x%25", headers=admin).status_code == 404
        bad = httpx.post(f"{server.url}/admin/keys", headers=admin, json={"name": ""})
        assert bad.status_code == 400
