"""OpenTelemetry end to end: with the standard OTEL variables set, a real gateway exports
its request spans over OTLP/HTTP to a collector, and no secret travels with them."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Reply

pytest.importorskip("opentelemetry.sdk.trace", reason="pip install 'tiergate[otel]'")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)


class Collector(http.server.ThreadingHTTPServer):
    """A minimal OTLP/HTTP trace collector: keeps every body POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                collector.paths.append(self.path)
                collector.bodies.append(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # keep pytest output clean

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[str, dict[str, object]]]:
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attrs = {a.key: _value(a.value) for a in span.attributes}
                        out.append((span.name, attrs))
        return out


def _value(v: object) -> object:
    kind = v.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(v, kind) if kind else None


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_request_spans_reach_an_otlp_collector(fake, start_gateway, collector, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export promptly, not every 5 s
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tiergate-test")
    gw = start_gateway(three_tier_config(fake))
    fake.enqueue(Reply("hello", input_tokens=12, output_tokens=3))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}]
    )
    request_id = raw.headers["x-tiergate-request-id"]
    deadline = time.monotonic() + 10
    while len(collector.spans()) < 2:
        assert time.monotonic() < deadline, "no spans exported"
        time.sleep(0.05)
    assert set(collector.paths) == {"/v1/traces"}
    spans = dict(collector.spans())
    request = spans["chat auto"]
    assert request["tiergate.request_id"] == request_id
    assert request["gen_ai.response.model"] == "small-model"
    assert request["gen_ai.usage.input_tokens"] == 12
    assert request["tiergate.tier"] == "budget"
    assert "upstream small-model@upstream" in spans
    exported = b"".join(collector.bodies)
    assert b"tiergate-test" in exported  # OTEL_SERVICE_NAME names the resource
    for secret in (b"sk-upstream", b"tg-test-key", b"hi there", b"hello"):
        assert secret not in exported  # neither credentials nor prompt / answer text
