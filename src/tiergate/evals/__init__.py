"""Eval suites: run prompts through models, grade the answers, recommend routes.

`suite` (the file format), `graders` (exact, contains, regex, JSON schema), `judge` (the
LLM judge), `runner` (through the gateway's executor), `summary` (per model and task),
`recommend` (cheapest model within tolerance, as a config snippet) and `simulate`
(simulated models for offline runs).
"""

from tiergate.evals.recommend import Recommendation, check_snippet, recommend, routes_snippet
from tiergate.evals.runner import EvalResult, run_suite, write_results
from tiergate.evals.suite import SuiteCase, SuiteError, read_suite
from tiergate.evals.summary import Cell, summarize

__all__ = [
    "Cell",
    "EvalResult",
    "Recommendation",
    "SuiteCase",
    "SuiteError",
    "check_snippet",
    "read_suite",
    "recommend",
    "routes_snippet",
    "run_suite",
    "summarize",
    "write_results",
]
