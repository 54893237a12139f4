"""Recommendations: cheapest within tolerance, and a snippet that fits the config."""

import yaml

from tests.conftest import three_tier_config
from tiergate.config.loader import build_fleet, parse_config
from tiergate.evals.recommend import check_snippet, recommend, route_name, routes_snippet
from tiergate.evals.summary import Cell, by_model


def _cell(task: str, model: str, scores: list[float], cost: float, errors: int = 0) -> Cell:
    return Cell(task, model, scores=scores, costs=[cost] * len(scores), errors=errors)


CELLS = [
    _cell("facts", "small-model", [1, 1, 1, 0.9], 0.001),
    _cell("facts", "medium-model", [1, 1, 1, 1], 0.01),
    _cell("facts", "large-model", [1, 1, 1, 1], 0.1),
    _cell("math", "small-model", [1, 0, 0, 1], 0.001),
    _cell("math", "medium-model", [1, 1, 0, 1], 0.01),
    _cell("math", "large-model", [1, 1, 1, 1], 0.1),
]


def test_the_cheapest_model_within_tolerance_wins() -> None:
    facts, math = recommend(CELLS, tolerance=0.05)
    assert (facts.task, facts.model, facts.best_model) == ("facts", "small-model", "medium-model")
    assert facts.quality == 0.975 and facts.models == ["small-model", "medium-model"]
    assert (math.model, math.models) == ("large-model", ["large-model", "medium-model"])
    # a looser tolerance lets the standard model take math
    assert recommend(CELLS, tolerance=0.25)[1].model == "medium-model"
    assert recommend(CELLS, tolerance=0.0)[0].model == "medium-model"


def test_unanswered_cases_count_against_a_model() -> None:
    cells = [
        _cell("t", "small-model", [1, 1], 0.001, errors=2),  # 1.0 answered, 0.5 effective
        _cell("t", "large-model", [1, 1, 1, 1], 0.1),
    ]
    (rec,) = recommend(cells, 0.05)
    assert rec.model == "large-model"
    assert cells[0].quality == 1.0 and cells[0].effective_quality == 0.5


def test_a_task_nobody_answered_gets_no_route() -> None:
    assert recommend([Cell("t", "small-model", errors=3)], 0.05) == []


def test_route_names_are_safe() -> None:
    assert route_name("Customer Support / FAQ") == "auto:customer-support-faq"
    assert route_name("???") == "auto:task"


def test_the_snippet_parses_and_fits_the_config(fake) -> None:
    config = parse_config(three_tier_config(fake))
    fleet = build_fleet(config)
    snippet = routes_snippet(recommend(CELLS, 0.05), 0.05)
    data = yaml.safe_load(snippet)
    assert data["routes"]["auto:facts"] == {
        "strategy": "static",
        "models": ["small-model", "medium-model"],
    }
    assert check_snippet(config, fleet, snippet) == []
    broken = snippet.replace("small-model", "tiny-model")
    assert any("unknown model 'tiny-model'" in p for p in check_snippet(config, fleet, broken))


def test_by_model_merges_tasks() -> None:
    small = next(c for c in by_model(CELLS) if c.model == "small-model")
    assert small.task == "all tasks" and small.answered == 8
    assert small.quality == (3.9 + 2) / 8
