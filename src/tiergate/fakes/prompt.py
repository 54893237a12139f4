"""The protocol-neutral view of a request that a fake upstream received."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

WireProtocol = Literal["openai", "anthropic", "gemini"]
"""The three upstream wire protocols a fake speaks."""

ANY_TOOL = "*"
"""``Prompt.forced_tool`` value when the request requires some tool, not a named one."""


class BadRequest(Exception):
    """The request is invalid for its protocol; answered with 400 in its format."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the request offered: its name and JSON schema for the arguments."""

    name: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prompt:
    """What the fake needs to know about a chat request, whatever its protocol."""

    protocol: WireProtocol
    model: str
    last_user_text: str
    prompt_chars: int
    message_count: int
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    json_mode: bool = False
    json_schema: Mapping[str, Any] | None = None
    tools: tuple[ToolSpec, ...] = ()
    forced_tool: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int:
        """Estimated prompt tokens: about four characters each, plus a few per message."""
        return max(1, (self.prompt_chars + 3) // 4 + 3 * self.message_count)


MEDIA_CHARS = 3000
"""Prompt characters an image / audio / document part counts for (about 750 tokens)."""
_MEDIA_KEYS = frozenset(
    {
        "image_url",
        "input_audio",
        "image",
        "document",
        "file",
        "inlineData",
        "inline_data",
        "fileData",
        "file_data",
    }
)


def media_chars(content: Any) -> int:
    """Characters to count for the media parts of a content list (any protocol)."""
    if not isinstance(content, list):
        return 0
    count = 0
    for part in content:
        if isinstance(part, Mapping) and (
            part.get("type") in _MEDIA_KEYS or not _MEDIA_KEYS.isdisjoint(part.keys())
        ):
            count += 1
    return count * MEDIA_CHARS


def text_of(content: Any) -> str:
    """The text in a message content: a string or a list of typed blocks / parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces: list[str] = []
        for block in content:
            if isinstance(block, str):
                pieces.append(block)
            elif isinstance(block, Mapping):
                text = block.get("text")
                if isinstance(text, str):
                    pieces.append(text)
                elif block.get("type") == "tool_result":
                    pieces.append(text_of(block.get("content")))
        return "\n".join(pieces)
    return ""


def int_or_none(value: Any, param: str) -> int | None:
    """An optional positive integer field, or :class:`BadRequest`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{param}: must be a positive integer", param)
    return value


def stops_of(value: Any) -> tuple[str, ...]:
    """Stop sequences given as a string or a list of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(s for s in value if isinstance(s, str) and s)
    return ()
