"""One eval run end to end: the config, a `Gateway` built from it (optionally against the
simulated models of ``--fake``), the checks that every named model exists, the run."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tiergate.config.schema import Config
from tiergate.errors import ConfigError
from tiergate.evals.runner import EvalResult, run_suite
from tiergate.evals.suite import Judge, SuiteCase
from tiergate.fleet import Fleet
from tiergate.gateway import Gateway
from tiergate.ledger import MemoryLedger

if TYPE_CHECKING:
    from tiergate.fakes import FakeUpstream

__all__ = ["FAKE_URL_ENV", "EvalRun", "EvalSetupError", "judge_models", "run_eval"]

# With --fake, the config's `${TIERGATE_FAKE_URL}` expands to the simulated upstream.
FAKE_URL_ENV = "TIERGATE_FAKE_URL"


class EvalSetupError(Exception):
    """The run cannot start: a config problem, an unknown model; lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class EvalRun:
    """What a run produced, and the config and fleet it ran against."""

    results: list[EvalResult]
    config: Config
    fleet: Fleet


def judge_models(
    cases: Sequence[SuiteCase], default: str | None, fleet: Fleet, suite_path: str
) -> tuple[set[str], list[str]]:
    """The judge models the suite needs, and the problems (line and field named)."""
    needed: set[str] = set()
    problems: list[str] = []
    for case in cases:
        if not isinstance(case.grader, Judge):
            continue
        name = case.grader.model or default
        where = f"{suite_path}:{case.line}: grader.model"
        if name is None:
            problems.append(f"{where}: no judge model: give grader.model or --judge MODEL")
        elif name not in fleet.models:
            problems.append(f"{where}: unknown model {name!r} (configured: {_names(fleet)})")
        else:
            needed.add(name)
    return needed, problems


def _names(fleet: Fleet) -> str:
    return ", ".join(sorted(fleet.models)) or "none"


async def run_eval(
    config_path: str | None,
    suite_path: str,
    cases: Sequence[SuiteCase],
    models: Sequence[str],
    *,
    fake: bool = False,
    concurrency: int = 8,
    retries: int = 2,
    judge: str | None = None,
    on_done: Callable[[EvalResult], None] | None = None,
) -> EvalRun:
    """Run ``cases`` on ``models``; raises :class:`EvalSetupError` before any model call
    when the config or a model name is wrong."""
    async with _upstream(fake) as simulated:
        env = dict(os.environ)
        if simulated is not None:
            env[FAKE_URL_ENV] = simulated.url
        config = _config(config_path, env)
        try:
            gateway = Gateway.from_config(config, ledger=MemoryLedger())
        except ConfigError as exc:
            raise EvalSetupError(exc.problems) from None
        fleet = gateway.fleet
        problems = [
            f"--models: unknown model {m!r} (configured: {_names(fleet)})"
            for m in models
            if m not in fleet.models
        ]
        if simulated is not None:
            # --fake promises no network and no spend: a real provider must not slip in.
            problems += [
                f"--fake: provider {p.name!r} is not simulated: its base_url must start "
                f"with ${{{FAKE_URL_ENV}}} (it is {p.base_url})"
                for p in fleet.providers.values()
                if p.base_url.rstrip("/") != simulated.url
                and not p.base_url.startswith(simulated.url + "/")
            ]
        judges, judge_problems = judge_models(cases, judge, fleet, suite_path)
        if problems or judge_problems:
            raise EvalSetupError(problems + judge_problems)
        if simulated is not None:
            from tiergate.evals.simulate import SimulatedModels, skills_by_tier

            skills = skills_by_tier(fleet, sorted({*models, *judges}))
            simulated.respond_with(SimulatedModels(cases, skills))
        await gateway.start()
        try:
            results = await run_suite(
                gateway.router,
                gateway.executor,
                cases,
                models,
                concurrency=concurrency,
                retries=retries,
                judge_model=judge,
                on_done=on_done,
            )
        finally:
            await gateway.close()
    return EvalRun(results, config, fleet)


def _config(path: str | None, env: dict[str, str]) -> Config:
    from tiergate.config.loader import load_config

    if path is None:
        from tiergate.cli.env_config import config_from_env

        return config_from_env(env)
    try:
        return load_config(path, env)
    except ConfigError as exc:
        raise EvalSetupError([f"{path}: {p}" for p in exc.problems]) from None
    except OSError as exc:
        raise EvalSetupError([f"{path}: cannot read the config: {exc.strerror}"]) from None


@contextlib.asynccontextmanager
async def _upstream(fake: bool) -> AsyncIterator[FakeUpstream | None]:
    if not fake:
        yield None
        return
    from tiergate.fakes import FakeUpstream

    async with FakeUpstream() as upstream:
        yield upstream
