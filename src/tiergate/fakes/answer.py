"""Turn a request and a scripted :class:`Reply` into the concrete answer to render.

Everything here is pure and deterministic: the same request gives the same answer,
token counts and stream chunks, whatever the protocol.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate.fakes.prompt import ANY_TOOL, Prompt
from tiergate.fakes.script import Finish, Reply, ToolCall

_TOKENS_DIRECTIVE = re.compile(r"\[fake:tokens=(\d{1,6})\]")
_WORDS = re.compile(r"\s*\S+")
_FILLER = ("the", "model", "answers", "with", "care", "and", "some", "detail", "about", "it")
_ECHO_LIMIT = 300


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A tool call with its arguments both as JSON text and as an object.

    ``given_id`` is the scripted id; otherwise each protocol makes one from
    ``suffix`` with its own prefix (``call_``, ``toolu_``).
    """

    given_id: str | None
    suffix: str
    name: str
    arguments: str
    args: Any

    def id_with(self, prefix: str) -> str:
        """The call id, in the protocol's own style unless one was scripted."""
        return self.given_id or prefix + self.suffix


@dataclass(frozen=True, slots=True)
class Plan:
    """The concrete answer, ready for a protocol to render."""

    serial: int
    model: str
    text: str
    chunks: tuple[str, ...]
    tool_calls: tuple[PlannedCall, ...]
    finish: Finish
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int = 0
    chunk_delay: float = 0.0
    delay_headers: float = 0.0
    prompt_blocked: bool = False


def estimate_tokens(text: str) -> int:
    """About four characters per token, at least one for non-empty text."""
    return (len(text) + 3) // 4


def plan(prompt: Prompt, reply: Reply, serial: int) -> Plan:
    """Resolve ``reply`` (its ``None`` fields: defaults derived from ``prompt``)."""
    stop_sequence: str | None = None
    finish: Finish | None = reply.finish
    calls = tuple(_planned(call, serial, i) for i, call in enumerate(reply.tool_calls))
    if reply.text is not None or calls:
        text = reply.text or ""
    elif reply.prompt_blocked:
        text = ""
    elif prompt.forced_tool is not None and prompt.tools:
        text, calls = "", (_default_call(prompt, serial),)
    else:
        text = _default_text(prompt, reply.length, reply.stream_chunks)
        text, stop_sequence = _apply_stops(text, prompt.stop)
        if stop_sequence is not None:
            finish = finish or "stop_sequence"
        if prompt.max_tokens is not None and estimate_tokens(text) > prompt.max_tokens:
            text = text[: prompt.max_tokens * 4]
            finish = finish or "length"
    if finish == "stop_sequence" and stop_sequence is None and prompt.stop:
        stop_sequence = prompt.stop[0]
    if finish is None:
        finish = "content_filter" if reply.prompt_blocked else "tool_calls" if calls else "stop"
    output_tokens = reply.output_tokens
    if output_tokens is None:
        output_tokens = estimate_tokens(text) + sum(
            estimate_tokens(c.name + c.arguments) + 3 for c in calls
        )
        output_tokens = max(1, output_tokens) if not reply.prompt_blocked else 0
    input_tokens = reply.input_tokens if reply.input_tokens is not None else prompt.prompt_tokens
    return Plan(
        serial=serial,
        model=reply.model or prompt.model,
        text=text,
        chunks=split_text(text, reply.stream_chunks),
        tool_calls=calls,
        finish=finish,
        stop_sequence=stop_sequence,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=min(reply.cached_tokens, input_tokens),
        cache_write_tokens=max(
            0, min(reply.cache_write_tokens, input_tokens - reply.cached_tokens)
        ),
        chunk_delay=reply.chunk_delay,
        delay_headers=reply.delay_headers,
        prompt_blocked=reply.prompt_blocked,
    )


def split_text(text: str, parts: int | None) -> tuple[str, ...]:
    """Stream deltas: ``parts`` near-equal slices, or one delta per word."""
    if not text:
        return ()
    if parts is None:
        return tuple(_WORDS.findall(text)) or (text,)
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    out: list[str] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return tuple(out)


def fragments(text: str, size: int = 16) -> tuple[str, ...]:
    """Split tool-call argument JSON into stream fragments of ``size`` characters."""
    return tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",)


def example_of(schema: Any, hint: str = "echo") -> Any:
    """A small value that satisfies a (simple) JSON schema."""
    if not isinstance(schema, Mapping):
        return hint
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_of(options[0], hint)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        kind = kind.lower()  # Gemini's Schema spells types in capitals
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {name: example_of(sub, hint) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems", 1)
        item = example_of(schema.get("items"), hint)
        return [item] * (count if isinstance(count, int) and count > 0 else 1)
    if kind == "integer":
        minimum = schema.get("minimum")
        return minimum if isinstance(minimum, int) else 1
    if kind == "number":
        minimum = schema.get("minimum")
        return minimum if isinstance(minimum, int | float) else 1.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint


def _default_text(prompt: Prompt, length: int | None, min_words: int | None) -> str:
    user = " ".join(prompt.last_user_text.split())
    directive = _TOKENS_DIRECTIVE.search(user)
    if directive:
        length = int(directive.group(1))
    if prompt.json_mode:
        hint = user[:80] or "echo"
        value = example_of(prompt.json_schema, hint) if prompt.json_schema else {"echo": hint}
        return orjson.dumps(value).decode()
    text = "echo: " + user[:_ECHO_LIMIT] if user else "echo"
    target_chars = length * 4 if length else 0
    pieces, chars, count = [text], len(text), text.count(" ") + 1
    filler = _filler_words(user)
    while chars < target_chars or (min_words is not None and count < min_words):
        word = filler[count % len(filler)]
        pieces.append(word)
        chars += len(word) + 1
        count += 1
    text = " ".join(pieces)
    return text[:target_chars] if target_chars else text


def _filler_words(user: str) -> tuple[str, ...]:
    words = tuple(w for w in _TOKENS_DIRECTIVE.sub("", user).split() if w)
    return words[:50] or _FILLER


def _apply_stops(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for stop in stops:
        at = text.find(stop)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, stop)
    if best is None:
        return text, None
    return text[: best[0]], best[1]


def _planned(call: ToolCall, serial: int, index: int) -> PlannedCall:
    suffix = f"fake{serial:012d}{index:04d}"
    if isinstance(call.arguments, str):
        try:
            args: Any = orjson.loads(call.arguments)
        except orjson.JSONDecodeError:
            args = {}  # deliberately invalid JSON arguments stay verbatim for OpenAI
        return PlannedCall(call.id, suffix, call.name, call.arguments, args)
    args = dict(call.arguments or {})
    return PlannedCall(call.id, suffix, call.name, orjson.dumps(args).decode(), args)


def _default_call(prompt: Prompt, serial: int) -> PlannedCall:
    tool = prompt.tools[0]
    if prompt.forced_tool != ANY_TOOL:
        tool = next((t for t in prompt.tools if t.name == prompt.forced_tool), tool)
    args = example_of(tool.parameters, prompt.last_user_text[:40] or "echo")
    if not isinstance(args, dict):
        args = {}
    return _planned(ToolCall(tool.name, args), serial, 0)
