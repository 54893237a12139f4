"""The semantic cache: answer a prompt with the answer to a very similar earlier prompt.

Embeddings are local and need no network or model download: hashed character 3-grams
(the "hashing trick") in 512 signed buckets, L2-normalised, so the dot product is the
cosine similarity. This catches rephrasings that differ in spacing, case, punctuation or
a few words; it does not understand synonyms. That is the cautious choice for a cache:
a false match serves a wrong answer, a missed match only costs one upstream call. Set the
threshold per route (`routes.X.cache.semantic.threshold`, default 0.92).

The index lives in each process (per tenant and request shape, bounded, with the route's
TTL); with several instances each one learns its own entries.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tiergate.chat import ChatRequest

DIM = 512
_SPACE = re.compile(r"\s+")
Vector = npt.NDArray[np.float32]


def embed(text: str, dim: int = DIM) -> Vector:
    """Hashed, signed character 3-grams of the normalised text, L2-normalised."""
    norm = " " + _SPACE.sub(" ", text.lower()).strip() + " "
    vec = np.zeros(dim, dtype=np.float32)
    if len(norm) < 3:
        return vec
    hashes = np.fromiter(
        (zlib.crc32(norm[i : i + 3].encode("utf-8")) for i in range(len(norm) - 2)),
        dtype=np.uint32,
        count=len(norm) - 2,
    )
    signs = np.where(hashes & 0x80000000, -1.0, 1.0).astype(np.float32)
    np.add.at(vec, (hashes % dim).astype(np.intp), signs)
    n = float(np.linalg.norm(vec))
    return vec / n if n > 0 else vec


def prompt_text(chat: ChatRequest) -> str:
    """What is compared: every message's role and text, in order."""
    return "\n".join(f"{m.role}: {m.text()}" for m in chat.messages)


def eligible(chat: ChatRequest, *, multi_turn: bool, tools: bool) -> bool:
    """Single-turn (system/developer messages plus one user message) and no tools, unless
    the route allows those: a conversation's answer depends on turns the text barely shows."""
    if not tools and (chat.tools or any(m.tool_calls or m.role == "tool" for m in chat.messages)):
        return False
    if chat.has_images():
        return False
    if not multi_turn:
        turns = [m for m in chat.messages if m.role not in ("system", "developer")]
        if len(turns) != 1:
            return False
    return True


@dataclass
class _Shelf:
    """A bounded ring of (vector, answer) for one tenant and request shape."""

    size: int
    vectors: Vector = field(init=False)
    answers: list[tuple[float, str, bytes] | None] = field(init=False)  # (expires, id, answer)
    next: int = 0

    def __post_init__(self) -> None:
        self.vectors = np.zeros((self.size, DIM), dtype=np.float32)
        self.answers = [None] * self.size


class SemanticIndex:
    """Nearest earlier prompt per scope (tenant + everything but the messages)."""

    def __init__(self) -> None:
        self._shelves: dict[str, _Shelf] = {}

    def find(self, scope: str, vector: Vector, threshold: float) -> tuple[str, bytes] | None:
        """(matched request id, cached answer) of the most similar live entry, if any."""
        shelf = self._shelves.get(scope)
        if shelf is None:
            return None
        filled = min(shelf.next, shelf.size)  # score only the rows in use
        scores = shelf.vectors[:filled] @ vector
        now = time.monotonic()
        for i in np.argsort(scores)[::-1][:4]:
            if scores[i] < threshold:
                return None
            item = shelf.answers[int(i)]
            if item is not None and item[0] > now:
                return item[1], item[2]
        return None

    def add(
        self, scope: str, vector: Vector, request_id: str, answer: bytes, ttl: float, size: int
    ) -> None:
        shelf = self._shelves.get(scope)
        if shelf is None or shelf.size != size:
            shelf = self._shelves[scope] = _Shelf(size)
        slot = shelf.next % shelf.size
        shelf.vectors[slot] = vector
        shelf.answers[slot] = (time.monotonic() + ttl, request_id, answer)
        shelf.next += 1
