"""POST /v1/chat/completions skips Starlette's router: the answers must not change."""

from __future__ import annotations

import httpx
import pytest

from tiergate.ingress import app as app_module


def test_chat_and_its_errors_answer_as_before(gw):
    headers = {"authorization": "Bearer tg-test-key"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    ok = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["x-tiergate-model"] == "small-model"
    assert ok.headers["x-tiergate-request-id"] in [e.request_id for e in gw.ledger.entries]
    bad = httpx.post(f"{gw.url}/v1/chat/completions", content=b"{", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    # Other methods still go through the router: 405 in the envelope, as before.
    wrong = httpx.get(f"{gw.url}/v1/chat/completions", headers=headers)
    assert wrong.status_code == 405
    assert "error" in wrong.json()


def test_a_bug_in_the_handler_is_a_500_envelope(gw, monkeypatch: pytest.MonkeyPatch):
    async def broken(request: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "chat_completions", broken)
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer tg-test-key"},
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "a bug" not in r.text
