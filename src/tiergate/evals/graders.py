"""The pure graders: an answer and a grader in, a score in 0..1 out. No I/O.

The ``judge`` grader asks a model and lives in :mod:`tiergate.evals.judge`.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson

from tiergate.evals.suite import Contains, Exact, Grader, JsonSchema, Judge, RegexMatch

__all__ = ["grade"]

_SPACE = re.compile(r"\s+")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def grade(grader: Grader, answer: str) -> float:
    """Score ``answer`` with a pure grader; a :class:`Judge` must go through the judge."""
    if isinstance(grader, Exact):
        got = _normal(answer, grader.case_sensitive)
        return float(any(got == _normal(e, grader.case_sensitive) for e in grader.expected))
    if isinstance(grader, Contains):
        haystack = answer if grader.case_sensitive else answer.casefold()
        found = sum(
            (e if grader.case_sensitive else e.casefold()) in haystack for e in grader.expected
        )
        return found / len(grader.expected)
    if isinstance(grader, RegexMatch):
        return float(grader.pattern.search(answer) is not None)
    if isinstance(grader, JsonSchema):
        return float(_valid_json(answer, grader.schema))
    if isinstance(grader, Judge):
        raise TypeError("the judge grader needs a model call: use tiergate.evals.judge")
    raise TypeError(f"unknown grader {grader!r}")


def _normal(text: str, case_sensitive: bool) -> str:
    # Models pad short answers with whitespace or a full stop; neither changes the answer.
    text = _SPACE.sub(" ", text.strip()).removesuffix(".").strip()
    return text if case_sensitive else text.casefold()


def _valid_json(answer: str, schema: Any) -> bool:
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced is not None:
        # Models often fence JSON even when asked not to; the content is what counts.
        text = fenced.group(1).strip()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    validator = jsonschema.validators.validator_for(schema)(schema)
    return bool(validator.is_valid(data))
