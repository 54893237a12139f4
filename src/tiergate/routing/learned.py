"""The `learned` strategy: a trained router predicts each candidate's answer quality and the
cheapest candidate within the route's tolerance of the best one wins.

Prediction is pure numpy over weights loaded at config load. The file is re-read by
`RouterWatcher` (a background task of the gateway) when it changes, so a retrained router
goes live without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tiergate.fleet import Model
from tiergate.learned import LearnedRouter, RouterFormatError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnedChoice:
    model: Model
    quality: float
    best_model: str
    best_quality: float


@dataclass
class LearnedStrategy:
    """A loaded router plus the route's tolerance (absolute quality points)."""

    router: LearnedRouter
    path: str
    tolerance: float
    reload_interval: float = 5.0

    def choose(
        self, prompt: str, candidates: Sequence[Model], f_out: int, f_in: int
    ) -> LearnedChoice | None:
        """The cheapest candidate within tolerance; None when the router knows none of them."""
        known = [m for m in candidates if m.name in self._known()]
        if not known:
            return None
        predicted = self.router.predict(prompt)
        costs = {m.name: m.estimate_cost(f_in, f_out) for m in known}
        name = self.router.choose(costs, self.tolerance, predicted=predicted)
        best = max(known, key=lambda m: predicted[m.name])
        chosen = next(m for m in known if m.name == name)
        return LearnedChoice(chosen, predicted[name], best.name, predicted[best.name])

    def _known(self) -> frozenset[str]:
        # The router may be swapped by a reload; its model list is read each time (cheap).
        return frozenset(self.router.models)


class RouterWatcher:
    """Reloads every route's learned-router file when it changes."""

    def __init__(self, strategies: Iterable[LearnedStrategy]):
        self.strategies = list(strategies)

    def check(self) -> int:
        """Reload changed files now; returns how many were reloaded. Never raises."""
        reloaded = 0
        for strategy in self.strategies:
            try:
                if strategy.router.reload_if_changed():
                    reloaded += 1
                    log.info("reloaded learned router %s", strategy.path)
            except (RouterFormatError, OSError) as exc:
                # The old router stays in service; a half-written file is retried next time.
                log.warning("learned router %s not reloaded: %s", strategy.path, exc)
        return reloaded

    async def run(self) -> None:
        """Check periodically until cancelled."""
        if not self.strategies:
            return
        interval = min(s.reload_interval for s in self.strategies)
        while True:
            await asyncio.sleep(interval)
            self.check()
