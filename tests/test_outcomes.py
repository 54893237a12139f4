"""Outcome records: reading, writing, validation errors that name line and field."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tiergate.outcomes import (
    OutcomeFormatError,
    OutcomeRecord,
    messages_to_prompt,
    read_outcomes,
    read_prompts,
    write_outcomes,
)


def write_lines(path: Path, *objects: object) -> Path:
    path.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in objects))
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    records = [
        OutcomeRecord(model="a", score=1.0, prompt="hi"),
        OutcomeRecord(
            model="b",
            score=0.25,
            messages=({"role": "user", "content": "hello"},),
            cost_usd=0.002,
            input_tokens=10,
            output_tokens=3,
            latency_ms=120.5,
            response="hey",
            task="greet",
            request_id="r1",
        ),
    ]
    path = tmp_path / "o.jsonl"
    write_outcomes(path, records)
    assert read_outcomes(path) == records


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_text('{"prompt": "p", "model": "m", "score": 0}\n\n')
    assert [r.score for r in read_outcomes(path)] == [0.0]


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ({"model": "m", "score": 1}, "prompt", "'prompt'"),
        ({"prompt": 3, "model": "m", "score": 1}, "prompt", "must be a string"),
        ({"prompt": "p", "score": 1}, "model", "'model' is required"),
        ({"prompt": "p", "model": "m"}, "score", "'score' is required"),
        ({"prompt": "p", "model": "m", "score": 1.5}, "score", "must be in 0..1, got 1.5"),
        ({"prompt": "p", "model": "m", "score": -0.1}, "score", "must be in 0..1"),
        ({"prompt": "p", "model": "m", "score": True}, "score", "must be a number"),
        ({"prompt": "p", "model": "m", "score": 1, "cost_usd": "1"}, "cost_usd", "number"),
        ({"prompt": "p", "model": "m", "score": 1, "input_tokens": 1.5}, "input_tokens", "integer"),
        ({"prompt": "p", "model": "m", "score": 1, "task": 3}, "task", "string"),
        ({"messages": "hi", "model": "m", "score": 1}, "messages", "list of message objects"),
    ],
)
def test_errors_name_line_and_field(tmp_path: Path, line: dict, field: str, words: str) -> None:
    path = write_lines(tmp_path / "o.jsonl", {"prompt": "ok", "model": "m", "score": 1}, line)
    with pytest.raises(OutcomeFormatError) as info:
        read_outcomes(path)
    assert info.value.line == 2
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith(f"{path}:2: ")


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_text('{"prompt": "p", "model": "m", "score": 1}\n{oops\n')
    with pytest.raises(OutcomeFormatError, match=r":2: not valid JSON"):
        read_outcomes(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(OutcomeFormatError, match="no outcome records"):
        read_outcomes(tmp_path / "empty.jsonl")
    with pytest.raises(OutcomeFormatError, match="cannot read"):
        read_outcomes(tmp_path / "missing.jsonl")
    with pytest.raises(OutcomeFormatError, match="no prompts"):
        read_prompts(tmp_path / "empty.jsonl")


def test_messages_become_prompt_text() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
    ]
    assert messages_to_prompt(messages) == "Be brief.\n\nWhat is\n\n2+2?"
    record = OutcomeRecord(model="m", score=1.0, messages=tuple(messages))
    assert record.text == messages_to_prompt(messages)


def test_read_prompts_dedupes_outcome_files(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "p.jsonl",
        {"prompt": "one", "model": "a", "score": 1},
        {"prompt": "one", "model": "b", "score": 0},
        {"prompt": "two"},
        {"messages": [{"role": "user", "content": "three"}]},
    )
    assert read_prompts(path) == ["one", "two", "three"]
