"""Quality monitoring: feedback and judge scores, moving averages per route and model,
alerts when an average falls below the route's threshold.

Scores come from two places: `POST /v1/feedback` (a user's thumbs or score for one
request id) and the LLM judge, which scores a configured share of each route's answers
(`tiergate.observability.judge`). Each score updates a moving average over the last
`window` scores of its (route, model); when the average of at least `min_samples` scores
drops below the route's threshold the monitor logs a warning once, sets the
`tiergate_quality_alert` gauge and shows a banner on the dashboard, until it recovers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.core import GaugeMetricFamily, Metric

from tiergate.config.schema import QualityConfig
from tiergate.errors import BadRequest, NotFound
from tiergate.ledger import LedgerEntry
from tiergate.observability.served import Served, ServedIndex

if TYPE_CHECKING:
    from tiergate.gateway import Gateway
    from tiergate.observability.hub import Observability
    from tiergate.observability.judge import Judge

_KNOWN_REQUESTS = 100_000  # request ids remembered for feedback: ~10 MB at most


@dataclass(slots=True)
class MovingAverage:
    """The mean of the last `window` scores, updated in O(1)."""

    window: int
    scores: deque[float] = field(default_factory=deque)
    total: float = 0.0
    count: int = 0  # every score ever, not only the window's

    def add(self, score: float) -> None:
        if len(self.scores) == self.window:
            self.total -= self.scores.popleft()
        self.scores.append(score)
        self.total += score
        self.count += 1

    @property
    def mean(self) -> float | None:
        return self.total / len(self.scores) if self.scores else None


@dataclass(slots=True)
class _Track:
    average: MovingAverage
    by_source: dict[str, int] = field(default_factory=dict)
    alerting: bool = False
    since: float | None = None  # when the current alert started


class UnknownRequest(NotFound):
    """Feedback names a request id this gateway has not served (or no longer remembers)."""

    code = "request_not_found"


def parse_feedback(data: Any) -> tuple[str, float, str]:
    """(request_id, score in 0..1, kind) from a feedback body; raises `BadRequest`."""
    if not isinstance(data, dict):
        raise BadRequest("feedback must be a JSON object")
    unknown = set(data) - {"request_id", "score", "thumbs", "comment"}
    if unknown:
        raise BadRequest(f"unknown feedback fields: {sorted(unknown)}")
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 200:
        raise BadRequest("request_id must be a non-empty string", param="request_id")
    score, thumbs = data.get("score"), data.get("thumbs")
    if (score is None) == (thumbs is None):
        raise BadRequest('give exactly one of "score" (0..1) and "thumbs" ("up" or "down")')
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise BadRequest('thumbs must be "up" or "down"', param="thumbs")
        return request_id.strip(), 1.0 if thumbs == "up" else 0.0, "thumbs"
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        raise BadRequest("score must be a number from 0 to 1", param="score")
    return request_id.strip(), float(score), "score"


class QualityMonitor:
    """Scores per (route, model), their moving averages and alerts, for one gateway."""

    def __init__(
        self,
        config: QualityConfig,
        *,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.config = config
        self._log = log
        self._clock = clock
        self._redact = redact
        self._served = ServedIndex(_KNOWN_REQUESTS)
        self._tracks: dict[tuple[str, str], _Track] = {}
        # Feedback arrives on the event loop, judge scores too; the lock only guards the
        # outcome file against a future threaded caller and costs nothing uncontended.
        self._write_lock = threading.Lock()
        self.judge: Judge | None = None

    @classmethod
    def attach(cls, gateway: Gateway, obs: Observability) -> QualityMonitor:
        """The monitor of a gateway: remembers served requests, samples answers for the judge."""
        from tiergate.observability.judge import Judge

        monitor = cls(gateway.config.quality, log=obs.request_log, redact=obs.redactor)
        gateway.sinks.append(monitor.observe)
        if obs.metrics is not None:
            obs.metrics.extra_collectors.append(monitor.collect)
        judge_config = gateway.config.quality.judge
        if judge_config is not None:
            monitor.judge = Judge(gateway, monitor, judge_config)
            gateway.answer_sinks.append(monitor.judge.offer)
        return monitor

    # -- inputs -----------------------------------------------------------------------------

    def observe(self, entry: LedgerEntry) -> None:
        """The ledger sink: remember where each answered request went, for feedback."""
        if entry.model is None or entry.endpoint == "judge":
            return
        self._served.add(
            entry.request_id, Served(entry.route, entry.model, entry.tier, entry.key_name)
        )

    def served(self, request_id: str) -> Served | None:
        return self._served.get(request_id)

    def feedback(self, data: Any, key_name: str | None = None) -> dict[str, Any]:
        """Apply one feedback body sent with the key named `key_name`; raises `BadRequest`,
        or `UnknownRequest` for an id this gateway did not serve to that key."""
        request_id, score, kind = parse_feedback(data)
        served = self._served.get(request_id)
        # Another key's request looks unknown: feedback must not reveal or skew others' ids.
        if served is None or (served.key_name is not None and served.key_name != key_name):
            # The id is not echoed: error bodies never quote what a client sent.
            raise UnknownRequest("no request with this id is known", param="request_id")
        self.record(served.route, served.model, score, source=kind, request_id=request_id)
        return {
            "request_id": request_id,
            "route": served.route,
            "model": served.model,
            "score": score,
        }

    def record(
        self,
        route: str,
        model: str,
        score: float,
        *,
        source: str,
        request_id: str | None = None,
        prompt: str | None = None,
        response: str | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Add one score; may raise or clear the (route, model) alert; appends it as an
        outcome record when `outcomes_path` is set."""
        track = self._tracks.get((route, model))
        if track is None:
            track = self._tracks[(route, model)] = _Track(MovingAverage(self.config.window))
        track.average.add(score)
        track.by_source[source] = track.by_source.get(source, 0) + 1
        self._check(route, model, track)
        if self.config.outcomes_path:
            self._write_outcome(route, model, score, source, request_id, prompt, response, cost_usd)

    # -- alerts -----------------------------------------------------------------------------

    def threshold(self, route: str) -> float:
        per_route = self.config.routes.get(route)
        if per_route is not None and per_route.threshold is not None:
            return per_route.threshold
        return self.config.threshold

    def sample_share(self, route: str, default: float) -> float:
        per_route = self.config.routes.get(route)
        if per_route is not None and per_route.sample is not None:
            return per_route.sample
        return default

    def _check(self, route: str, model: str, track: _Track) -> None:
        mean = track.average.mean
        if mean is None or len(track.average.scores) < self.config.min_samples:
            return
        threshold = self.threshold(route)
        fields = {
            "route": route,
            "model": model,
            "average": round(mean, 4),
            "threshold": threshold,
            "samples": len(track.average.scores),
        }
        if mean < threshold and not track.alerting:
            track.alerting, track.since = True, self._clock()
            if self._log is not None:
                self._log.warning(
                    "quality alert", extra={"fields": {"event": "quality_alert", **fields}}
                )
        elif mean >= threshold and track.alerting:
            track.alerting, track.since = False, None
            if self._log is not None:
                self._log.info(
                    "quality recovered", extra={"fields": {"event": "quality_recovered", **fields}}
                )

    def rows(self) -> list[dict[str, Any]]:
        """One row per (route, model): moving average, samples, threshold, alert."""
        out = []
        for (route, model), track in sorted(self._tracks.items()):
            out.append(
                {
                    "route": route,
                    "model": model,
                    "average": track.average.mean,
                    "samples": len(track.average.scores),
                    "scores": track.average.count,
                    "sources": dict(track.by_source),
                    "threshold": self.threshold(route),
                    "alert": track.alerting,
                    "alert_since": track.since,
                }
            )
        return out

    def alerts(self) -> list[dict[str, Any]]:
        return [row for row in self.rows() if row["alert"]]

    def collect(self) -> Iterator[Metric]:
        """Scrape-time gauges: moving average, samples and alert per route and model."""
        labels = ["route", "model"]
        average = GaugeMetricFamily(
            "tiergate_quality_score", "Moving average of quality scores (0..1).", labels=labels
        )
        samples = GaugeMetricFamily(
            "tiergate_quality_samples", "Scores in the moving average.", labels=labels
        )
        alert = GaugeMetricFamily(
            "tiergate_quality_alert",
            "1 while the moving average is below the route's threshold.",
            labels=labels,
        )
        threshold = GaugeMetricFamily(
            "tiergate_quality_threshold", "Each route's alert threshold.", labels=["route"]
        )
        for (route, model), track in sorted(self._tracks.items()):
            mean = track.average.mean
            if mean is not None:
                average.add_metric([route, model], mean)
            samples.add_metric([route, model], len(track.average.scores))
            alert.add_metric([route, model], 1.0 if track.alerting else 0.0)
        for route in sorted({route for route, _ in self._tracks}):
            threshold.add_metric([route], self.threshold(route))
        yield average
        yield samples
        yield alert
        yield threshold

    # -- outcome records --------------------------------------------------------------------

    def _write_outcome(
        self,
        route: str,
        model: str,
        score: float,
        source: str,
        request_id: str | None,
        prompt: str | None,
        response: str | None,
        cost_usd: float | None,
    ) -> None:
        record: dict[str, Any] = {"model": model, "score": score, "task": route, "source": source}
        # Prompts and answers may quote credentials; the redactor masks anything key-shaped.
        record["prompt"] = self._redact(prompt) if prompt is not None else ""
        if response is not None:
            record["response"] = self._redact(response)
        if request_id is not None:
            record["request_id"] = request_id
        if cost_usd is not None:
            record["cost_usd"] = cost_usd
        line = orjson.dumps(record) + b"\n"
        assert self.config.outcomes_path is not None
        with self._write_lock, Path(self.config.outcomes_path).open("ab") as out:
            out.write(line)
