"""JSON request lines, the redaction filter, and traces from ledger entries."""

import io
import json
import logging

from tiergate.ledger import LedgerEntry
from tiergate.observability.logging import AppendFile, JsonFormatter, RequestLines, json_handler
from tiergate.observability.redact import Redactor
from tiergate.observability.tracing import SpanWriter, wants_tracing


def entry(**kw):
    base = dict(
        request_id="r1",
        ts=1_700_000_000.0,
        key_name="team",
        route="auto",
        strategy="rules",
        reasons="rules: short → budget",
        model="small",
        tier="budget",
        deployment="small@up",
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.001,
        latency_ms=120.0,
        upstream_ms=100.0,
    )
    base.update(kw)
    return LedgerEntry(**base)


def private_logger(stream, redactor):
    logger = logging.Logger("test", logging.INFO)
    logger.addHandler(json_handler(stream, redactor))
    return logger


def test_one_json_line_per_request_with_the_decision():
    out = io.StringIO()
    RequestLines(out, Redactor())(entry())
    (line,) = out.getvalue().splitlines()
    data = json.loads(line)
    assert data["msg"] == "request" and data["level"] == "info"
    assert data["route"] == "auto" and data["model"] == "small" and data["tier"] == "budget"
    assert data["reasons"] == "rules: short → budget"
    assert data["latency_ms"] == 120.0 and data["upstream_ms"] == 100.0
    assert data["ts"].endswith("Z")


def test_server_errors_log_as_warnings():
    out = io.StringIO()
    RequestLines(out, Redactor())(entry(status=502, error="UpstreamError: boom"))
    assert json.loads(out.getvalue())["level"] == "warning"


def test_request_lines_mask_secrets_in_their_fields():
    out = io.StringIO()
    lines = RequestLines(out, Redactor(["configured-secret-123"]))
    lines(entry(error="upstream said configured-secret-123", reasons="Bearer abcdefghijklmnop"))
    text = out.getvalue()
    assert "configured-secret-123" not in text and "abcdefghijklmnop" not in text
    assert json.loads(text)["error"] == "upstream said [REDACTED]"


async def test_request_lines_are_batched_inside_an_event_loop_and_flushed_on_close(tmp_path):
    path = tmp_path / "requests.log"
    lines = RequestLines(AppendFile(str(path)), Redactor(), interval=60, owns_stream=True)
    for i in range(3):
        lines(entry(request_id=f"r{i}"))
    assert not path.exists()  # nothing written yet: the first write opens the file
    lines.close()
    ids = [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
    assert ids == ["r0", "r1", "r2"]


async def test_request_lines_reach_the_stream_within_the_interval():
    import asyncio

    out = io.StringIO()
    lines = RequestLines(out, Redactor(), interval=0.01)
    lines(entry())
    assert out.getvalue() == ""
    for _ in range(200):
        await asyncio.sleep(0.01)
        if out.getvalue():
            break
    assert json.loads(out.getvalue())["request_id"] == "r1"


def test_outside_an_event_loop_each_line_is_written_at_once():
    out = io.StringIO()
    RequestLines(out, Redactor(), interval=60)(entry(request_id="a"))
    assert out.getvalue().count("\n") == 1


async def test_a_full_buffer_is_written_without_waiting_for_the_timer():
    out = io.StringIO()
    lines = RequestLines(out, Redactor(), interval=60, max_lines=2)
    lines(entry(request_id="a"))
    assert out.getvalue() == ""
    lines(entry(request_id="b"))
    assert out.getvalue().count("\n") == 2
    lines.close()


def test_redaction_filter_masks_messages_fields_and_tracebacks():
    out = io.StringIO()
    logger = private_logger(out, Redactor(["configured-secret-123"]))
    try:
        raise RuntimeError(
            "failed with Authorization: Bearer abcdefghijkl and configured-secret-123"
        )
    except RuntimeError:
        logger.exception(
            "call to https://x/v1?key=AIzaSyA-secret-value failed",
            extra={"fields": {"error": "sk-abcdefghijklmnop"}},
        )
    text = out.getvalue()
    for secret in (
        "abcdefghijkl",
        "configured-secret-123",
        "AIzaSyA-secret-value",
        "sk-abcdefghijklmnop",
    ):
        assert secret not in text
    data = json.loads(text)
    assert "?key=[REDACTED]" in data["msg"]
    assert "Authorization: [REDACTED]" in data["exc"]


def test_redactor_leaves_ordinary_text_alone():
    redact = Redactor(["tg-test-key-long"])
    for text in (
        "rules: greeting or FAQ: 4 prompt tokens <= 300",
        "keyword 'password' matched",
        "model gpt-5-mini",
    ):
        assert redact(text) == text


def test_json_formatter_plain_record():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    assert json.loads(JsonFormatter().format(record))["msg"] == "hello world"


def test_tracing_wanted_only_with_an_endpoint():
    assert not wants_tracing({})
    assert wants_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wants_tracing({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not wants_tracing(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}
    )
    assert not wants_tracing(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_EXPORTER": "none"}
    )


class FakeSpan:
    def __init__(self, name, kw):
        self.name, self.kw, self.end_time = name, kw, None

    def end(self, end_time):
        self.end_time = end_time


class FakeTracer:
    def __init__(self):
        self.spans = []

    def start_span(self, name, **kw):
        span = FakeSpan(name, kw)
        self.spans.append(span)
        return span


class Kinds:
    SERVER, CLIENT = "server", "client"


def test_span_writer_builds_request_and_upstream_spans():
    tracer = FakeTracer()
    SpanWriter(tracer, lambda span: ("ctx", span), Kinds)(entry())
    request, upstream = tracer.spans
    assert request.name == "chat auto" and request.kw["kind"] == "server"
    assert request.kw["start_time"] == 1_700_000_000 * 10**9
    assert request.end_time == request.kw["start_time"] + 120 * 10**6
    attrs = request.kw["attributes"]
    assert attrs["gen_ai.response.model"] == "small" and attrs["tiergate.cost_usd"] == 0.001
    assert upstream.kw["context"] == ("ctx", request)
    assert upstream.end_time - upstream.kw["start_time"] == 100 * 10**6
