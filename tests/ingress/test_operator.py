"""The operator's secrets over real HTTP: `/metrics` behind `observability.metrics_token`,
and the lockout of an address that guesses the admin key or the token wrong too often
(on a clock the test moves: nothing sleeps)."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import three_tier_config
from tiergate.auth.lockout import Lockout
from tiergate.config.loader import parse_config
from tiergate.errors import ConfigError
from tiergate.security.audit import read_events

ADMIN = "admin-key-for-tests-0123456789"
TOKEN = "metrics-token-for-tests-9876543210"
OTHER_ADDRESS = "127.0.0.2"  # also loopback on Linux: a second client address


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit_path(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("TIERGATE_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def guarded(fake, start_gateway, monkeypatch, clock):
    """A gateway with an admin key and a metrics token (from the environment)."""
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    live = start_gateway(
        three_tier_config(
            fake, f"observability: {{admin_key: {ADMIN}, metrics_token: ${{METRICS_TOKEN}}}}\n"
        )
    )
    live.gateway.observability.lockout = Lockout(clock=clock)
    return live


def summary(live, headers: dict[str, str], client=httpx) -> httpx.Response:
    return client.get(f"{live.url}/dashboard/api/summary", headers=headers)


def assert_refused(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type


# -- /metrics ------------------------------------------------------------------------------


def test_metrics_are_open_when_no_token_is_set(gw):
    assert httpx.get(f"{gw.url}/metrics").status_code == 200
    assert httpx.head(f"{gw.url}/metrics").status_code == 200


def test_metrics_want_the_token_when_one_is_set(guarded):
    url = f"{guarded.url}/metrics"
    for response in (
        httpx.get(url),
        httpx.get(url, headers=bearer("not-the-token")),
        httpx.get(url, headers=bearer("tg-test-key")),  # a virtual key is not enough
        httpx.get(url, params={"token": TOKEN}),  # never from the URL
    ):
        assert_refused(response, 401, "authentication_error")
        assert response.headers["www-authenticate"] == "Bearer"
    head = httpx.head(url)
    assert head.status_code == 401 and head.headers["www-authenticate"] == "Bearer"
    ok = httpx.get(url, headers=bearer(TOKEN))  # what Prometheus' `authorization` sends
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert "tiergate_requests_total" in ok.text
    assert httpx.head(url, headers=bearer(TOKEN)).status_code == 200
    assert httpx.get(url, headers=bearer(ADMIN)).status_code == 200


def test_an_empty_metrics_token_is_refused_rather_than_leaving_metrics_open():
    with pytest.raises(ConfigError, match="metrics_token"):
        parse_config("observability: {metrics_token: ${METRICS_TOKEN:-}}\n", env={})


def test_the_metrics_token_is_never_logged(guarded, caplog):
    caplog.set_level(logging.DEBUG)  # the audit log goes to its logger when no file is set
    url = f"{guarded.url}/metrics"
    assert httpx.get(url, headers=bearer(TOKEN)).status_code == 200
    for _ in range(10):
        httpx.get(url, headers=bearer(TOKEN + "-wrong"))
    assert httpx.get(url, headers=bearer(TOKEN)).status_code == 429
    guarded.server.settled()
    assert "admin.lockout" in caplog.text  # the logs were captured: the check is not vacuous
    assert TOKEN not in caplog.text


# -- the lockout ---------------------------------------------------------------------------


def test_ten_wrong_admin_keys_lock_the_address_out(guarded, clock, audit_path):
    for i in range(10):
        assert_refused(summary(guarded, bearer(f"guess-{i}")), 401, "authentication_error")
    # the right key no longer helps: the key is not even looked at
    locked = summary(guarded, bearer(ADMIN))
    assert_refused(locked, 429, "rate_limit_error")
    assert locked.headers["retry-after"] == "300"
    # every door that takes the admin key or the metrics token is shut to this address
    assert httpx.get(f"{guarded.url}/admin/keys", headers=bearer(ADMIN)).status_code == 429
    assert httpx.get(f"{guarded.url}/metrics", headers=bearer(TOKEN)).status_code == 429
    # the rest of the API still answers it
    assert httpx.get(f"{guarded.url}/health/live").status_code == 200

    with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS)) as other:
        assert summary(guarded, bearer(ADMIN), client=other).status_code == 200

    clock.now += 299
    locked = summary(guarded, bearer(ADMIN))
    assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
    clock.now += 1
    assert summary(guarded, bearer(ADMIN)).status_code == 200

    events = read_events(audit_path)
    lockouts = [e for e in events if e["action"] == "admin.lockout"]
    assert len(lockouts) == 1
    assert lockouts[0]["source"] == "127.0.0.1"
    assert lockouts[0]["target"] == "/dashboard/api/summary"
    assert lockouts[0]["details"] == {"failures": 10, "lockout_s": 300.0, "window_s": 60.0}
    refused = [e for e in events if e["action"] == "admin.login"]
    assert len(refused) == 10 and {e["actor"] for e in refused} == {"dashboard"}
    assert ADMIN not in audit_path.read_text()


def test_a_right_key_resets_the_count(guarded):
    for _ in range(9):
        assert summary(guarded, bearer("guess")).status_code == 401
    assert summary(guarded, bearer(ADMIN)).status_code == 200
    for _ in range(9):
        assert summary(guarded, bearer("guess")).status_code == 401
    assert summary(guarded, bearer(ADMIN)).status_code == 200


def test_wrong_metrics_tokens_lock_out_too_but_missing_ones_do_not(guarded, audit_path):
    url = f"{guarded.url}/metrics"
    for _ in range(20):  # a scraper without credentials guesses nothing
        assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=bearer(TOKEN)).status_code == 200
    for _ in range(10):
        assert httpx.get(url, headers=bearer("stale-token")).status_code == 401
    locked = httpx.get(url, headers=bearer(TOKEN))
    assert_refused(locked, 429, "rate_limit_error")
    assert locked.headers["retry-after"] == "300"
    events = read_events(audit_path)
    # one lockout event; wrong tokens are not audited one by one
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("admin.lockout", "metrics", "/metrics")
    ]
    assert TOKEN not in audit_path.read_text()


def test_x_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_lockout(guarded):
    with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER_ADDRESS)) as other:
        for i in range(10):
            assert summary(guarded, bearer(f"guess-{i}"), client=other).status_code == 401
        spoofed = {**bearer(ADMIN), "x-forwarded-for": "203.0.113.9"}
        assert summary(guarded, spoofed, client=other).status_code == 429
    assert summary(guarded, bearer(ADMIN)).status_code == 200  # 127.0.0.1 is not locked
