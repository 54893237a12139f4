"""`POST /v1/feedback`: scores and thumbs for a served request id; 4xx for bad input."""

import httpx
import pytest

from tiergate.fakes import Reply

KEY = {"authorization": "Bearer tg-test-key"}


def served_id(gw, fake):
    fake.enqueue(Reply("hello"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    return raw.headers["x-tiergate-request-id"]


def post(gw, body, headers=KEY):
    return httpx.post(f"{gw.url}/v1/feedback", headers=headers, json=body)


def test_thumbs_and_scores_update_the_route_model_average(gw, fake):
    first, second = served_id(gw, fake), served_id(gw, fake)
    r = post(gw, {"request_id": first, "thumbs": "up"})
    assert r.status_code == 200
    assert r.json() == {
        "object": "feedback",
        "status": "recorded",
        "request_id": first,
        "route": "auto",
        "model": "small-model",
        "score": 1.0,
    }
    assert post(gw, {"request_id": second, "score": 0.4}).status_code == 200
    (row,) = gw.gateway.observability.quality.rows()
    assert (row["route"], row["model"], row["samples"]) == ("auto", "small-model", 2)
    assert row["average"] == pytest.approx(0.7)
    assert row["sources"] == {"thumbs": 1, "score": 1}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"score": 1},
        {"request_id": "", "score": 1},
        {"request_id": "x"},
        {"request_id": "x", "score": 1, "thumbs": "up"},
        {"request_id": "x", "score": 1.5},
        {"request_id": "x", "score": -0.1},
        {"request_id": "x", "score": True},
        {"request_id": "x", "score": "1"},
        {"request_id": "x", "thumbs": "sideways"},
        {"request_id": "x", "score": 1, "extra": 1},
    ],
)
def test_bad_feedback_is_400(gw, body):
    r = post(gw, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_not_json_is_400(gw):
    r = httpx.post(
        f"{gw.url}/v1/feedback",
        headers={**KEY, "content-type": "application/json"},
        content=b"{nope",
    )
    assert r.status_code == 400


def test_unknown_request_id_is_404(gw):
    r = post(gw, {"request_id": "0123456789abcdef", "thumbs": "down"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "request_not_found"


def test_feedback_needs_a_key(gw, fake):
    request_id = served_id(gw, fake)
    assert post(gw, {"request_id": request_id, "thumbs": "up"}, headers={}).status_code == 401


def test_another_keys_request_looks_unknown(fake, start_gateway):
    from tests.conftest import three_tier_config

    live = start_gateway(
        three_tier_config(fake).replace("keys:\n", "keys:\n  - {name: other, key: tg-other-key}\n")
    )
    request_id = served_id(live, fake)
    r = post(
        live,
        {"request_id": request_id, "thumbs": "up"},
        headers={"authorization": "Bearer tg-other-key"},
    )
    assert r.status_code == 404
