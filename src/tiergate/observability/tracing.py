"""OpenTelemetry traces, exported when the standard OTEL environment variables ask for it.

OpenTelemetry is an optional extra (``pip install 'tiergate[otel]'``), imported only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is set. Spans are written from
the ledger entry once a request has finished: one server span per request and a child
span for the time spent upstream, so the request path pays nothing while it runs. The
exporter itself reads every other ``OTEL_EXPORTER_OTLP_*`` variable (headers, protocol,
timeout); nothing here logs them, since headers often carry credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from tiergate.ledger import LedgerEntry

INSTALL_HINT = "pip install 'tiergate[otel]'"


def wants_tracing(env: Mapping[str, str]) -> bool:
    """True when the environment configures an OTLP trace exporter."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_sink(
    env: Mapping[str, str], log: logging.Logger | None
) -> Callable[[LedgerEntry], None] | None:
    """A ledger sink exporting one trace per request, or None when tracing is not wanted
    (or OpenTelemetry is not installed: then one warning says how to install it)."""
    if not wants_tracing(env):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        if log is not None:
            log.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed; "
                f"traces are off ({INSTALL_HINT})"
            )
        return None
    exporter = _exporter(env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
    if exporter is None:
        if log is not None:
            log.warning(
                f"the OTLP exporter package is not installed; traces are off ({INSTALL_HINT})"
            )
        return None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "tiergate")})
    # A provider of our own rather than the global one: two gateways in a process (tests,
    # `tiergate demo`) must not share or replace each other's exporter.
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return SpanWriter(provider.get_tracer("tiergate"), trace.set_span_in_context, trace.SpanKind)


def _exporter(protocol: str) -> Any:
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
    except ImportError:
        return None
    return OTLPSpanExporter()


class SpanWriter:
    """Turns a finished request's ledger entry into a request span and an upstream span."""

    def __init__(self, tracer: Any, in_context: Callable[[Any], Any], kinds: Any) -> None:
        self._tracer = tracer
        self._in_context = in_context
        self._kinds = kinds

    def __call__(self, entry: LedgerEntry) -> None:
        start = int(entry.ts * 1e9)
        end = start + int(entry.latency_ms * 1e6)
        span = self._tracer.start_span(
            f"{entry.endpoint} {entry.route}",
            kind=self._kinds.SERVER,
            start_time=start,
            attributes=span_attributes(entry),
        )
        if entry.upstream_ms > 0 and entry.deployment is not None:
            # Placed at the end of the request: the upstream wait is most of a request, and
            # the ledger keeps its length, not its exact start.
            upstream_start = max(end - int(entry.upstream_ms * 1e6), start)
            child = self._tracer.start_span(
                f"upstream {entry.deployment}",
                context=self._in_context(span),
                kind=self._kinds.CLIENT,
                start_time=upstream_start,
                attributes={
                    "tiergate.deployment": entry.deployment,
                    "tiergate.attempts": entry.fallbacks + 1,
                },
            )
            child.end(end_time=end)
        span.end(end_time=end)


def span_attributes(entry: LedgerEntry) -> dict[str, str | int | float | bool]:
    """Attributes of a request span (GenAI semantic conventions where they exist); never
    a prompt, an answer or a credential."""
    attrs: dict[str, str | int | float | bool] = {
        "gen_ai.request.model": entry.route,
        "gen_ai.usage.input_tokens": entry.input_tokens,
        "gen_ai.usage.output_tokens": entry.output_tokens,
        "http.response.status_code": entry.status,
        "tiergate.request_id": entry.request_id,
        "tiergate.route": entry.route,
        "tiergate.strategy": entry.strategy,
        "tiergate.cost_usd": entry.cost_usd,
        "tiergate.baseline_cost_usd": entry.baseline_cost_usd,
        "tiergate.cache": entry.cache,
        "tiergate.fallbacks": entry.fallbacks,
        "tiergate.stream": entry.stream,
    }
    if entry.model is not None:
        attrs["gen_ai.response.model"] = entry.model
    if entry.tier is not None:
        attrs["tiergate.tier"] = entry.tier
    if entry.key_name is not None:
        attrs["tiergate.key"] = entry.key_name
    if entry.error is not None:
        attrs["error.type"] = entry.error.split(":", 1)[0]
    return attrs
