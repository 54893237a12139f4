"""Quality monitoring: moving averages, alerts, and the LLM judge through the executor."""

import json
import re
import time

import httpx
import pytest

from tests.conftest import three_tier_config
from tiergate.config.schema import QualityConfig, RouteQualityConfig
from tiergate.fakes import Reply
from tiergate.observability.judge import parse_score
from tiergate.observability.quality import MovingAverage, QualityMonitor


def test_moving_average_keeps_the_last_window():
    avg = MovingAverage(3)
    for s in (1, 1, 1, 0, 0):
        avg.add(s)
    assert avg.mean == pytest.approx(1 / 3)
    assert avg.count == 5


class Log:
    def __init__(self):
        self.lines = []

    def warning(self, msg, extra):
        self.lines.append(("warning", msg, extra["fields"]))

    def info(self, msg, extra):
        self.lines.append(("info", msg, extra["fields"]))


def test_alert_is_raised_once_and_cleared():
    log = Log()
    config = QualityConfig(
        threshold=0.7,
        window=4,
        min_samples=3,
        routes={"auto:code": RouteQualityConfig(threshold=0.9)},
    )
    monitor = QualityMonitor(config, log=log)
    for score in (1, 0.2, 0.3):
        monitor.record("auto", "small", score, source="judge")
    assert [row["alert"] for row in monitor.rows()] == [True]
    monitor.record("auto", "small", 0.1, source="judge")
    assert [line[1] for line in log.lines] == ["quality alert"]  # once, not per score
    assert log.lines[0][2]["route"] == "auto" and log.lines[0][2]["threshold"] == 0.7
    for _ in range(4):
        monitor.record("auto", "small", 1.0, source="feedback")
    assert [line[1] for line in log.lines] == ["quality alert", "quality recovered"]
    assert monitor.alerts() == []
    # a route's own threshold
    for _ in range(3):
        monitor.record("auto:code", "small", 0.85, source="judge")
    assert [a["route"] for a in monitor.alerts()] == ["auto:code"]


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 0.8, "reason": "fine"}', 0.8),
        ('```json\n{"score": 1}\n```', 1.0),
        ("Score: 7/10", 0.7),
        ("8", 0.8),
        ("0.35", 0.35),
        ("I rate it 85/100.", 0.85),
        ("no idea", None),
        ("", None),
    ],
)
def test_parse_score(text, score):
    assert parse_score(text) == (pytest.approx(score) if score is not None else None)


def wait_for(predicate, within=10.0):
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_judge_scores_a_sample_books_its_cost_and_alerts(fake, start_gateway, tmp_path):
    outcomes = tmp_path / "outcomes.jsonl"
    log = tmp_path / "requests.log"
    live = start_gateway(
        three_tier_config(
            fake,
            f"""
            observability: {{request_log: "{log}", admin_key: admin-key-0123456789}}
            quality:
              judge: {{model: large-model, sample: 1.0}}
              threshold: 0.6
              min_samples: 2
              outcomes_path: "{outcomes}"
            """,
        )
    )
    for answer, verdict in (
        ("Paris", '{"score": 0.9}'),
        ("Lyon", '{"score": 0.1}'),
        ("Nice", '{"score": 0.2}'),
    ):
        fake.enqueue(Reply(answer, input_tokens=10, output_tokens=2))
        fake.enqueue(Reply(verdict, input_tokens=100, output_tokens=8))
        n = sum(e.endpoint == "judge" for e in live.ledger.entries)
        live.client().chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi, capital of France?"}]
        )
        # one judgment at a time keeps the fake's reply queue in order
        wait_for(lambda n=n: sum(e.endpoint == "judge" for e in live.ledger.entries) == n + 1)
    judged = [e for e in live.ledger.entries if e.endpoint == "judge"]
    assert [e.model for e in judged] == ["large-model"] * 3
    assert judged[0].cost_usd == pytest.approx((100 * 2.5 + 8 * 15.0) / 1e6)
    assert judged[0].route == "judge" and "small-model" in judged[0].reasons
    # the judge saw the question and the answer, with the rubric
    judge_call = fake.last.body
    assert judge_call["model"] == "mock-large"
    assert "capital of France" in judge_call["messages"][1]["content"]
    assert "Nice" in judge_call["messages"][1]["content"]
    monitor = live.gateway.observability.quality
    (row,) = monitor.rows()
    assert row["average"] == pytest.approx(0.4)
    assert row["alert"] is True and row["sources"] == {"judge": 3}
    # the alert: a log line, a metric and a dashboard banner
    wait_for(lambda: "quality alert" in log.read_text())
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'tiergate_quality_alert{model="small-model",route="auto"} 1.0' in metrics
    assert re.search(
        r'tiergate_quality_score\{model="small-model",route="auto"\} 0\.(4|3999)', metrics
    )
    summary = httpx.get(
        f"{live.url}/dashboard/api/summary",
        headers={"authorization": "Bearer admin-key-0123456789"},
    ).json()
    assert summary["alerts"][0]["model"] == "small-model"
    # scores are stored as outcome records
    records = [json.loads(line) for line in outcomes.read_text().splitlines()]
    assert [r["score"] for r in records] == [0.9, 0.1, 0.2]
    assert records[0]["model"] == "small-model" and records[0]["task"] == "auto"
    assert "capital of France" in records[0]["prompt"] and records[0]["response"] == "Paris"


def test_judge_samples_only_the_configured_share(fake, start_gateway):
    live = start_gateway(
        three_tier_config(
            fake,
            """
            quality:
              judge: {model: large-model, sample: 1.0}
              routes: {auto: {sample: 0}}
            """,
        )
    )
    fake.enqueue(Reply("x"))
    live.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    time.sleep(0.2)
    assert [e.endpoint for e in live.ledger.entries] == ["chat"]
    assert fake.calls == 1
