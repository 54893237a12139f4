"""Prometheus metrics for one gateway: counters fed by the ledger sink, gauges at scrape time.

The request path pays for a handful of counter increments on label children cached per
(route, tier, model, status); everything that is a state rather than an event (circuit
breakers, budgets, quality averages) is read only when Prometheus scrapes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tiergate.execution.health import HealthBoard
from tiergate.ledger import LedgerEntry

CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER = "other"

# Seconds. Upstream calls take from tens of milliseconds to minutes; the gateway's own
# overhead should stay well under a millisecond, so its buckets start far lower.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)
_CIRCUIT_STATES = ("closed", "half_open", "open")


@dataclass(slots=True)
class _Series:
    """The label children one (route, tier, model, status) combination updates."""

    requests: Counter
    duration: Histogram
    upstream: Histogram
    overhead: Histogram
    cost: Counter
    baseline: Counter
    input_tokens: Counter
    output_tokens: Counter
    cached_tokens: Counter
    cache: Counter
    fallbacks: Counter
    retries: Counter


class GatewayMetrics:
    """The gateway's Prometheus registry and the sink that feeds it."""

    def __init__(
        self,
        health: HealthBoard,
        deployments: Iterable[str] = (),
        *,
        budgets: Callable[[], Mapping[str, float]] | None = None,
        max_key_labels: int = 20,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        by_request = ["route", "tier", "model", "status"]
        self._requests = Counter("tiergate_requests", "Finished requests.", by_request, registry=r)
        self._duration = Histogram(
            "tiergate_request_duration_seconds",
            "Time from arrival to the last byte, as the client saw it.",
            by_request,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._upstream = Histogram(
            "tiergate_upstream_duration_seconds",
            "Time spent waiting on providers, every attempt included.",
            ["route", "tier", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._overhead = Histogram(
            "tiergate_gateway_overhead_seconds",
            "Time the gateway itself added: total minus upstream (retry backoff included).",
            ["route"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self._tokens = Counter(
            "tiergate_tokens", "Tokens by model and kind.", ["model", "kind"], registry=r
        )
        self._cost = Counter("tiergate_cost_usd", "Spend in USD by model.", ["model"], registry=r)
        self._baseline = Counter(
            "tiergate_baseline_cost_usd",
            "What the same requests would have cost on each route's baseline model.",
            ["route"],
            registry=r,
        )
        self._cache_saved = Counter(
            "tiergate_cache_saved_usd",
            "What cache hits would have cost had they gone upstream.",
            ["route"],
            registry=r,
        )
        self._cache = Counter(
            "tiergate_cache_requests",
            "Requests by cache result (hit, miss, bypass).",
            ["route", "result"],
            registry=r,
        )
        self._fallbacks = Counter(
            "tiergate_fallbacks",
            "Attempts moved to another deployment or model after a failure.",
            ["route"],
            registry=r,
        )
        self._retries = Counter(
            "tiergate_retries",
            "Attempts repeated on the same deployment after a failure.",
            ["route"],
            registry=r,
        )
        self._series: dict[tuple[str, str, str, str, str], _Series] = {}
        self._spend_by_key: dict[str, float] = {}
        # Read at scrape time: budget left per key name, and gauges of other observers.
        self.budget_source: Callable[[], Mapping[str, float]] = budgets or dict
        self.extra_collectors: list[Callable[[], Iterable[Metric]]] = []
        r.register(_StateCollector(health, tuple(deployments), max_key_labels, self))

    @property
    def spend_by_key(self) -> Mapping[str, float]:
        """USD spent per key name since this process started."""
        return self._spend_by_key

    def _children(self, entry: LedgerEntry) -> _Series:
        route = entry.route
        tier = entry.tier or "none"
        model = entry.model or "none"
        status = str(entry.status)
        key = (route, tier, model, status, entry.cache)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(
                requests=self._requests.labels(route, tier, model, status),
                duration=self._duration.labels(route, tier, model, status),
                upstream=self._upstream.labels(route, tier, model),
                overhead=self._overhead.labels(route),
                cost=self._cost.labels(model),
                baseline=self._baseline.labels(route),
                input_tokens=self._tokens.labels(model, "input"),
                output_tokens=self._tokens.labels(model, "output"),
                cached_tokens=self._tokens.labels(model, "cached_input"),
                cache=self._cache.labels(route, entry.cache),
                fallbacks=self._fallbacks.labels(route),
                retries=self._retries.labels(route),
            )
        return series

    def observe(self, entry: LedgerEntry) -> None:
        """The ledger sink: count one finished request."""
        s = self._children(entry)
        s.requests.inc()
        s.duration.observe(entry.latency_ms / 1000)
        s.cache.inc()
        if entry.upstream_ms > 0:
            s.upstream.observe(entry.upstream_ms / 1000)
            s.overhead.observe(max(entry.latency_ms - entry.upstream_ms, 0.0) / 1000)
        if entry.input_tokens:
            s.input_tokens.inc(entry.input_tokens)
        if entry.output_tokens:
            s.output_tokens.inc(entry.output_tokens)
        if entry.cached_tokens:
            s.cached_tokens.inc(entry.cached_tokens)
        if entry.cost_usd:
            s.cost.inc(entry.cost_usd)
        spent = entry.cost_usd + entry.extra_cost_usd
        if spent and entry.key_name is not None:
            self._spend_by_key[entry.key_name] = self._spend_by_key.get(entry.key_name, 0.0) + spent
        if entry.baseline_cost_usd:
            s.baseline.inc(entry.baseline_cost_usd)
        if entry.cache_saved_usd:
            self._cache_saved.labels(entry.route).inc(entry.cache_saved_usd)
        for call in entry.sub_calls:
            # classifier / judge / cascade calls made for this request: their own model's spend
            self._cost.labels(call.model).inc(call.cost_usd)
            self._tokens.labels(call.model, "input").inc(call.input_tokens)
            self._tokens.labels(call.model, "output").inc(call.output_tokens)
        if entry.attempts:
            retries, fallbacks = count_retries(entry.attempts, entry.deployment)
            if retries:
                s.retries.inc(retries)
            if fallbacks:
                s.fallbacks.inc(fallbacks)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        return generate_latest(self.registry)


def count_retries(attempts: str, final: str | None) -> tuple[int, int]:
    """(retries, fallbacks) from a ledger `attempts` text ("dep:status,...") and the
    deployment that answered: a retry stays on the same deployment, a fallback moves."""
    path = [part.rsplit(":", 1)[0] for part in attempts.split(",") if part]
    if final is not None:
        path.append(final)
    retries = fallbacks = 0
    for before, after in itertools.pairwise(path):
        if before == after:
            retries += 1
        else:
            fallbacks += 1
    return retries, fallbacks


def cap_labels(values: Mapping[str, float], limit: int, *, lowest: bool = True) -> dict[str, float]:
    """At most ``limit`` named entries (the lowest values first, or the highest) and the sum
    of the rest as "other", so a thousand keys never make a thousand series."""
    if len(values) <= limit:
        return dict(values)
    ordered = sorted(values.items(), key=lambda kv: kv[1], reverse=not lowest)
    out = dict(ordered[:limit])
    out[OTHER] = sum(v for _, v in ordered[limit:])
    return out


class _StateCollector(Collector):
    """Gauges computed at scrape time: circuit state, budgets, plus any extra collectors."""

    def __init__(
        self,
        health: HealthBoard,
        deployments: tuple[str, ...],
        max_key_labels: int,
        owner: GatewayMetrics,
    ) -> None:
        self._health = health
        self._deployments = deployments
        self._max_keys = max_key_labels
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        yield from self._circuits()
        remaining = GaugeMetricFamily(
            "tiergate_budget_remaining_usd",
            "Budget left per key (the keys closest to their limit; the rest summed as 'other').",
            labels=["key"],
        )
        for key, value in cap_labels(self._owner.budget_source(), self._max_keys).items():
            remaining.add_metric([key], value)
        yield remaining
        for extra in self._owner.extra_collectors:
            yield from extra()

    def _circuits(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "tiergate_circuit_state",
            "Circuit breaker per deployment: 1 for its current state.",
            labels=["deployment", "state"],
        )
        failures = GaugeMetricFamily(
            "tiergate_circuit_consecutive_failures",
            "Failures in a row per deployment.",
            labels=["deployment"],
        )
        latency = GaugeMetricFamily(
            "tiergate_deployment_latency_ewma_seconds",
            "Moving average of successful upstream latency per deployment.",
            labels=["deployment"],
        )
        snapshot = self._health.snapshot()
        for dep in sorted(set(self._deployments) | snapshot.keys()):
            health = snapshot.get(dep)
            current = health.state if health is not None else "closed"
            for name in _CIRCUIT_STATES:
                state.add_metric([dep, name], 1.0 if name == current else 0.0)
            failures.add_metric([dep], float(health.failures if health else 0))
            if health is not None and health.latency_ewma_ms is not None:
                latency.add_metric([dep], health.latency_ewma_ms / 1000)
        yield state
        yield failures
        yield latency
