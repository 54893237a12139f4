"""Canary secrets planted everywhere a secret can enter must come out nowhere.

Entry points: a provider api_key in the config, a virtual key, the admin key, the metrics
token, request headers, a `?key=` query parameter and the request body. Outputs searched: the JSON
request log, stdout/stderr of a `tiergate serve` subprocess, error bodies and headers,
ledger rows (memory and SQLite), /metrics and the dashboard's data.
"""

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tiergate.fakes import FakeUpstream, Fault, Reply

PROVIDER = "sk-canaryprovider0123456789abcdef"
VIRTUAL = "tg-canary-virtual-0123456789abcdef"
ADMIN = "canary-admin-0123456789abcdef"
HEADER = "sk-canaryheader0123456789abcdef"
QUERY = "canaryquery0123456789abcdef"
BODY = "sk-canarybody0123456789abcdef"
WRONG = "tg-canary-wrongkey-0123456789abcdef"
METRICS = "canary-metrics-token-0123456789abcdef"
CANARIES = (PROVIDER, VIRTUAL, ADMIN, HEADER, QUERY, BODY, WRONG, METRICS)


def config_text(fake: FakeUpstream, request_log: str, ledger_url: str) -> str:
    return textwrap.dedent(
        f"""
        providers:
          upstream:
            kind: openai
            base_url: {fake.base_url("openai")}
            api_key: {PROVIDER}
            timeout: {{connect: 2, first_byte: 3, inactivity: 3, total: 10}}
        models:
          small-model:  {{provider: upstream, model: mock-small, tier: budget,   price: {{input: 0.05, output: 0.40}}}}
          medium-model: {{provider: upstream, model: mock-medium, tier: standard, price: {{input: 0.25, output: 2.00}}}}
          large-model:  {{provider: upstream, model: mock-large, tier: premium,  price: {{input: 2.50, output: 15.00}}}}
        routes:
          auto:
            strategy: rules
            fallback: {{retries: 0}}
        keys:
          - {{name: canary, key: {VIRTUAL}}}
        ledger: {{url: "{ledger_url}"}}
        observability: {{request_log: "{request_log}", admin_key: {ADMIN}, metrics_token: {METRICS}}}
        """
    )


def exercise(url: str, fake: FakeUpstream) -> list[str]:
    """Every kind of request that carries a secret; returns the bodies and headers seen."""
    seen: list[str] = []
    auth = {"authorization": f"Bearer {VIRTUAL}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": f"my key is {BODY} ok"}]}
    with httpx.Client(base_url=url, timeout=10) as client:
        calls = [
            # a normal answer, with a secret in the prompt and in extra headers
            (
                "post",
                "/v1/chat/completions",
                {**auth, "x-debug": f"Bearer {HEADER}", "x-api-key": HEADER},
                body,
            ),
            # an upstream that rejects the provider key (its error echoes part of it)
            ("fault", "/v1/chat/completions", auth, body),
            # a wrong virtual key, and the key in the query string
            ("post", "/v1/chat/completions", {"authorization": f"Bearer {WRONG}"}, body),
            ("post", f"/v1/chat/completions?key={QUERY}", auth, {**body, "model": "nope"}),
            # a client error that quotes the body back
            ("post", "/v1/chat/completions", auth, {**body, "temperature": BODY}),
            ("post", "/v1/feedback", auth, {"request_id": BODY, "score": 1}),
            ("post", "/v1/feedback", auth, {"request_id": "x", "thumbs": BODY}),
            ("get", f"/dashboard/api/summary?key={ADMIN}", {}, None),
            ("get", "/dashboard/api/summary", {"authorization": f"Bearer {WRONG}"}, None),
            ("get", f"/metrics?token={METRICS}", {}, None),
            ("get", "/metrics", {"authorization": f"Bearer {WRONG}"}, None),
        ]
        for kind, path, headers, payload in calls:
            if kind == "fault":
                fake.enqueue(Fault(status=401))  # then the fallback model answers
            fake.enqueue(Reply("fine", input_tokens=10, output_tokens=2))
            r = (
                client.get(path, headers=headers)
                if kind == "get"
                else client.post(path, headers=headers, json=payload)
            )
            seen.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        fake.clear()
        metrics = client.get("/metrics", headers={"authorization": f"Bearer {METRICS}"})
        assert metrics.status_code == 200
        seen.append(metrics.text)
        summary = client.get("/dashboard/api/summary", headers={"authorization": f"Bearer {ADMIN}"})
        assert summary.status_code == 200
        seen.append(summary.text)
        seen.append(client.get("/health/ready").text)
        seen.append(client.get("/v1/models", headers=auth).text)
    return seen


def assert_clean(where: str, text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} leaked into {where}"


@pytest.fixture
def fake_with_key():
    with FakeUpstream.in_thread(api_key=PROVIDER) as upstream:
        yield upstream


def test_no_secret_leaves_an_in_process_gateway(fake_with_key, start_gateway, tmp_path):
    log = tmp_path / "requests.log"
    live = start_gateway(config_text(fake_with_key, str(log), "memory://"))
    outputs = exercise(live.url, fake_with_key)
    assert any("[REDACTED]" not in o and o.startswith("200") for o in outputs)
    for i, text in enumerate(outputs):
        assert_clean(f"response {i}", text)
    # request lines are written in batches, within 0.1 s of the request
    deadline = time.monotonic() + 5
    while True:
        lines = log.read_text() if log.exists() else ""
        if lines.count('"msg":"request"') >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert lines.count('"msg":"request"') == 5  # one line per chat request
    assert_clean("request log", lines)
    for entry in live.ledger.entries:
        assert_clean("ledger entry", repr(dataclasses.asdict(entry)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_secret_leaves_tiergate_serve(fake_with_key, tmp_path):
    db = tmp_path / "ledger.db"
    cfg = tmp_path / "tiergate.yaml"
    cfg.write_text(config_text(fake_with_key, "stdout", f"sqlite:///{db}"))
    port = _free_port()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    tiergate = Path(sys.executable).with_name("tiergate")
    proc = subprocess.Popen(
        [str(tiergate), "serve", "--config", str(cfg), "--port", str(port), "--log-level", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine imports slowly
        last: object = None
        while True:
            try:
                last = httpx.get(f"{url}/health/live")
                if last.status_code == 200:
                    break
            except httpx.TransportError as exc:
                last = exc
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"tiergate serve did not start: {last!r}"
            time.sleep(0.1)
        outputs = exercise(url, fake_with_key)
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=30)
    for i, text in enumerate(outputs):
        assert_clean(f"response {i}", text)
    out, err = stdout.decode(), stderr.decode()
    assert '"msg":"request"' in out, (out, err)
    assert_clean("serve stdout", out)
    assert_clean("serve stderr", err)
    assert db.exists()
    for path in tmp_path.glob("ledger.db*"):
        assert_clean(f"ledger file {path.name}", path.read_bytes().decode("latin-1"))
