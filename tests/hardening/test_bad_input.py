"""Hostile and broken requests: each is refused with the right 4xx in the OpenAI envelope,
never reaches an upstream, never spends, and never leaks a secret.

(The basic cases — malformed JSON, empty body, unknown model, bad roles — are in
tests/ingress/test_bad_input.py; this battery adds what an attacker would try.)
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import LiveGateway, three_tier_config
from tests.hardening.helpers import (
    AUTH,
    HELLO,
    KEY,
    assert_no_secret,
    assert_refused,
    post,
    raw_exchange,
    sqlite_gateway,
)
from tiergate.config.loader import parse_config
from tiergate.fakes import FakeUpstream, Fault, Reply
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.ledger import MemoryLedger

USER = [{"role": "user", "content": "hi"}]


# One gateway and fake for the whole module (these tests refuse requests; starting a server
# per case made the module slow): each test gets them with history and ledger emptied.
@pytest.fixture(scope="module")
def _shared():
    with FakeUpstream.in_thread(api_key="sk-upstream") as upstream:
        ledger = MemoryLedger()
        config = three_tier_config(
            upstream, "server: {max_body_bytes: 8388608}\nobservability: {request_log: 'off'}\n"
        )
        gateway = Gateway.from_config(parse_config(config), ledger=ledger)
        server = BackgroundServer(create_app(gateway)).start()
        try:
            yield LiveGateway(gateway, server, ledger), upstream
        finally:
            server.stop()


@pytest.fixture
def fake(_shared):
    upstream = _shared[1]
    upstream.clear()
    return upstream


@pytest.fixture
def gw(_shared, fake):
    live = _shared[0]
    live.ledger.entries.clear()
    return live


def _chat(**fields) -> dict:
    return {"model": "auto", "messages": USER, **fields}


# -- encoding and framing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"model": "auto", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "JSON"),
        (b'{"model": "auto", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}', "JSON"),
        (b'\xef\xbb\xbf{"model": "auto", "messages": [{"role": "user", "content": "x"}]}', ""),
        (b"[1, 2, 3]", ""),
        (b'"just a string"', ""),
        (b"null", ""),
        (b'{"model": "auto", "messages": [{"role": "user", "content": "x"}]} trailing', "JSON"),
        (b'{"model": "auto", "model": 5, "messages": []}', ""),
        (b'{"model": NaN, "messages": []}', "JSON"),
    ],
)
def test_undecodable_bodies_are_400(gw, fake, body, needle):
    assert_refused(gw, fake, post(gw, body), 400, needle)


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "multipart/form-data; boundary=x", "application/xml", "application/jsonx"],
)
def test_wrong_content_types_are_415(gw, fake, ctype):
    response = post(gw, json.dumps(HELLO).encode(), headers={"content-type": ctype})
    assert_refused(gw, fake, response, 415, "content-type")


def test_content_type_with_charset_is_accepted(gw, fake):
    response = post(gw, HELLO, headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


@pytest.fixture
def small_gw(fake, start_gateway):
    return start_gateway(three_tier_config(fake, "server: {max_body_bytes: 2048}\n"))


def test_declared_length_over_limit_is_refused_before_the_body_is_sent(small_gw, fake):
    # Only the headers go out: a gateway that waited for 10 MB would time out here.
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {KEY}\r\ncontent-length: 10000000\r\n\r\n"
    ).encode()
    started = time.monotonic()
    response = raw_exchange(small_gw.url, head, timeout=5)
    assert response.status == 413 and time.monotonic() - started < 3
    assert json.loads(response.body)["error"]["code"] == "payload_too_large"
    assert fake.calls == 0


def test_chunked_body_over_limit_is_refused_mid_stream(small_gw, fake):
    # No content-length: the limit is counted as chunks arrive, and the answer comes while
    # the client is still "sending" (the final chunk is never written).
    piece = b"x" * 3000
    request = (
        (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {KEY}\r\ntransfer-encoding: chunked\r\n\r\n"
        ).encode()
        + f"{len(piece):x}\r\n".encode()
        + piece
        + b"\r\n"
    )
    response = raw_exchange(small_gw.url, request, timeout=5)
    assert response.status == 413
    assert json.loads(response.body)["error"]["code"] == "payload_too_large"
    assert fake.calls == 0
    assert all(e.cost_usd == 0 for e in small_gw.ledger.entries)


def test_chunked_body_under_limit_is_served(small_gw, fake):
    def parts():
        data = json.dumps(HELLO).encode()
        yield data[:10]
        yield data[10:]

    response = httpx.post(
        f"{small_gw.url}/v1/chat/completions",
        content=parts(),
        headers={"content-type": "application/json", **AUTH},
    )
    assert response.status_code == 200


def test_invalid_content_length_is_refused(gw, fake):
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {KEY}\r\ncontent-length: -1\r\n\r\n"
    ).encode()
    response = raw_exchange(gw.url, request)
    assert 400 <= response.status < 500
    assert fake.calls == 0


# -- shape: depth, size, numbers ------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 1_000, 200_000])
def test_deep_nesting_is_400_quickly(gw, fake, depth):
    # Nested inside a passthrough field, where the schema would accept any JSON value.
    body = (
        b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "x": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )
    started = time.monotonic()
    error = assert_refused(gw, fake, post(gw, body), 400, "levels deep")
    assert error["code"] == "json_too_deep"
    assert time.monotonic() - started < 5  # generous: shared CI machines stall


def test_deep_object_nesting_in_content_parts_is_400(gw, fake):
    inner = '{"a": ' * 100 + "1" + "}" * 100
    body = f'{{"model": "auto", "messages": [{{"role": "user", "content": "x"}}], "y": {inner}}}'
    assert_refused(gw, fake, post(gw, body.encode()), 400, "levels deep")


def test_brackets_inside_strings_do_not_count_as_depth(gw, fake):
    text = "[" * 5000 + '\\"{{{' + "]" * 10
    response = post(gw, _chat(messages=[{"role": "user", "content": text}]))
    assert response.status_code == 200


def test_nesting_at_the_limit_is_accepted(gw, fake):
    # body object (1) + x at depth 63 = 64: the default limit
    body = (
        b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "x": '
        + b"[" * 63
        + b"]" * 63
        + b"}"
    )
    assert post(gw, body).status_code == 200


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"stop": ["s"] * 100}, "stop"),
        ({"messages": [{"role": "user", "content": "x"}] * 100_001}, "messages"),
        (
            {"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(600)]},
            "tools",
        ),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**12}, "max_tokens"),
        ({"max_tokens": 1e300}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"n": 5}, "n"),
        ({"top_p": -0.1}, "top_p"),
        ({"presence_penalty": 1e308}, "presence_penalty"),
        ({"stream": "yes"}, "stream"),
        ({"model": ""}, "model"),
        ({"model": "a" * 10_000}, "model"),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "data": "x"}]}]}, ""),
        ({"tiergate": {"route": "auto", "upstream": "http://evil"}}, "upstream"),
        ({"tiergate": {"max_cost_usd": -1}}, "max_cost_usd"),
    ],
)
def test_absurd_values_are_400(gw, fake, fields, needle):
    assert_refused(gw, fake, post(gw, _chat(**fields)), 400, needle)


def test_huge_flat_array_costs_little(gw, fake):
    body = json.dumps(_chat(stop=list(range(1_000_000)))).encode()
    started = time.monotonic()
    assert_refused(gw, fake, post(gw, body), 400, "stop")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("tier:", 404),
        ("auto:missing", 404),
        ("x'; DROP TABLE tiergate_ledger; --", 404),
        ("../../etc/passwd", 404),
        ("http://169.254.169.254/latest/meta-data", 404),
        ("small-model\r\nx-injected: 1", 404),
        ("\u202egpt-4o", 404),
    ],
)
def test_unknown_targets_are_404_and_never_reflected_into_headers(gw, fake, model, status):
    response = post(gw, _chat(model=model))
    assert_refused(gw, fake, response, status)
    assert "x-injected" not in response.headers
    assert response.headers["x-tiergate-route"] == "none"


def test_unknown_route_header_is_404(gw, fake):
    response = post(gw, HELLO, headers={"x-tiergate-route": "auto:nope"})
    assert_refused(gw, fake, response, 404)


def test_unknown_min_tier_is_400(gw, fake):
    response = post(gw, HELLO, headers={"x-tiergate-min-tier": "platinum"})
    assert_refused(gw, fake, response, 400, "tier")


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e999"])
def test_bad_numeric_control_headers_are_400(gw, fake, value):
    response = post(gw, HELLO, headers={"x-tiergate-max-cost-usd": value})
    assert_refused(gw, fake, response, 400, "x-tiergate-max-cost-usd")


# -- tools and message order ----------------------------------------------------------------


def _tool(name="get_weather", parameters=None):
    fn = {"name": name}
    if parameters is not None:
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"tools": [_tool(parameters={"type": 5})]}, "JSON Schema"),
        ({"tools": [_tool(parameters={"type": "object", "properties": []})]}, "JSON Schema"),
        ({"tools": [_tool(parameters={"type": "object", "required": "city"})]}, "JSON Schema"),
        ({"tools": [_tool(parameters={"type": "string"})]}, "object"),
        ({"tools": [_tool(parameters="not a schema")]}, "parameters"),
        ({"tools": [_tool(name="has space")]}, "name"),
        ({"tools": [_tool(name="")]}, "name"),
        ({"tools": [_tool(name="x" * 65)]}, "name"),
        ({"tools": [_tool(), _tool()]}, "duplicate"),
        ({"tools": [{"type": "retrieval", "function": {"name": "x"}}]}, "type"),
        (
            {
                "tools": [_tool()],
                "tool_choice": {"type": "function", "function": {"name": "other"}},
            },
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "json_schema"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "nope"}},
                }
            },
            "JSON Schema",
        ),
    ],
)
def test_invalid_tool_schemas_are_400(gw, fake, fields, needle):
    assert_refused(gw, fake, post(gw, _chat(**fields)), 400, needle)


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "tool", "tool_call_id": "call_1", "content": "18C"}],
        [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ],
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_2", "content": "18C"},
        ],
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "user", "content": "and?"},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ],
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "content": "no id"},
        ],
        [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_1", "content": "again"},
        ],
    ],
)
def test_tool_messages_out_of_order_are_400(gw, fake, messages):
    assert_refused(gw, fake, post(gw, _chat(messages=messages, tools=[_tool()])), 400, "tool")


def test_a_correct_tool_round_trip_is_served(gw, fake):
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_1", "content": "19C"},
        {"role": "user", "content": "thanks"},
    ]
    tools = [_tool(parameters={"type": "object", "properties": {"city": {"type": "string"}}})]
    assert post(gw, _chat(messages=messages, tools=tools)).status_code == 200


# -- headers: CRLF, forged internal headers, upstream overrides, Host -----------------------


def test_crlf_in_a_header_value_never_reaches_the_app(gw, fake):
    body = json.dumps(HELLO).encode()
    for smuggled in (b"auto\rx-injected: 1", b"auto\nx-injected: 1", b"auto\r\n x-folded: 1"):
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {KEY}\r\n".encode()
            + b"x-tiergate-tags: "
            + smuggled
            + b"\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        response = raw_exchange(gw.url, request)
        # Either the parser refuses the request, or the stray line is just another header:
        # the value never carries a line break into the app, the ledger or a response.
        assert "x-injected" not in response.head.lower().split("\r\n", 1)[0]
        assert not any("\r" in t or "\n" in t for e in gw.ledger.entries for t in e.tags)
        for line in response.head.split("\r\n")[1:]:
            assert not line.lower().startswith(("x-injected", "x-folded"))


def test_control_characters_in_header_values_are_not_reflected(gw, fake):
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {KEY}\r\n".encode()
        + b"x-tiergate-route: auto\x01\x7f\r\ncontent-length: 2\r\n\r\n{}"
    )
    response = raw_exchange(gw.url, request)
    assert response.status in (400, 404)
    assert "\x01" not in response.head and "\x7f" not in response.head
    assert fake.calls == 0


FORGED = {
    "x-tiergate-request-id": "forged-id",
    "x-tiergate-key": "admin",
    "x-tiergate-key-name": "admin",
    "x-tiergate-tenant": "someone-else",
    "x-tiergate-attempts": "0",
    "x-tiergate-max-attempts": "100",
    "x-tiergate-model": "large-model",
    "x-tiergate-tier": "premium",
    "x-tiergate-deployment": "large-model@upstream",
    "x-tiergate-cost-usd": "0",
    "x-tiergate-internal": "1",
    "x-tiergate-admin": "true",
    "x-tiergate-upstream-url": "http://169.254.169.254/",
}


def test_forged_internal_headers_change_nothing(gw, fake):
    fake.enqueue(Fault(status=503), Fault(status=503), Reply("served"))
    response = post(gw, HELLO, headers=FORGED)
    assert response.status_code == 200
    # routing, attempts and identity are ours: fallback still happened, the forged tier,
    # model, tenant and request id were not taken
    assert response.headers["x-tiergate-request-id"] != "forged-id"
    assert response.headers["x-tiergate-model"] == "medium-model"
    (entry,) = gw.ledger.entries
    assert entry.key_name == "test" and entry.fallbacks == 2 and entry.cost_usd > 0
    for record in fake.history:
        assert record.path == "/v1/chat/completions"
        assert record.headers["authorization"] == "Bearer sk-upstream"
        assert not [h for h in record.headers if h.startswith("x-tiergate")]


@pytest.mark.parametrize(
    "field",
    [
        "api_base",
        "base_url",
        "api_key",
        "extra_headers",
        "headers",
        "organization",
        "azure_endpoint",
    ],
)
def test_client_supplied_upstream_overrides_are_refused(gw, fake, field):
    value = {"authorization": "Bearer x"} if "headers" in field else "http://169.254.169.254/v1"
    response = post(gw, _chat(**{field: value}))
    error = assert_refused(gw, fake, response, 400, field)
    assert error["param"] == field


def test_client_headers_never_choose_the_upstream_or_credential(gw, fake):
    headers = {
        "x-api-base": "http://169.254.169.254",
        "x-base-url": "http://169.254.169.254",
        "openai-organization": "org-evil",
        "x-upstream-authorization": "Bearer sk-attacker",
        "anthropic-api-key": "sk-attacker",
        "x-forwarded-host": "169.254.169.254",
    }
    assert post(gw, HELLO, headers=headers).status_code == 200
    (record,) = fake.history
    assert record.headers["authorization"] == "Bearer sk-upstream"
    assert "sk-attacker" not in str(dict(record.headers))
    assert "org-evil" not in str(dict(record.headers))


@pytest.mark.parametrize(
    "wrong", ["wrong", "' OR '1'='1", "TG-TEST-KEY", "tg-test-ke", "tg-test-key2"]
)
def test_wrong_keys_give_the_same_answer_in_every_header(gw, fake, wrong):
    answers = set()
    for headers in ({"authorization": f"Bearer {wrong}"}, {"x-api-key": wrong}, {"api-key": wrong}):
        response = httpx.post(f"{gw.url}/v1/chat/completions", json=HELLO, headers=headers)
        assert response.status_code == 401
        answers.add(json.dumps(response.json()))
    assert len(answers) == 1
    assert fake.calls == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"host": "localhost"},
        {"host": "127.0.0.1"},
        {"host": "admin.internal"},
        {"host": "evil.example:443"},
        {"x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1"},
        {"x-forwarded-host": "localhost", "forwarded": "for=127.0.0.1;host=localhost"},
    ],
)
def test_host_and_forwarding_headers_do_not_change_auth(gw, fake, headers):
    without_key = httpx.post(f"{gw.url}/v1/chat/completions", json=HELLO, headers=headers)
    assert without_key.status_code == 401
    with_key = httpx.post(f"{gw.url}/v1/chat/completions", json=HELLO, headers={**headers, **AUTH})
    assert with_key.status_code == 200


def test_request_without_host_header_is_answered_the_same(gw, fake):
    body = json.dumps(HELLO).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.0\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert raw_exchange(gw.url, request).status == 401


# -- storage: SQL metacharacters ------------------------------------------------------------

SQL = [
    "'; DROP TABLE tiergate_ledger; --",
    '" OR "1"="1',
    "x'); DELETE FROM tiergate_ledger WHERE ('1'='1",
    "\\'; SELECT sqlite_version(); --",
    "%_*?[]",
    "nul\x00byte",
]


def test_sql_metacharacters_are_stored_verbatim(fake, tmp_path):
    config = three_tier_config(fake, "observability: {request_log: 'off'}\n")
    path = tmp_path / "ledger.db"
    with sqlite_gateway(config, path) as gw:
        for text in SQL:
            ok = httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={
                    "model": "auto",
                    "messages": [{"role": "user", "content": text}],
                    "user": text,
                    "metadata": {text: text},
                    "tiergate": {"tags": [text]},
                },
                headers={**AUTH, "x-tiergate-tags": text.replace("\x00", "")},
            )
            assert ok.status_code == 200, ok.text
            missing = httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={"model": text, "messages": [{"role": "user", "content": "x"}]},
                headers=AUTH,
            )
            assert missing.status_code == 404
    rows = gw.rows("tags, error, status")
    assert len(rows) == 2 * len(SQL)
    stored_tags = {t for r in rows if r[0] for t in json.loads(r[0])}
    for text in SQL:
        assert text in stored_tags
    errors = [r[1] for r in rows if r[2] == 404]
    assert len(errors) == len(SQL)
    assert any("DROP TABLE" in e for e in errors)


# -- no secret in any error body ------------------------------------------------------------


def test_no_error_body_echoes_a_key(gw, fake):
    cases = [
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            content=b"{",
            headers={**AUTH, "content-type": "application/json"},
        ),
        httpx.post(
            f"{gw.url}/v1/chat/completions",
            json=HELLO,
            headers={"authorization": "Bearer sk-upstream"},
        ),
        httpx.get(f"{gw.url}/v1/nothing", headers=AUTH),
        httpx.post(f"{gw.url}/v1/chat/completions", json=_chat(model=KEY), headers=AUTH),
    ]
    for response in cases:
        assert response.status_code >= 400
        assert_no_secret(response.text.replace(json.dumps(KEY)[1:-1] + "'", ""))
