"""Outcome export: scores joined with ledger entries and recorded prompts."""

import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import three_tier_config
from tests.hardening.helpers import sqlite_gateway
from tiergate.cli.main import cli
from tiergate.fakes import Reply
from tiergate.ledger import DatabaseLedger, LedgerEntry
from tiergate.ledger.export import export_outcomes, scores_by_request
from tiergate.outcomes import OutcomeRecord, read_outcomes
from tiergate.store.db import Database, DatabaseURL
from tiergate.store.migrations import migrate


def _entry(request_id: str, **values: object) -> LedgerEntry:
    entry = LedgerEntry(
        request_id=request_id,
        ts=time.time() - 60,
        key_name="k",
        route="auto",
        strategy="rules",
        reasons="",
        model="small-model",
        tier="budget",
        deployment="small-model@upstream",
        input_tokens=100,
        output_tokens=20,
        cost_usd=0.001,
        latency_ms=120.0,
    )
    for name, value in values.items():
        setattr(entry, name, value)
    return entry


def _score(request_id: str, score: float, prompt: str = "", **values: object) -> OutcomeRecord:
    # what the quality monitor logs: feedback lines carry an empty prompt
    return OutcomeRecord(
        model="small-model", score=score, prompt=prompt, request_id=request_id, **values
    )


@pytest.fixture
async def db(tmp_path: Path):
    url = DatabaseURL.parse(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = DatabaseLedger(url)
    await ledger.start()
    ledger.record(_entry("fed", prompt="What is 2+2?"))
    ledger.record(_entry("judged", model="large-model", route="auto:hard"))
    ledger.record(_entry("twice", prompt="Hi there"))
    ledger.record(_entry("hit", prompt="Cached?", cache="hit", cost_usd=0.0, cache_saved_usd=0.004))
    ledger.record(_entry("failed", prompt="x", status=502, model=None))
    ledger.record(_entry("old", prompt="x", ts=time.time() - 7200))
    ledger.record(_entry("private"))  # its route does not record prompts
    ledger.record(_entry("judge-call", endpoint="judge", prompt="x"))
    await ledger.close()
    database = Database.connect(url)
    migrate(database)
    yield database
    database.close()


async def test_scores_join_the_ledger_and_the_recorded_prompts(db: Database) -> None:
    scores = [
        _score("fed", 1.0),
        _score("judged", 0.6, prompt="Prove it.", response="Proof."),
        _score("twice", 1.0),
        _score("twice", 0.5, response="Hello!"),
        _score("hit", 0.9),
        _score("failed", 1.0),
        _score("old", 1.0),
        _score("private", 1.0),
        _score("judge-call", 1.0),
        _score("unknown", 1.0),
        OutcomeRecord(model="small-model", score=1.0, prompt="no id"),
    ]
    records, stats = export_outcomes(db, scores_by_request(scores), since=time.time() - 3600)
    by_id = {r.request_id: r for r in records}
    assert set(by_id) == {"fed", "judged", "twice", "hit"}
    assert by_id["fed"] == OutcomeRecord(
        model="small-model",
        score=1.0,
        prompt="What is 2+2?",
        cost_usd=0.001,
        input_tokens=100,
        output_tokens=20,
        latency_ms=120.0,
        task="auto",
        request_id="fed",
    )
    judged = by_id["judged"]  # no stored prompt: the judge's copy is used
    assert (judged.prompt, judged.model, judged.task) == ("Prove it.", "large-model", "auto:hard")
    assert judged.response == "Proof."
    assert by_id["twice"].score == 0.75 and by_id["twice"].response == "Hello!"
    assert by_id["hit"].cost_usd == 0.004  # what the cached answer cost when it was made
    assert stats.as_json() == {"requests": 9, "exported": 4, "unanswered": 4, "no_prompt": 1}
    only_hard, _ = export_outcomes(db, scores_by_request(scores), only={"route": "auto:hard"})
    assert [r.request_id for r in only_hard] == ["judged"]
    with pytest.raises(ValueError, match="cannot filter"):
        export_outcomes(db, {}, only={"status; DROP TABLE x": "1"})


def test_production_traffic_round_trips_through_report(fake, tmp_path: Path) -> None:
    scores = tmp_path / "scores.jsonl"
    db_path = tmp_path / "ledger.db"
    config_text = three_tier_config(
        fake,
        f"""
        quality:
          outcomes_path: {scores}
        """,
    ).replace(
        "routes:\n",
        "routes:\n  auto:private:\n    strategy: rules\n",
        1,
    )
    config_text = config_text.replace(
        "    strategy: rules\n    fallback:",
        "    strategy: rules\n    record_prompts: true\n    fallback:",
    )
    fake.respond_with(lambda p: Reply(f"answer to {p.last_user_text}"))
    with sqlite_gateway(config_text, db_path) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="tg-test-key", max_retries=0)
        ids = {}
        for route, text in (("auto", "Summarise sk-live-abcdefghijklmnop please"),
                            ("auto", "What is 2+2?"), ("auto:private", "secret plans")):  # fmt: skip
            raw = client.chat.completions.with_raw_response.create(
                model=route, messages=[{"role": "user", "content": text}]
            )
            ids[text] = raw.headers["x-tiergate-request-id"]
        for text, body in (
            ("What is 2+2?", {"thumbs": "up"}),
            ("secret plans", {"score": 0.3}),
        ):
            r = httpx.post(
                f"{gw.url}/v1/feedback",
                headers={"authorization": "Bearer tg-test-key"},
                json={"request_id": ids[text], **body},
            )
            assert r.status_code == 200, r.text
    config = tmp_path / "tiergate.yaml"
    config.write_text(config_text + f"\nledger: {{url: 'sqlite:///{db_path}'}}\n")
    out = tmp_path / "outcomes.jsonl"
    result = CliRunner().invoke(
        cli, ["report", "--config", str(config), "--export-outcomes", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {
        "out": str(out),
        "requests": 2,
        "exported": 1,
        "unanswered": 0,
        "no_prompt": 1,
    }
    (record,) = read_outcomes(out)
    assert (record.prompt, record.model, record.score, record.task) == (
        "What is 2+2?",
        "small-model",
        1.0,
        "auto",
    )
    assert record.request_id == ids["What is 2+2?"] and record.cost_usd > 0
    # prompts are stored redacted, and only for the opted-in route
    database = Database.connect(DatabaseURL.parse(f"sqlite:///{db_path}"))
    stored = dict(database.query("SELECT request_id, prompt FROM {p}prompts"))
    database.close()
    assert ids["secret plans"] not in stored
    assert "sk-live" not in stored[ids["Summarise sk-live-abcdefghijklmnop please"]]


def test_export_without_scores_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "tiergate.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'l.db'}'}}\n")
    result = CliRunner().invoke(
        cli, ["report", "--config", str(config), "--export-outcomes", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 1
    assert "no scores to export" in result.output and "Traceback" not in result.output
