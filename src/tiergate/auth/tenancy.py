"""Per-tenant admission: allow-lists, rate limits and budgets, and settling afterwards.

The ingress calls `admit` once the routing decision exists (before the cache, so cache
hits count against the request rate), `reserve` once it knows the upstream will be
called, and `Gateway.book` calls `settle` with the finished request's ledger entry,
which carries the real cost (sub-calls included) and tokens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from tiergate.auth.budget import BudgetBackend, Limit, Reservation, period_start, to_nano
from tiergate.auth.keys import KeyInfo
from tiergate.auth.permissions import check_route, restrict
from tiergate.auth.ratelimit import RateLimitBackend
from tiergate.config.schema import BudgetConfig
from tiergate.ledger import LedgerEntry
from tiergate.routing.decision import Decision

log = logging.getLogger("tiergate.tenancy")

# A reservation not settled after this long belongs to a request that died without being
# booked (a bug); it is released so that it cannot hold a budget hostage for ever.
_STALE_AFTER = 3600.0


class Tenancy:
    """Admission and settlement for every request of one gateway process."""

    def __init__(
        self,
        budgets: BudgetBackend,
        limits: RateLimitBackend,
        route_budgets: dict[str, BudgetConfig] | None = None,
    ):
        self.budgets = budgets
        self.limits = limits
        self.route_budgets = route_budgets or {}
        self._open: dict[str, tuple[KeyInfo | None, Reservation | None, int]] = {}
        self._admitted = 0

    def _limits(self, key: KeyInfo | None, route: str) -> list[Limit]:
        out: list[Limit] = []
        if key is not None and key.budget_usd is not None:
            out.append(Limit("key", key.name, key.budget_usd, key.period or "month"))
        budget = self.route_budgets.get(route)
        if budget is not None:
            out.append(Limit("route", route, budget.usd, budget.period))
        return out

    async def admit(self, request_id: str, key: KeyInfo | None, decision: Decision) -> Decision:
        """Allow-lists (403) and rate limits (429); the decision narrowed to the key."""
        decision = restrict(key, decision)
        if request_id not in self._open:  # `precheck` may have counted it already
            await self._rate_limit(request_id, key, decision)
        return decision

    async def _rate_limit(self, request_id: str, key: KeyInfo | None, decision: Decision) -> None:
        if key is not None and (key.rpm is not None or key.tpm is not None):
            await self.limits.admit(key, decision.prompt_tokens, time.time())
            self._open[request_id] = (key, None, decision.prompt_tokens)

    async def precheck(self, request_id: str, key: KeyInfo | None, decision: Decision) -> None:
        """Before a model call made ahead of admission (the classifier's): a route the key
        may not use (403), a rate limit reached or a budget already spent (429) must not
        cost that call. The rate limit counts the request here, once."""
        check_route(key, decision.route)
        await self._rate_limit(request_id, key, decision)
        limits = self._limits(key, decision.route)
        if limits:
            # A zero reservation is a probe: it raises when a budget has nothing left.
            self.budgets.settle(await self.budgets.reserve(limits, 0, time.time()), 0)

    async def reserve(
        self,
        request_id: str,
        key: KeyInfo | None,
        decision: Decision,
        bound_usd: Callable[[], float],
    ) -> None:
        """Hold the most the request can cost (`bound_usd()`, asked only when a budget
        applies: `Strategies.cost_bound_usd`) against its budgets; 429 when one is spent."""
        limits = self._limits(key, decision.route)
        if not limits:
            return
        self._admitted += 1
        if self._admitted % 1024 == 0:
            self._release_stale()
        reservation = await self.budgets.reserve(limits, to_nano(bound_usd()), time.time())
        prompt = self._open.get(request_id, (None, None, 0))[2]
        self._open[request_id] = (key, reservation, prompt)

    def settle(self, entry: LedgerEntry) -> None:
        """Book the finished request's real cost and tokens against what it reserved."""
        held = self._open.pop(entry.request_id, None)
        if held is None:
            return
        key, reservation, prompt_estimate = held
        if reservation is not None:
            self.budgets.settle(reservation, to_nano(entry.total_cost_usd))
        if key is not None and key.tpm is not None and entry.cache != "hit":
            used = entry.input_tokens + entry.output_tokens
            self.limits.charge(key, used - prompt_estimate, time.time())

    def _release_stale(self) -> None:
        cutoff = time.monotonic() - _STALE_AFTER
        for request_id, (_, reservation, _) in list(self._open.items()):
            if reservation is not None and reservation.created < cutoff:
                log.error("releasing budget held by request %s, never booked", request_id)
                del self._open[request_id]
                self.budgets.settle(reservation, 0)

    def budget_slots(self, keys: Iterable[KeyInfo], now: float) -> list[tuple[Limit, float]]:
        """Every budget this process enforces, with the start of its current period."""
        limits = [
            Limit("key", k.name, k.budget_usd, k.period or "month")
            for k in keys
            if k.budget_usd is not None
        ]
        limits += [Limit("route", r, b.usd, b.period) for r, b in self.route_budgets.items()]
        return [(limit, period_start(limit.period, now)) for limit in limits]

    async def close(self) -> None:
        await asyncio.gather(self.budgets.close(), self.limits.close())
