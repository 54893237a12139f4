"""The `Decision`: what routing chose for one request, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tiergate.fleet import Model

Execution = Literal["direct", "cascade", "speculative"]


@dataclass(slots=True)
class Decision:
    """Route, strategy path, tier, ordered candidates, estimated cost and reasons."""

    route: str
    strategy: str  # the path taken, e.g. "rules" or "static>rules"
    tier: str
    candidates: tuple[Model, ...]  # in the order execution will try them
    reasons: list[str] = field(default_factory=list)
    estimated_cost_usd: float = 0.0
    baseline: Model | None = None
    prompt_tokens: int = 0
    expected_output_tokens: int = 0
    execution: Execution = "direct"
    # A strategy that needs I/O (the classifier) was reached without its input: the
    # caller runs it and decides again with the verdict in the context.
    pending: str | None = None

    @property
    def model(self) -> Model:
        """The model tried first."""
        return self.candidates[0]

    def summary(self) -> str:
        """One line for the `x-tiergate-reason` header (ASCII, no line breaks)."""
        text = "; ".join(self.reasons) or self.strategy
        text = text.replace("\u2192", "->").replace("\r", " ").replace("\n", " ")
        return text.encode("ascii", "replace").decode()[:300]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (for `tiergate route --json` and logs)."""
        return {
            "route": self.route,
            "strategy": self.strategy,
            "execution": self.execution,
            "tier": self.tier,
            "model": self.model.name,
            "candidates": [m.name for m in self.candidates],
            "estimated_cost_usd": round(self.estimated_cost_usd, 10),
            "baseline": self.baseline.name if self.baseline else None,
            "prompt_tokens": self.prompt_tokens,
            "expected_output_tokens": self.expected_output_tokens,
            "reasons": list(self.reasons),
            "pending": self.pending,
        }
