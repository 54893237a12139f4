"""What the routing strategies look at, computed once per request."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tiergate.chat import ChatRequest

_CODE = re.compile(r"```|^\s*(def|class|function|import|#include|public static|SELECT)\b", re.M)
_LENGTH_CUE = re.compile(
    r"\b(\d{1,2}(?:,\d{3})+|\d+)[ -]?(words?|pages?|paragraphs?|lines?)\b", re.IGNORECASE
)
_TOKENS_PER = {"word": 1.4, "page": 700.0, "paragraph": 120.0, "line": 12.0}


def estimate_tokens(text: str) -> int:
    """A fast, tokenizer-free estimate (~4 characters a token for English)."""
    return (len(text) + 3) // 4


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    text: str  # the last user turn (what the rules match against)
    prompt_tokens: int  # estimate for the whole conversation
    turns: int
    has_code: bool
    has_tools: bool
    has_images: bool
    wants_json: bool
    wants_json_schema: bool
    max_output_tokens: int | None
    expected_output_tokens: int


def expected_output_from_cues(text: str) -> int | None:
    """Output length asked for in words ("write a 2,000-word post"), in tokens."""
    best: int | None = None
    for match in _LENGTH_CUE.finditer(text):
        count = int(match.group(1).replace(",", ""))
        unit = match.group(2).lower().rstrip("s")
        tokens = int(count * _TOKENS_PER[unit])
        best = tokens if best is None else max(best, tokens)
    return best


def extract_features(request: ChatRequest) -> RequestFeatures:
    total_chars = 0
    last_user = ""
    turns = 0
    for message in request.messages:
        text = message.text()
        total_chars += len(text) + 8
        if message.role == "user":
            last_user = text
            turns += 1
        for call in message.tool_calls or ():
            total_chars += len(call.function.arguments) + len(call.function.name)
    if request.tools:
        total_chars += sum(len(str(t.function.parameters or "")) + 40 for t in request.tools)
    cue = expected_output_from_cues(last_user)
    limit = request.output_limit
    expected = cue or 300
    if limit is not None:
        expected = min(expected, limit)
    rf = request.response_format
    return RequestFeatures(
        text=last_user,
        prompt_tokens=(total_chars + 3) // 4,
        turns=turns,
        has_code=bool(_CODE.search(last_user)),
        has_tools=bool(request.tools),
        has_images=request.has_images(),
        wants_json=request.wants_json(),
        wants_json_schema=rf is not None and rf.type == "json_schema",
        max_output_tokens=limit,
        expected_output_tokens=expected,
    )
