"""The `Decision`: what routing chose for one request, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from tiergate.fleet import Model


@dataclass(slots=True)
class Decision:
    route: str
    strategy: str  # the path taken, e.g. "rules" or "static>rules"
    tier: str
    candidates: tuple[Model, ...]  # in the order execution will try them
    reasons: list[str] = field(default_factory=list)
    estimated_cost_usd: float = 0.0
    baseline: Model | None = None
    prompt_tokens: int = 0
    expected_output_tokens: int = 0

    @property
    def model(self) -> Model:
        return self.candidates[0]

    def summary(self) -> str:
        """One line for the `x-tiergate-reason` header (ASCII, no line breaks)."""
        text = "; ".join(self.reasons) or self.strategy
        return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")[:300]
