"""What the routing strategies look at, computed once per request.

Speed matters here: the whole `rules` decision for a 1,000-token prompt must take tens of
microseconds, and Python regular expressions scan only ~25-100 ns per character. So:
keywords and patterns are matched against the *instruction window* (the first
`HEAD_CHARS` and last `TAIL_CHARS` of the last user turn), where the task is stated; the
middle of a long prompt is usually pasted material whose vocabulary says little about
the task (a document that mentions "architecture" is not an architecture question).
Features that a rule table may never look at (language) are computed on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tiergate.chat import ChatRequest
from tiergate.routing.language import detect_language

HEAD_CHARS = 600
TAIL_CHARS = 300

# Code: a fence anywhere, or a line that starts like code. The pattern begins with a
# literal newline so that the regex engine can skip ahead with a fast literal search.
_CODE_LINE = re.compile(
    r"\n[ \t]*(?:def |class |function |import |from \S+ import |#include|public static |"
    r"select .+ from |const |let |fn |func |package |<\?php|\$ )"
)
_CODE_FIRST = re.compile(
    r"[ \t]*(?:def |class |function |import |#include|public static |select .+ from )"
)
_LENGTH_CUE = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)[ -]?(words?|pages?|paragraphs?|lines?)\b")
_TOKENS_PER = {"word": 1.4, "page": 700.0, "paragraph": 120.0, "line": 12.0}
DEFAULT_OUTPUT_TOKENS = 300
# Every ASCII and common Unicode punctuation mark becomes a space, so that `split()` (C
# speed) yields the window's words, as a regex `\w+` would but ten times faster.
_PUNCT_CHARS = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00bf\u00a1"
)
_PUNCTUATION = str.maketrans(_PUNCT_CHARS, " " * len(_PUNCT_CHARS))
# The same split for an ASCII window, on bytes: a 256-byte table is ~5x faster than
# `str.translate`. `str.split` also breaks at \x1c-\x1f and `bytes.split` does not, so the
# table turns those into spaces too; both then yield the same words.
_ASCII_BREAKS = "".join(c for c in _PUNCT_CHARS if c.isascii()) + "\x1c\x1d\x1e\x1f"
_ASCII_SPLIT = bytes.maketrans(_ASCII_BREAKS.encode(), b" " * len(_ASCII_BREAKS))


def estimate_tokens(text: str) -> int:
    """A fast, tokenizer-free estimate (~4 characters a token for English)."""
    return (len(text) + 3) // 4


def instruction_window(text: str) -> str:
    """The part of a prompt where the task is usually stated: its head and its tail."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


@dataclass(slots=True)
class RequestFeatures:
    """Request features for the strategies; `window` is lower-cased for keyword search."""

    text: str  # the last user turn
    window: str  # its instruction window, lower-cased
    prompt_tokens: int  # estimate for the whole conversation
    turns: int
    has_code: bool
    has_tools: bool
    has_images: bool
    wants_json: bool
    wants_json_schema: bool
    max_output_tokens: int | None
    expected_output_tokens: int
    output_cue: int | None = None  # output length asked for in words, in tokens
    _language: str | None = field(default=None, repr=False)
    _words: frozenset[str] | None = field(default=None, repr=False)

    @property
    def words(self) -> frozenset[str]:
        """The distinct words of the instruction window; computed on first use.

        Keyword rules do not use this: `Vocabulary.in_window` answers them more cheaply."""
        if self._words is None:
            self._words = frozenset(self.window.translate(_PUNCTUATION).split())
        return self._words

    @property
    def language(self) -> str:
        """ISO 639-1 code of the prompt's language ("" when unknown); computed on first use."""
        if self._language is None:
            self._language = detect_language(self.window)
        return self._language


_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The words a route's keyword rules look up, prepared at config load.

    `in_window` splits the window once and keeps only these words; building the window's
    whole word set (~150 strings hashed into a new set) would cost more than all the
    lookups together.
    """

    words: frozenset[str]
    ascii: dict[bytes, str]  # the ASCII words, encoded, for ASCII windows
    ascii_keys: frozenset[bytes]

    @classmethod
    def of(cls, words: Iterable[str]) -> Vocabulary:
        every = frozenset(words)
        encoded = {w.encode(): w for w in every if w.isascii()}
        return cls(every, encoded, frozenset(encoded))

    def in_window(self, window: str) -> frozenset[str]:
        """The vocabulary's words that are words of `window`: `words(window) & self.words`."""
        if not self.words:
            return _NONE
        if window.isascii():
            hits = self.ascii_keys.intersection(window.encode().translate(_ASCII_SPLIT).split())
            return frozenset([self.ascii[h] for h in hits]) if hits else _NONE
        return self.words.intersection(window.translate(_PUNCTUATION).split())


def expected_output_from_cues(window: str) -> int | None:
    """Output length asked for in words ("write a 2,000-word post"), in tokens."""
    # Most prompts ask for no length: cheap literal searches avoid the regex scan. A cue
    # needs a digit; in an ASCII window that can only be 0-9, each found by one `memchr`
    # (a search for a longer word is several times slower).
    if window.isascii() and not _has_ascii_digit(window):
        return None
    if not ("word" in window or "page" in window or "paragraph" in window or "line" in window):
        return None
    best: int | None = None
    for match in _LENGTH_CUE.finditer(window):
        count = int(match.group(1).replace(",", ""))
        unit = match.group(2).rstrip("s")
        tokens = int(count * _TOKENS_PER[unit])
        best = tokens if best is None else max(best, tokens)
    return best


def _has_ascii_digit(text: str) -> bool:
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def _looks_like_code(text: str) -> bool:
    # A one-character search (`memchr`) first: most prompts have no backtick at all.
    return (
        ("`" in text and "```" in text)
        or _CODE_LINE.search(text) is not None
        or bool(_CODE_FIRST.match(text))
    )


def extract_features(request: ChatRequest) -> RequestFeatures:
    """Features of one request: one pass over the messages, bounded work on long prompts."""
    total_chars = 0
    last_user = ""
    turns = 0
    has_images = False
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            text = content
        else:
            text = message.text()
            has_images = has_images or message.has_image()
        total_chars += len(text) + 8
        if message.role == "user":
            last_user = text
            turns += 1
        if message.tool_calls:
            for call in message.tool_calls:
                total_chars += len(call.function.arguments) + len(call.function.name)
    if request.tools:
        total_chars += sum(len(str(t.function.parameters or "")) + 40 for t in request.tools)
    window = instruction_window(last_user).lower()
    cue = expected_output_from_cues(window)
    limit = request.output_limit
    expected = cue or DEFAULT_OUTPUT_TOKENS
    if limit is not None:
        expected = min(expected, limit) if cue else limit
    rf = request.response_format
    return RequestFeatures(
        text=last_user,
        window=window,
        prompt_tokens=(total_chars + 3) // 4,
        turns=turns,
        has_code=_looks_like_code(window),
        has_tools=bool(request.tools),
        has_images=has_images,
        wants_json=rf is not None and rf.type != "text",
        wants_json_schema=rf is not None and rf.type == "json_schema",
        max_output_tokens=limit,
        expected_output_tokens=expected,
        output_cue=cue,
    )
