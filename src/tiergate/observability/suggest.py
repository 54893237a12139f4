"""Tier suggestions from quality evidence: which model should move up or down a tier.

Input is outcome records (judge scores written by the quality monitor, feedback joined
with the ledger, or `tiergate eval` output). A model whose average is as good as the tier
above it is underrated (moving it up lets that tier's traffic use a cheaper model); one
below the quality threshold, or no better than the tier below it, is overrated for its
tier. When records share prompts (an eval run), models are compared on the shared
prompts only, so hard and easy traffic do not blur the comparison.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tiergate.observability.jsonl import json_object


@dataclass(frozen=True, slots=True)
class Score:
    """One quality observation (the fields of an outcome record that matter here)."""

    model: str
    score: float
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class TierSuggestion:
    model: str
    tier: str
    suggested_tier: str
    direction: str  # "up" or "down"
    average: float
    samples: int
    evidence: str

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tier": self.tier,
            "suggested_tier": self.suggested_tier,
            "direction": self.direction,
            "average": round(self.average, 4),
            "samples": self.samples,
            "evidence": self.evidence,
        }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _compare(
    mine: dict[str | None, list[float]], theirs: dict[str | None, list[float]]
) -> tuple[float, float, int, str]:
    """(my mean, their mean, n, basis): on shared prompts when there are any."""
    shared = [p for p in mine if p is not None and p in theirs]
    if shared:
        a = [s for p in shared for s in mine[p]]
        b = [s for p in shared for s in theirs[p]]
        return _mean(a), _mean(b), len(shared), "on the same prompts"
    a = [s for scores in mine.values() for s in scores]
    b = [s for scores in theirs.values() for s in scores]
    return _mean(a), _mean(b), len(a), "on their own traffic"


def suggest_tier_changes(
    scores: Iterable[Score],
    tier_of: Mapping[str, str],
    tiers: tuple[str, ...] = ("budget", "standard", "premium"),
    *,
    threshold: float = 0.7,
    tolerance: float = 0.03,
    min_samples: int = 20,
) -> list[TierSuggestion]:
    """Models that should change tier, with the evidence; models with fewer than
    `min_samples` scores, or not in `tier_of`, are left alone."""
    by_model: dict[str, dict[str | None, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        if s.model in tier_of and tier_of[s.model] in tiers:
            by_model[s.model][s.prompt].append(s.score)

    def tier_scores(tier: str, exclude: str) -> dict[str | None, list[float]]:
        merged: dict[str | None, list[float]] = defaultdict(list)
        for model, per_prompt in by_model.items():
            if model != exclude and tier_of[model] == tier:
                for prompt, values in per_prompt.items():
                    merged[prompt].extend(values)
        return merged

    out: list[TierSuggestion] = []
    rising: set[str] = set()  # tiers that already send a model up: one change per pair
    for model, per_prompt in sorted(by_model.items(), key=lambda kv: tiers.index(tier_of[kv[0]])):
        n = sum(len(v) for v in per_prompt.values())
        if n < min_samples:
            continue
        tier = tier_of[model]
        rank = tiers.index(tier)
        average = _mean([s for v in per_prompt.values() for s in v])
        if rank + 1 < len(tiers):
            above = tier_scores(tiers[rank + 1], model)
            if above:
                mine, theirs, k, basis = _compare(per_prompt, above)
                if mine >= theirs - tolerance and mine >= threshold:
                    out.append(
                        TierSuggestion(
                            model, tier, tiers[rank + 1], "up", average, n,
                            f"scores {mine:.2f} vs {theirs:.2f} for {tiers[rank + 1]} models "
                            f"{basis} (n={k}): as good as the tier above",
                        )
                    )  # fmt: skip
                    rising.add(tier)
                    continue
        if rank > 0:
            if average < threshold:
                out.append(
                    TierSuggestion(
                        model, tier, tiers[rank - 1], "down", average, n,
                        f"averages {average:.2f} over {n} scores, below the {threshold:.2f} "
                        f"threshold for {tier}",
                    )
                )  # fmt: skip
                continue
            below = tier_scores(tiers[rank - 1], model)
            if below and tiers[rank - 1] not in rising:
                mine, theirs, k, basis = _compare(per_prompt, below)
                if mine <= theirs + tolerance:
                    out.append(
                        TierSuggestion(
                            model, tier, tiers[rank - 1], "down", average, n,
                            f"scores {mine:.2f} vs {theirs:.2f} for {tiers[rank - 1]} models "
                            f"{basis} (n={k}): no better than the cheaper tier",
                        )
                    )  # fmt: skip
    return out


def read_scores(path: str | Path) -> list[Score]:
    """Scores from an outcome-record file (JSON lines with model, score and a prompt)."""
    out = []
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            obj = json_object(line, str(path), number)
            model, score = obj.get("model"), obj.get("score")
            if not isinstance(model, str) or not isinstance(score, int | float):
                raise ValueError(f"{path}:{number}: an outcome record needs model and score")
            prompt = obj.get("prompt")
            if not isinstance(prompt, str) and obj.get("messages") is not None:
                prompt = orjson.dumps(obj["messages"]).decode()
            out.append(Score(model, float(score), prompt if isinstance(prompt, str) else None))
    return out


def suggest_report(config_path: str | None, outcomes_path: str | None, as_json: bool) -> None:
    """The `tiergate report --suggest` output: suggestions from an outcome file, with the
    tiers of the config's models (or the catalog's)."""
    import click

    from tiergate.catalog import load_catalog

    tier_of = {name: e.tier for name, e in load_catalog().entries.items()}
    tiers: tuple[str, ...] = ("budget", "standard", "premium")
    threshold = 0.7
    if config_path is not None:
        from tiergate.config.loader import build_fleet, load_config

        config = load_config(config_path)
        fleet = build_fleet(config)
        tier_of.update({name: m.tier for name, m in fleet.models.items()})
        tiers = fleet.tiers
        threshold = config.quality.threshold
        outcomes_path = outcomes_path or config.quality.outcomes_path
    if outcomes_path is None:
        raise click.UsageError("--suggest needs --outcomes FILE (or quality.outcomes_path)")
    try:
        suggestions = suggest_tier_changes(
            read_scores(outcomes_path), tier_of, tiers, threshold=threshold
        )
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        sys.stdout.write(orjson.dumps([s.to_json() for s in suggestions]).decode() + "\n")
        return
    if not suggestions:
        click.echo("No tier changes suggested: every model scores as its tier expects.")
        return
    for s in suggestions:
        arrow = "↑" if s.direction == "up" else "↓"
        click.echo(f"{arrow} move {s.model} from {s.tier} to {s.suggested_tier}: {s.evidence}")
