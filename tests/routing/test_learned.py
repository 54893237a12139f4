"""The learned router as a decider and as a refiner of another strategy's tier."""

from __future__ import annotations

from tests.routing.conftest import ask, make_router
from tiergate.learned.artifact import save_artifact
from tiergate.learned.train import train_router
from tiergate.outcomes import OutcomeRecord


def _router(path) -> None:
    records = []
    for i in range(30):
        calc, chat = f"calculus homework number {i}", f"hello friend number {i}"
        records += [
            OutcomeRecord(model="small-model", score=1.0, prompt=calc),
            OutcomeRecord(model="cheap-out", score=0.0, prompt=calc),
            OutcomeRecord(model="small-model", score=1.0, prompt=chat),
            OutcomeRecord(model="cheap-out", score=1.0, prompt=chat),
        ]
    save_artifact(path, train_router(records)[0])


def test_learned_refines_the_model_within_the_tier_rules_chose(tmp_path):
    path = tmp_path / "r.router"
    _router(path)
    router = make_router(
        f"routes:\n  auto:\n    strategy: [rules, learned]\n"
        f"    learned: {{path: {path}, tolerance: 0.05}}\n"
    )
    # Without the learned router, cheap-out (cheaper output) would be first in budget.
    plain = make_router().decide(ask("calculus homework"))
    assert plain.model.name == "cheap-out"
    decision = router.decide(ask("calculus homework"))
    assert decision.strategy == "rules>learned" and decision.tier == "budget"
    assert decision.model.name == "small-model"
    assert decision.reasons[-1].startswith("learned: small-model predicted")
    # Where both are predicted good, the cheaper one stays first.
    assert router.decide(ask("hello friend")).model.name == "cheap-out"
