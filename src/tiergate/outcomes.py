"""Outcome records: one JSON object a line per (prompt, model) observation.

The same format comes out of ``tiergate eval``, out of the ledger joined with
feedback, and goes into ``tiergate router train``::

    {"prompt": "...", "model": "gpt-4o", "score": 1.0}

Required: ``prompt`` (a string) or ``messages`` (an OpenAI message list),
``model`` and ``score`` (0..1, higher is better). Optional: ``cost_usd``,
``input_tokens``, ``output_tokens``, ``latency_ms``, ``response``, ``task``,
``request_id``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "OutcomeFormatError",
    "OutcomeRecord",
    "messages_to_prompt",
    "read_outcomes",
    "read_prompts",
    "write_outcomes",
]

_NUMBER_FIELDS = ("cost_usd", "latency_ms")
_COUNT_FIELDS = ("input_tokens", "output_tokens")
_TEXT_FIELDS = ("response", "task", "request_id")


class OutcomeFormatError(ValueError):
    """An outcome or prompt file is malformed; names the file, line and field."""

    def __init__(self, message: str, *, path: str = "", line: int = 0, field: str = "") -> None:
        where = ":".join(part for part in (path, str(line) if line else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line
        self.field = field


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One observation: how well ``model`` answered one prompt.

    Exactly one of ``prompt`` and ``messages`` is set; :attr:`text` gives the
    prompt text the learned router reads either way.
    """

    model: str
    score: float
    prompt: str | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    response: str | None = None
    task: str | None = None
    request_id: str | None = None

    @property
    def text(self) -> str:
        """The prompt as plain text (``messages`` flattened by :func:`messages_to_prompt`)."""
        if self.prompt is not None:
            return self.prompt
        return messages_to_prompt(self.messages or ())

    def to_json(self) -> dict[str, Any]:
        """The wire form: only the fields that are set."""
        out: dict[str, Any] = {}
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.messages is not None:
            out["messages"] = [dict(m) for m in self.messages]
        out["model"] = self.model
        out["score"] = self.score
        for name in (*_NUMBER_FIELDS, *_COUNT_FIELDS, *_TEXT_FIELDS):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def messages_to_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """Flatten an OpenAI message list into the text the router's features read.

    Every message's text content is kept in order (system, user, assistant and
    tool turns alike) and joined by blank lines; image and audio parts are
    dropped because the router only reads text. The gateway must call this same
    function on a chat request so that training and routing see the same text.
    """
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            if content:
                parts.append(content)
        elif isinstance(content, list):
            texts = [
                str(part.get("text", ""))
                for part in content
                if isinstance(part, Mapping) and part.get("type") == "text"
            ]
            joined = "\n".join(t for t in texts if t)
            if joined:
                parts.append(joined)
    return "\n\n".join(parts)


def read_outcomes(path: str | Path) -> list[OutcomeRecord]:
    """Read and validate an outcome file; :class:`OutcomeFormatError` names the first bad line."""
    name = str(path)
    records = [
        _record_from_json(obj, path=name, line=line) for line, obj in _json_lines(Path(path))
    ]
    if not records:
        raise OutcomeFormatError("no outcome records in the file", path=name)
    return records


def write_outcomes(path: str | Path, records: Iterable[OutcomeRecord]) -> None:
    """Write records as JSON lines (UTF-8, one object a line)."""
    with Path(path).open("wb") as out:
        for record in records:
            out.write(orjson.dumps(record.to_json()))
            out.write(b"\n")


def read_prompts(path: str | Path) -> list[str]:
    """Read the prompts of a prompt file, first occurrence order, duplicates dropped.

    Each line is an outcome record or just ``{"prompt": ...}`` /
    ``{"messages": [...]}``; an outcome file lists each prompt once per model,
    hence the de-duplication.
    """
    name = str(path)
    seen: dict[str, None] = {}
    for line, obj in _json_lines(Path(path)):
        seen.setdefault(_prompt_text(obj, path=name, line=line), None)
    if not seen:
        raise OutcomeFormatError("no prompts in the file", path=name)
    return list(seen)


def _json_lines(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    name = str(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise OutcomeFormatError(f"cannot read the file: {exc.strerror}", path=name) from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise OutcomeFormatError(f"not valid JSON ({exc})", path=name, line=number) from exc
            if not isinstance(obj, dict):
                raise OutcomeFormatError("each line must be a JSON object", path=name, line=number)
            yield number, obj


def _prompt_text(obj: Mapping[str, Any], *, path: str, line: int) -> str:
    prompt = obj.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise OutcomeFormatError(
                "'prompt' must be a string", path=path, line=line, field="prompt"
            )
        return prompt
    return messages_to_prompt(_messages(obj, path=path, line=line))


def _messages(obj: Mapping[str, Any], *, path: str, line: int) -> tuple[Mapping[str, Any], ...]:
    messages = obj.get("messages")
    if messages is None:
        raise OutcomeFormatError(
            "needs 'prompt' (a string) or 'messages' (a list)", path=path, line=line, field="prompt"
        )
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise OutcomeFormatError(
            "'messages' must be a list of message objects", path=path, line=line, field="messages"
        )
    return tuple(messages)


def _record_from_json(obj: Mapping[str, Any], *, path: str, line: int) -> OutcomeRecord:
    def fail(field: str, message: str) -> OutcomeFormatError:
        return OutcomeFormatError(f"'{field}' {message}", path=path, line=line, field=field)

    prompt = obj.get("prompt")
    messages: tuple[Mapping[str, Any], ...] | None = None
    if prompt is None:
        messages = _messages(obj, path=path, line=line)
    elif not isinstance(prompt, str):
        raise fail("prompt", "must be a string")

    model = obj.get("model")
    if not isinstance(model, str) or not model:
        raise fail("model", "is required and must be a non-empty string")

    score = obj.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise fail("score", f"is required and must be a number in 0..1, got {score!r}")
    if not 0.0 <= score <= 1.0:
        raise fail("score", f"must be in 0..1, got {score!r}")

    optional: dict[str, Any] = {}
    for name in _NUMBER_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise fail(name, f"must be a number, got {value!r}")
        if value < 0:
            raise fail(name, f"must not be negative, got {value!r}")
        optional[name] = float(value)
    for name in _COUNT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(name, f"must be a non-negative integer, got {value!r}")
        optional[name] = value
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise fail(name, f"must be a string, got {type(value).__name__}")
        optional[name] = value

    return OutcomeRecord(
        model=model, score=float(score), prompt=prompt, messages=messages, **optional
    )
