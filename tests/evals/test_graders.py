"""The pure graders."""

import re

import pytest

from tiergate.evals.graders import grade
from tiergate.evals.suite import Contains, Exact, JsonSchema, Judge, RegexMatch


def test_exact_ignores_case_padding_and_a_full_stop() -> None:
    grader = Exact(("Paris", "City of Paris"))
    assert grade(grader, "  paris.\n") == 1.0
    assert grade(grader, "city  of\nparis") == 1.0
    assert grade(grader, "Paris, France") == 0.0
    assert grade(Exact(("Paris",), case_sensitive=True), "paris") == 0.0


def test_contains_scores_the_share_found() -> None:
    grader = Contains(("red", "green", "blue"))
    assert grade(grader, "Red, green and blue.") == 1.0
    assert grade(grader, "red and blue") == pytest.approx(2 / 3)
    assert grade(Contains(("Red",), case_sensitive=True), "red") == 0.0


def test_regex_searches_anywhere() -> None:
    assert grade(RegexMatch(re.compile(r"\b391\b")), "The answer is 391.") == 1.0
    assert grade(RegexMatch(re.compile(r"^391$")), "The answer is 391.") == 0.0


def test_json_schema_accepts_fenced_json_and_checks_it() -> None:
    schema = {"type": "object", "required": ["age"], "properties": {"age": {"type": "integer"}}}
    grader = JsonSchema(schema)
    assert grade(grader, '{"age": 36}') == 1.0
    assert grade(grader, '```json\n{"age": 36}\n```') == 1.0
    assert grade(grader, '{"age": "36"}') == 0.0
    assert grade(grader, "age: 36") == 0.0


def test_the_judge_is_not_a_pure_grader() -> None:
    with pytest.raises(TypeError, match="judge"):
        grade(Judge("large-model"), "x")
