"""Client mistakes: OpenAI error envelope, the right 4xx, no upstream call, no spend."""

import httpx
import pytest

KEY = {"authorization": "Bearer tg-test-key"}


def _post(gw, body, headers=None, **kwargs):
    h = {"content-type": "application/json", **KEY, **(headers or {})}
    return httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers=h, **kwargs)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'{"model": "auto"}', 400, "messages"),
        (b'{"model": "auto", "messages": []}', 400, "messages"),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "unknown model or route",
        ),
        (
            b'{"model": "tier:gold", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "unknown tier",
        ),
        (b'{"model": "auto", "messages": [{"role": "robot", "content": "x"}]}', 400, "role"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5}',
            400,
            "max_tokens",
        ),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "temperature": 9}',
            400,
            "temperature",
        ),
        (b'\xff\xfe{"model": "auto"}', 400, "JSON"),
    ],
)
def test_bad_bodies(gw, fake, body, status, needle):
    response = _post(gw, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert response.headers["x-tiergate-request-id"]
    assert fake.calls == 0
    assert all(e.cost_usd == 0 for e in gw.ledger.entries)


def test_wrong_content_type(gw, fake):
    response = _post(
        gw, b"model=auto", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert fake.calls == 0


def test_body_over_limit_is_413(fake, start_gateway):
    from tests.conftest import three_tier_config

    gw = start_gateway(three_tier_config(fake, "server: {max_body_bytes: 2048}\n"))
    response = _post(
        gw, b'{"model": "auto", "messages": [{"role": "user", "content": "' + b"x" * 4000 + b'"}]}'
    )
    assert response.status_code == 413
    assert fake.calls == 0


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
def test_key_in_any_header_same_result(gw, fake, header):
    value = "Bearer tg-test-key" if header == "authorization" else "tg-test-key"
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={header: value},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"x-api-key": "nope"}])
def test_missing_or_wrong_key_is_401(gw, fake, headers):
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert fake.calls == 0


def test_odd_host_header_does_not_change_auth(gw, fake):
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"host": "localhost", "x-forwarded-host": "admin.internal"},
    )
    assert response.status_code == 401


def test_unknown_path_is_enveloped_404(gw):
    response = httpx.get(f"{gw.url}/v1/nothing", headers=KEY)
    assert response.status_code == 404
    assert "error" in response.json()


def test_models_lists_models_routes_and_tiers(gw):
    data = httpx.get(f"{gw.url}/v1/models", headers=KEY).json()["data"]
    ids = {d["id"] for d in data}
    assert {"small-model", "medium-model", "large-model", "auto", "tier:budget"} <= ids


def test_health(gw):
    assert httpx.get(f"{gw.url}/health/live").status_code == 200
    ready = httpx.get(f"{gw.url}/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
