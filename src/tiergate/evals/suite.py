"""Eval suites: one JSON object a line, each a prompt, an optional task and a grader.

A suite line::

    {"id": "capital-fr", "task": "geography",
     "prompt": "What is the capital of France? One word.",
     "grader": {"type": "exact", "expected": "Paris"}}

Fields (unknown fields are errors, so a typo cannot silently change an eval):

- ``prompt`` (string) or ``messages`` (an OpenAI message list): exactly one.
- ``task`` (string, default ``"default"``): the row of the results table and the unit the
  routing recommendation is made for.
- ``id`` (string, default ``"line N"``): names the case in errors and outputs.
- ``max_tokens`` (integer ≥ 1): the answer's limit.
- ``reference`` (string): a reference answer; the judge sees it, and the ``--fake``
  simulated models answer with it when they answer well.
- ``grader`` (object, required), by ``type``:

  - ``exact``: ``expected`` (string or list of accepted strings), ``case_sensitive``
    (default false). Whitespace at the ends, inner runs of whitespace and a final
    ``.`` do not count. Score 1 or 0.
  - ``contains``: ``expected`` (string or list), ``case_sensitive`` (default false).
    Score: the share of the expected strings the answer contains.
  - ``regex``: ``pattern`` (Python ``re`` syntax, searched anywhere in the answer),
    ``ignore_case`` (default false). Score 1 or 0.
  - ``json_schema``: ``schema`` (a JSON Schema). The answer (code fences allowed) must
    parse as JSON and match. Score 1 or 0.
  - ``judge``: ``model`` (a configured model; default: ``--judge``), ``rubric`` (what
    a good answer is). The judge model replies with a score in 0..1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import orjson

from tiergate.chat import ChatRequest, Message, convert_chat_request
from tiergate.outcomes import messages_to_prompt

__all__ = [
    "Contains",
    "Exact",
    "Grader",
    "JsonSchema",
    "Judge",
    "RegexMatch",
    "SuiteCase",
    "SuiteError",
    "read_suite",
]

DEFAULT_TASK = "default"
_CASE_FIELDS = frozenset({"id", "task", "prompt", "messages", "max_tokens", "reference", "grader"})


class SuiteError(ValueError):
    """A suite file is malformed; names the file, line and field."""

    def __init__(self, message: str, *, path: str = "", line: int = 0, field: str = "") -> None:
        where = ":".join(part for part in (path, str(line) if line else "") if part)
        text = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {text}" if where else text)
        self.path = path
        self.line = line
        self.field = field


@dataclass(frozen=True, slots=True)
class Exact:
    """The answer equals one of ``expected`` (normalised)."""

    expected: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True, slots=True)
class Contains:
    """The answer contains each of ``expected``; the score is the share found."""

    expected: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True, slots=True)
class RegexMatch:
    """The answer matches ``pattern`` somewhere."""

    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class JsonSchema:
    """The answer is JSON valid against ``schema``."""

    schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Judge:
    """A judge model scores the answer against ``rubric``; ``model`` None means ``--judge``."""

    model: str | None
    rubric: str | None = None


Grader = Exact | Contains | RegexMatch | JsonSchema | Judge
GRADER_TYPES = ("exact", "contains", "regex", "json_schema", "judge")


@dataclass(frozen=True, slots=True)
class SuiteCase:
    """One prompt of a suite and how to grade its answers."""

    id: str
    task: str
    line: int
    grader: Grader
    prompt: str | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    max_tokens: int | None = None
    reference: str | None = None

    @property
    def text(self) -> str:
        """The prompt as plain text (what the judge and the learned router read)."""
        if self.prompt is not None:
            return self.prompt
        return messages_to_prompt(self.messages or ())

    def request(self, model: str) -> ChatRequest:
        """The chat request that asks ``model`` this case."""
        if self.prompt is not None:
            return ChatRequest(
                model=model,
                messages=[Message(role="user", content=self.prompt)],
                max_tokens=self.max_tokens,
            )
        data: dict[str, Any] = {"model": model, "messages": [dict(m) for m in self.messages or ()]}
        if self.max_tokens is not None:
            data["max_tokens"] = self.max_tokens
        return convert_chat_request(data)


def read_suite(path: str | Path) -> list[SuiteCase]:
    """Read and validate a suite; :class:`SuiteError` names the first bad line and field."""
    name = str(path)
    try:
        raw_lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise SuiteError(f"cannot read the file: {exc.strerror}", path=name) from None
    cases: list[SuiteCase] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SuiteError(f"not valid JSON ({exc})", path=name, line=number) from None
        if not isinstance(obj, dict):
            raise SuiteError("each line must be a JSON object", path=name, line=number)
        case = _case(obj, _Where(name, number))
        if case.id in seen:
            raise SuiteError(
                f"duplicate id {case.id!r} (first on line {seen[case.id]})",
                path=name,
                line=number,
                field="id",
            )
        seen[case.id] = number
        cases.append(case)
    if not cases:
        raise SuiteError("no cases in the suite", path=name)
    return cases


@dataclass(frozen=True, slots=True)
class _Where:
    path: str
    line: int

    def fail(self, field: str, message: str) -> SuiteError:
        return SuiteError(message, path=self.path, line=self.line, field=field)


def _case(obj: Mapping[str, Any], at: _Where) -> SuiteCase:
    unknown = sorted(set(obj) - _CASE_FIELDS)
    if unknown:
        raise at.fail(unknown[0], f"unknown field (known: {', '.join(sorted(_CASE_FIELDS))})")
    prompt, messages = obj.get("prompt"), obj.get("messages")
    if (prompt is None) == (messages is None):
        raise at.fail("prompt", "give exactly one of 'prompt' (a string) and 'messages' (a list)")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise at.fail("prompt", "must be a non-empty string")
    checked_messages = _messages(messages, at) if messages is not None else None
    case_id = _optional_text(obj, "id", at) or f"line {at.line}"
    task = _optional_text(obj, "task", at) or DEFAULT_TASK
    reference = _optional_text(obj, "reference", at)
    max_tokens = obj.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise at.fail("max_tokens", f"must be an integer >= 1, got {max_tokens!r}")
    if "grader" not in obj:
        raise at.fail("grader", f"is required: an object with a type ({', '.join(GRADER_TYPES)})")
    return SuiteCase(
        id=case_id,
        task=task,
        line=at.line,
        grader=_grader(obj["grader"], at),
        prompt=prompt,
        messages=checked_messages,
        max_tokens=max_tokens,
        reference=reference,
    )


def _optional_text(obj: Mapping[str, Any], field: str, at: _Where) -> str | None:
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise at.fail(field, f"must be a non-empty string, got {value!r}")
    return value


def _messages(messages: Any, at: _Where) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(messages, list) or not messages:
        raise at.fail("messages", "must be a non-empty list of message objects")
    try:
        # The gateway's own request type checks roles and content parts.
        convert_chat_request({"model": "eval", "messages": messages})
    except msgspec.ValidationError as exc:
        raise at.fail("messages", f"not a valid OpenAI message list: {exc}") from None
    return tuple(messages)


def _strings(spec: Mapping[str, Any], field: str, at: _Where) -> tuple[str, ...]:
    value = spec.get("expected")
    values: Sequence[Any] = [value] if isinstance(value, str) else value or []
    if not isinstance(values, list | tuple | str) or not values:
        raise at.fail(field, "is required: a string or a non-empty list of strings")
    if not all(isinstance(v, str) and v for v in values):
        raise at.fail(field, "must hold only non-empty strings")
    return tuple(values)


def _flag(spec: Mapping[str, Any], name: str, at: _Where) -> bool:
    value = spec.get(name, False)
    if not isinstance(value, bool):
        raise at.fail(f"grader.{name}", f"must be true or false, got {value!r}")
    return value


_GRADER_FIELDS = {
    "exact": {"expected", "case_sensitive"},
    "contains": {"expected", "case_sensitive"},
    "regex": {"pattern", "ignore_case"},
    "json_schema": {"schema"},
    "judge": {"model", "rubric"},
}


def _grader(spec: Any, at: _Where) -> Grader:
    if not isinstance(spec, dict):
        raise at.fail("grader", f"must be an object with a type ({', '.join(GRADER_TYPES)})")
    kind = spec.get("type")
    if kind not in _GRADER_FIELDS:
        raise at.fail("grader.type", f"unknown grader {kind!r} (known: {', '.join(GRADER_TYPES)})")
    unknown = sorted(set(spec) - _GRADER_FIELDS[kind] - {"type"})
    if unknown:
        known = ", ".join(sorted(_GRADER_FIELDS[kind]))
        raise at.fail(f"grader.{unknown[0]}", f"unknown field for a {kind} grader (known: {known})")
    if kind in ("exact", "contains"):
        expected = _strings(spec, "grader.expected", at)
        case_sensitive = _flag(spec, "case_sensitive", at)
        if kind == "exact":
            return Exact(expected, case_sensitive)
        return Contains(expected, case_sensitive)
    if kind == "regex":
        pattern = spec.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise at.fail("grader.pattern", "is required: a regular expression")
        flags = re.IGNORECASE if _flag(spec, "ignore_case", at) else 0
        try:
            return RegexMatch(re.compile(pattern, flags))
        except re.error as exc:
            raise at.fail("grader.pattern", f"invalid regular expression: {exc}") from None
    if kind == "json_schema":
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise at.fail("grader.schema", "is required: a JSON Schema object")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise at.fail(
                "grader.schema", f"invalid JSON Schema at {where}: {exc.message}"
            ) from None
        return JsonSchema(schema)
    model, rubric = spec.get("model"), spec.get("rubric")
    if model is not None and (not isinstance(model, str) or not model):
        raise at.fail("grader.model", "must be a model name")
    if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
        raise at.fail("grader.rubric", "must be a non-empty string")
    return Judge(model, rubric)
