"""The `static` strategy: a fixed tier or model list by route, endpoint, key or metadata tags."""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.fleet import Model
from tiergate.routing.context import RequestContext


@dataclass(frozen=True, slots=True)
class StaticRule:
    """Sends matching requests to a tier or to an explicit, ordered model list."""

    tier: str | None
    models: tuple[Model, ...] | None
    endpoint: str | None = None
    key: str | None = None
    tags: frozenset[str] | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    def match(self, ctx: RequestContext) -> str | None:
        """Why it matched ("key batch"), or None."""
        why: list[str] = []
        if self.endpoint is not None:
            if ctx.endpoint != self.endpoint:
                return None
            why.append(f"endpoint {self.endpoint}")
        if self.key is not None:
            if ctx.key_name != self.key:
                return None
            why.append(f"key {self.key}")
        if self.tags is not None:
            common = self.tags.intersection(ctx.tags)
            if not common:
                return None
            why.append(f"tags {sorted(common)}")
        if self.metadata:
            have = dict(ctx.metadata)
            if any(have.get(k) != v for k, v in self.metadata):
                return None
            why.append(", ".join(f"{k}={v}" for k, v in self.metadata))
        return ", ".join(why) or "always"

    def target(self) -> str:
        if self.models is not None:
            return "models " + ", ".join(m.name for m in self.models)
        return f"tier {self.tier}"
