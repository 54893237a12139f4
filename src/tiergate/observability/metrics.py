"""Prometheus metrics for one gateway: counters fed by the ledger sink, gauges at scrape time.

The request path only adds numbers to plain cells, cached per (route, tier, model, status,
cache result); Prometheus families are built from the cells when Prometheus scrapes.
(prometheus_client's own counters take a lock per increment: a dozen of them cost ~15 us
per request on the bench machine, these ~3 us.) Everything that is a state rather than an
event (circuit breakers, budgets, quality averages) is also read only at scrape time.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
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


class _Cell:
    """One counter value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _Hist:
    """One histogram: a count per bucket (not cumulative; summed when rendered) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(_float_text, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


def _float_text(value: float) -> str:
    # as prometheus_client writes bucket bounds: 0.025, 1.0, 300.0
    return repr(float(value))


class _Family:
    """Cells of one metric, by label values."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.cells: dict[tuple[str, ...], _Cell] = {}

    def cell(self, *values: str) -> _Cell:
        cell = self.cells.get(values)
        if cell is None:
            cell = self.cells[values] = _Cell()
        return cell

    def collect(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for values, cell in self.cells.items():
            family.add_metric(values, cell.value)
        return family


class _HistFamily:
    def __init__(
        self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, bounds
        self.hists: dict[tuple[str, ...], _Hist] = {}

    def hist(self, *values: str) -> _Hist:
        hist = self.hists.get(values)
        if hist is None:
            hist = self.hists[values] = _Hist(self.bounds)
        return hist

    def collect(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for values, hist in self.hists.items():
            family.add_metric(values, hist.buckets(), hist.total)
        return family


@dataclass(slots=True)
class _Series:
    """The cells one (route, tier, model, status, cache result) combination updates."""

    requests: _Cell
    duration: _Hist
    upstream: _Hist
    overhead: _Hist
    cost: _Cell
    baseline: _Cell
    input_tokens: _Cell
    output_tokens: _Cell
    cached_tokens: _Cell
    cache: _Cell
    fallbacks: _Cell
    retries: _Cell


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
        by_request = ("route", "tier", "model", "status")
        self._requests = _Family("tiergate_requests", "Finished requests.", by_request)
        self._duration = _HistFamily(
            "tiergate_request_duration_seconds",
            "Time from arrival to the last byte, as the client saw it.",
            by_request,
            _LATENCY_BUCKETS,
        )
        self._upstream = _HistFamily(
            "tiergate_upstream_duration_seconds",
            "Time spent waiting on providers, every attempt included.",
            ("route", "tier", "model"),
            _LATENCY_BUCKETS,
        )
        self._overhead = _HistFamily(
            "tiergate_gateway_overhead_seconds",
            "Time the gateway itself added: total minus upstream (retry backoff included).",
            ("route",),
            _OVERHEAD_BUCKETS,
        )
        self._tokens = _Family("tiergate_tokens", "Tokens by model and kind.", ("model", "kind"))
        self._cost = _Family("tiergate_cost_usd", "Spend in USD by model.", ("model",))
        self._baseline = _Family(
            "tiergate_baseline_cost_usd",
            "What the same requests would have cost on each route's baseline model.",
            ("route",),
        )
        self._cache_saved = _Family(
            "tiergate_cache_saved_usd",
            "What cache hits would have cost had they gone upstream.",
            ("route",),
        )
        self._cache = _Family(
            "tiergate_cache_requests",
            "Requests by cache result (hit, miss, bypass).",
            ("route", "result"),
        )
        self._fallbacks = _Family(
            "tiergate_fallbacks",
            "Attempts moved to another deployment or model after a failure.",
            ("route",),
        )
        self._retries = _Family(
            "tiergate_retries",
            "Attempts repeated on the same deployment after a failure.",
            ("route",),
        )
        self._families: tuple[_Family | _HistFamily, ...] = (
            self._requests,
            self._duration,
            self._upstream,
            self._overhead,
            self._tokens,
            self._cost,
            self._baseline,
            self._cache_saved,
            self._cache,
            self._fallbacks,
            self._retries,
        )
        self._series: dict[tuple[str, str, str, int, str], _Series] = {}
        self._spend_by_key: dict[str, float] = {}
        # Read at scrape time: budget left per key name, and gauges of other observers.
        self.budget_source: Callable[[], Mapping[str, float]] = budgets or dict
        self.extra_collectors: list[Callable[[], Iterable[Metric]]] = []
        self.registry.register(_EventCollector(self._families))
        self.registry.register(_StateCollector(health, tuple(deployments), max_key_labels, self))

    @property
    def spend_by_key(self) -> Mapping[str, float]:
        """USD spent per key name since this process started."""
        return self._spend_by_key

    def _children(self, entry: LedgerEntry) -> _Series:
        key = (entry.route, entry.tier or "none", entry.model or "none", entry.status, entry.cache)
        series = self._series.get(key)
        if series is None:
            route, tier, model, status, cache = key
            by_request = (route, tier, model, str(status))
            series = self._series[key] = _Series(
                requests=self._requests.cell(*by_request),
                duration=self._duration.hist(*by_request),
                upstream=self._upstream.hist(route, tier, model),
                overhead=self._overhead.hist(route),
                cost=self._cost.cell(model),
                baseline=self._baseline.cell(route),
                input_tokens=self._tokens.cell(model, "input"),
                output_tokens=self._tokens.cell(model, "output"),
                cached_tokens=self._tokens.cell(model, "cached_input"),
                cache=self._cache.cell(route, cache),
                fallbacks=self._fallbacks.cell(route),
                retries=self._retries.cell(route),
            )
        return series

    def observe(self, entry: LedgerEntry) -> None:
        """The ledger sink: count one finished request."""
        s = self._children(entry)
        s.requests.value += 1
        s.duration.observe(entry.latency_ms / 1000)
        s.cache.value += 1
        if entry.upstream_ms > 0:
            s.upstream.observe(entry.upstream_ms / 1000)
            s.overhead.observe(max(entry.latency_ms - entry.upstream_ms, 0.0) / 1000)
        if entry.input_tokens:
            s.input_tokens.value += entry.input_tokens
        if entry.output_tokens:
            s.output_tokens.value += entry.output_tokens
        if entry.cached_tokens:
            s.cached_tokens.value += entry.cached_tokens
        if entry.cost_usd:
            s.cost.value += entry.cost_usd
        spent = entry.cost_usd + entry.extra_cost_usd
        if spent and entry.key_name is not None:
            self._spend_by_key[entry.key_name] = self._spend_by_key.get(entry.key_name, 0.0) + spent
        if entry.baseline_cost_usd:
            s.baseline.value += entry.baseline_cost_usd
        if entry.cache_saved_usd:
            self._cache_saved.cell(entry.route).value += entry.cache_saved_usd
        for call in entry.sub_calls:
            # classifier / judge / cascade calls made for this request: their own model's spend
            self._cost.cell(call.model).value += call.cost_usd
            self._tokens.cell(call.model, "input").value += call.input_tokens
            self._tokens.cell(call.model, "output").value += call.output_tokens
        if entry.attempts:
            retries, fallbacks = count_retries(entry.attempts, entry.deployment)
            if retries:
                s.retries.value += retries
            if fallbacks:
                s.fallbacks.value += fallbacks

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        return generate_latest(self.registry)


class _EventCollector(Collector):
    """The counters and histograms, built from their cells at scrape time."""

    def __init__(self, families: tuple[_Family | _HistFamily, ...]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()


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
