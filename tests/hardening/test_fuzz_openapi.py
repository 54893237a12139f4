"""Schemathesis against the gateway's own /openapi.json: no generated request — valid,
invalid or hostile — may produce a 5xx, and answers must match the document.

Skips when schemathesis is not installed (it is a dev dependency).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.hardening.helpers import AUTH

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.generation import GenerationMode  # noqa: E402

EXAMPLES = 10  # per operation and mode: generation for the chat schema is the slow part
# /metrics answers in text, not the envelope; the alias runs the same handler as /v1/….
SKIP = {("get", "/metrics"), ("post", "/chat/completions")}


def test_openapi_document_is_served_and_valid(gw):
    import httpx

    response = httpx.get(f"{gw.url}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/v1/chat/completions" in document["paths"]
    assert "__tiergate_passthrough__" not in response.text
    schemathesis.openapi.from_dict(document)  # parses as OpenAPI


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_finds_no_server_errors(gw, fake, mode):
    schema = schemathesis.openapi.from_url(f"{gw.url}/openapi.json")
    failures: list[str] = []
    deadline = time.monotonic() + 25  # a time budget on a loaded machine, examples aside
    timings: dict[str, float] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.lower(), operation.path) in SKIP:
            continue
        started = time.monotonic()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            if time.monotonic() > deadline:
                return
            headers = dict(case.headers or {})
            # authenticated, unless the case is about the auth headers themselves
            if not any(h.lower() in ("authorization", "x-api-key", "api-key") for h in headers):
                headers.update(AUTH)
            case.headers = headers
            response = case.call(base_url=gw.url, timeout=15)
            if response.status_code >= 500:
                failures.append(
                    f"{operation.method.upper()} {operation.path} -> {response.status_code}: "
                    f"{response.text[:300]}\n  body: {str(case.body)[:300]}"
                )
            if response.status_code >= 400:
                body = response.json()
                if operation.path == "/v1/messages":  # Anthropic's envelope there
                    assert body["type"] == "error" and body["error"]["message"], body
                else:
                    assert set(body["error"]) == {"message", "type", "param", "code"}, body

        try:
            run()
        except Unsatisfiable:
            pass  # nothing to make invalid in an operation without inputs
        timings[f"{operation.method} {operation.path}"] = round(time.monotonic() - started, 1)
    print(timings)
    assert not failures, "\n".join(failures[:10])
