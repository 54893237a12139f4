"""A key's allow-lists applied to a routing decision.

Each non-empty list is checked on its own:
- `routes`: what the request names in `model` (a route such as `auto:support`, a tier
  such as `tier:budget`, or a model name) must be listed;
- `models` / `tiers`: the decision's candidates are narrowed to the listed ones (fallback
  included), and a request that leaves none is refused.
"""

from __future__ import annotations

import dataclasses

from tiergate.auth.keys import KeyInfo
from tiergate.errors import PermissionDenied
from tiergate.routing.decision import Decision


def check_route(key: KeyInfo | None, route: str) -> None:
    """Raises `PermissionDenied` (403) when the key's `routes` list does not name `route`."""
    if key is not None and key.routes and route not in key.routes:
        raise PermissionDenied(
            f"key {key.name!r} may not use {route!r}; it may use {sorted(key.routes)}",
            param="model",
        )


def restrict(key: KeyInfo | None, decision: Decision) -> Decision:
    """The decision as this key may run it; raises `PermissionDenied` (403)."""
    if key is None or not (key.models or key.tiers or key.routes):
        return decision
    check_route(key, decision.route)
    allowed = tuple(
        m
        for m in decision.candidates
        if (not key.models or m.name in key.models) and (not key.tiers or m.tier in key.tiers)
    )
    if not allowed:
        raise PermissionDenied(
            f"key {key.name!r} may not use any model that can serve this request"
            f" (models {sorted(key.models) or 'any'}, tiers {sorted(key.tiers) or 'any'})",
            param="model",
        )
    if len(allowed) == len(decision.candidates):
        return decision
    return dataclasses.replace(
        decision,
        candidates=allowed,
        tier=allowed[0].tier,
        reasons=[*decision.reasons, f"key {key.name} allows {[m.name for m in allowed]}"],
        estimated_cost_usd=allowed[0].estimate_cost(
            decision.prompt_tokens, decision.expected_output_tokens
        ),
    )
