"""Everything that watches a gateway, created with it and fed by its ledger sinks."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tiergate.auth.lockout import Lockout
from tiergate.observability.aggregator import Aggregator
from tiergate.observability.logging import (
    RequestLines,
    open_request_logger,
    open_request_stream,
)
from tiergate.observability.metrics import GatewayMetrics
from tiergate.observability.redact import Redactor

if TYPE_CHECKING:
    from tiergate.config.schema import Config
    from tiergate.gateway import Gateway
    from tiergate.observability.quality import QualityMonitor

ADMIN_KEY_ENV = "TIERGATE_ADMIN_KEY"


@dataclass
class Observability:
    """Metrics, request log, dashboard data and quality monitoring of one gateway."""

    redactor: Redactor
    aggregator: Aggregator
    metrics: GatewayMetrics | None = None
    request_log: logging.Logger | None = None
    request_lines: RequestLines | None = None
    quality: QualityMonitor | None = None
    admin_key: str | None = None
    metrics_token: str | None = None  # unset: /metrics is open
    # Addresses that guessed the admin key or the metrics token wrong too often.
    lockout: Lockout = field(default_factory=Lockout)

    @classmethod
    def attach(cls, gateway: Gateway, env: Mapping[str, str] | None = None) -> Observability:
        """Build every observer from the gateway's config and append its sinks."""
        from tiergate.observability.quality import QualityMonitor
        from tiergate.observability.tracing import tracing_sink

        env = os.environ if env is None else env
        config = gateway.config
        oc = config.observability
        admin_key = oc.admin_key or env.get(ADMIN_KEY_ENV) or None
        redactor = Redactor(config_secrets(config, admin_key))
        obs = cls(
            redactor=redactor,
            aggregator=Aggregator(oc.window, oc.bucket),
            admin_key=admin_key,
            metrics_token=oc.metrics_token,
        )
        if oc.metrics:
            deployments = [d.id for m in gateway.fleet.models.values() for d in m.deployments]
            budgets = {k.name: k.budget_usd for k in config.keys if k.budget_usd is not None}
            metrics = GatewayMetrics(gateway.health, deployments, max_key_labels=oc.max_key_labels)

            def remaining() -> dict[str, float]:
                spent = metrics.spend_by_key
                return {name: budget - spent.get(name, 0.0) for name, budget in budgets.items()}

            metrics.budget_source = remaining
            obs.metrics = metrics
            gateway.sinks.append(metrics.observe)
        gateway.sinks.append(obs.aggregator.observe)
        stream = open_request_stream(oc.request_log)
        if stream is not None:
            obs.request_log = open_request_logger(stream, redactor)
            obs.request_lines = RequestLines(
                stream, redactor, owns_stream=oc.request_log not in ("stdout", "stderr")
            )
            gateway.sinks.append(obs.request_lines)
        tracer = tracing_sink(env, obs.request_log)
        if tracer is not None:
            gateway.sinks.append(tracer)
        obs.quality = QualityMonitor.attach(gateway, obs)
        return obs

    def close(self) -> None:
        """Write out what is buffered (the request log) and release the log file."""
        if self.request_lines is not None:
            self.request_lines.close()


def config_secrets(config: Config, admin_key: str | None) -> list[str]:
    """Every secret value the configuration holds: provider keys and headers, virtual keys,
    the admin key and the metrics token."""
    secrets: list[str] = []
    for provider in config.providers.values():
        if provider.api_key:
            secrets.append(provider.api_key)
        secrets.extend(provider.headers.values())
    secrets.extend(k.key for k in config.keys)
    if admin_key:
        secrets.append(admin_key)
    if config.observability.metrics_token:
        secrets.append(config.observability.metrics_token)
    return secrets
