"""The suite file format: what is accepted, and errors that name the line and field."""

from pathlib import Path

import orjson
import pytest

from tiergate.evals.suite import (
    Contains,
    Exact,
    JsonSchema,
    Judge,
    RegexMatch,
    SuiteError,
    read_suite,
)


def _suite(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text(
        "\n".join(x if isinstance(x, str) else orjson.dumps(x).decode() for x in lines) + "\n"
    )
    return path


def _error(tmp_path: Path, *lines: object) -> SuiteError:
    with pytest.raises(SuiteError) as caught:
        read_suite(_suite(tmp_path, *lines))
    return caught.value


def test_every_grader_and_the_defaults(tmp_path: Path) -> None:
    cases = read_suite(
        _suite(
            tmp_path,
            {"prompt": "2+2?", "grader": {"type": "exact", "expected": "4"}},
            "",
            {
                "id": "c",
                "task": "colours",
                "prompt": "Colours?",
                "max_tokens": 20,
                "grader": {"type": "contains", "expected": ["red", "blue"], "case_sensitive": True},
            },
            {"prompt": "n?", "grader": {"type": "regex", "pattern": "^\\d+$", "ignore_case": True}},
            {
                "messages": [
                    {"role": "system", "content": "JSON only"},
                    {"role": "user", "content": "x"},
                ],
                "grader": {"type": "json_schema", "schema": {"type": "object"}},
            },
            {"prompt": "Why?", "reference": "Because.", "grader": {"type": "judge"}},
        )
    )
    first, second, third, fourth, fifth = cases
    assert (first.id, first.task, first.line, first.grader) == (
        "line 1",
        "default",
        1,
        Exact(("4",)),
    )
    assert second.id == "c" and second.task == "colours" and second.max_tokens == 20
    assert second.grader == Contains(("red", "blue"), case_sensitive=True)
    assert isinstance(third.grader, RegexMatch) and third.grader.pattern.search("42")
    assert isinstance(fourth.grader, JsonSchema)
    assert fourth.text == "JSON only\n\nx"
    assert fourth.request("m").messages[0].role == "system"
    assert fifth.grader == Judge(None) and fifth.reference == "Because."
    assert fifth.line == 6  # the blank line counts: numbers are what an editor shows
    request = second.request("small-model")
    assert request.model == "small-model" and request.max_tokens == 20


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ({"prompt": "x", "grader": {"type": "fuzzy"}}, "grader.type", "unknown grader 'fuzzy'"),
        ({"prompt": "x", "grader": {"type": "regex", "pattern": "("}}, "grader.pattern", "invalid"),
        (
            {"prompt": "x", "grader": {"type": "json_schema", "schema": {"type": "nope"}}},
            "grader.schema",
            "invalid JSON Schema",
        ),
        ({"prompt": "x", "grader": {"type": "exact"}}, "grader.expected", "is required"),
        ({"prompt": "x", "grader": {"type": "exact", "expected": [1]}}, "grader.expected", ""),
        (
            {"prompt": "x", "grader": {"type": "exact", "expected": "a", "pattern": "b"}},
            "grader.pattern",
            "unknown field for a exact grader",
        ),
        ({"prompt": "x"}, "grader", "is required"),
        ({"prompt": "x", "grader": "exact"}, "grader", "must be an object"),
        ({"grader": {"type": "judge"}}, "prompt", "exactly one"),
        (
            {"prompt": "x", "messages": [], "grader": {"type": "judge"}},
            "prompt",
            "exactly one",
        ),
        ({"prompt": "x", "expected": "y", "grader": {"type": "judge"}}, "expected", "unknown"),
        ({"prompt": "x", "max_tokens": 0, "grader": {"type": "judge"}}, "max_tokens", ">= 1"),
        ({"prompt": "x", "task": 3, "grader": {"type": "judge"}}, "task", "non-empty string"),
        (
            {"messages": [{"role": "robot", "content": "x"}], "grader": {"type": "judge"}},
            "messages",
            "not a valid OpenAI message list",
        ),
        ({"prompt": "x", "grader": {"type": "judge", "model": 5}}, "grader.model", "model name"),
    ],
)
def test_bad_lines_name_line_and_field(
    tmp_path: Path, line: dict[str, object], field: str, words: str
) -> None:
    good = {"prompt": "ok", "grader": {"type": "exact", "expected": "ok"}}
    error = _error(tmp_path, good, line)
    assert (error.line, error.field) == (2, field)
    assert str(error).startswith(f"{tmp_path / 'suite.jsonl'}:2: {field}: ")
    assert words in str(error)


def test_file_level_errors(tmp_path: Path) -> None:
    assert "not valid JSON" in str(_error(tmp_path, "{nope"))
    assert "must be a JSON object" in str(_error(tmp_path, "[1]"))
    assert "no cases" in str(_error(tmp_path, ""))
    dup = {"id": "a", "prompt": "x", "grader": {"type": "judge"}}
    error = _error(tmp_path, dup, dup)
    assert error.field == "id" and "first on line 1" in str(error)
    with pytest.raises(SuiteError, match="cannot read the file"):
        read_suite(tmp_path / "missing.jsonl")


def test_the_example_suite_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "eval-suite.jsonl"
    cases = read_suite(path)
    assert {c.task for c in cases} == {"facts", "math", "extraction", "explain"}
    kinds = {type(c.grader) for c in cases}
    assert kinds == {Exact, Contains, RegexMatch, JsonSchema, Judge}
