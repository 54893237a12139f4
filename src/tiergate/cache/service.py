"""The response cache as the ingress sees it: look up before the call, remember after.

Scope: every entry belongs to one tenant (the virtual key's name; `-` without a key), so
one tenant's answer is never served to another. Per route (`routes.X.cache`): on/off,
TTL, whether `temperature > 0` may be cached (an unset temperature is the provider's
default, 1.0, so only `temperature: 0` requests are cached unless the route allows),
and the opt-in semantic cache. Requests naming a model or a tier follow route `auto`.
Only complete answers are remembered: errors, cut-off streams and content-filtered
answers never are.
"""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.cache.entry import CachedAnswer, decode_answer, digest, encode_answer, request_shape
from tiergate.cache.semantic import SemanticIndex, Vector, eligible, embed, prompt_text
from tiergate.cache.store import CacheBackend
from tiergate.chat import ChatRequest, ChatResponse
from tiergate.config.schema import RouteCacheConfig
from tiergate.routing.decision import Decision

_CACHEABLE_FINISH = ("stop", "length", "tool_calls")
_DEFAULT = RouteCacheConfig()


@dataclass(slots=True, eq=False)
class Lookup:
    """The outcome of a lookup, and what `remember` needs to store the answer."""

    status: str  # "hit" | "miss" | "bypass"
    answer: CachedAnswer | None = None
    semantic: bool = False
    key: str | None = None
    policy: RouteCacheConfig | None = None
    scope: str | None = None
    vector: Vector | None = None


BYPASS = Lookup("bypass")  # the client asked not to use the cache
UNCACHEABLE = Lookup("miss")  # not served from the cache, and not stored either


class ResponseCache:
    def __init__(self, backend: CacheBackend, policies: dict[str, RouteCacheConfig]):
        self.backend = backend
        self.policies = policies
        self.semantic = SemanticIndex()

    def policy(self, route: str) -> RouteCacheConfig:
        return self.policies.get(route) or self.policies.get("auto") or _DEFAULT

    async def lookup(
        self, tenant: str | None, chat: ChatRequest, decision: Decision, *, bypass: bool
    ) -> Lookup:
        if bypass:
            return BYPASS
        policy = self.policy(decision.route)
        if not policy.enabled:
            return UNCACHEABLE
        # Unset means the provider's default, 1.0 for OpenAI: a sampled answer, not cached.
        if (chat.temperature is None or chat.temperature > 0) and not policy.allow_temperature:
            return UNCACHEABLE
        owner = tenant or "-"
        key = digest(owner, request_shape(chat))
        found = await self.backend.get(key)
        if found is not None:
            return Lookup("hit", decode_answer(found), key=key, policy=policy)
        lookup = Lookup("miss", key=key, policy=policy)
        sem = policy.semantic
        if sem is not None and eligible(chat, multi_turn=sem.multi_turn, tools=sem.tools):
            lookup.scope = digest(owner, request_shape(chat, with_messages=False))
            lookup.vector = embed(prompt_text(chat))
            match = self.semantic.find(lookup.scope, lookup.vector, sem.threshold)
            if match is not None:
                lookup.status, lookup.semantic = "hit", True
                lookup.answer = decode_answer(match[1])
        return lookup

    async def remember(
        self,
        lookup: Lookup,
        request_id: str,
        response: ChatResponse,
        *,
        model: str,
        tier: str,
        deployment: str,
        cost_usd: float,
    ) -> None:
        """Store a complete answer after a miss (no-op for hits, bypasses, bad answers)."""
        if lookup.key is None or lookup.policy is None or lookup.status != "miss":
            return
        if not response.choices or response.finish_reason not in _CACHEABLE_FINISH:
            return
        answer = CachedAnswer(request_id, response, model, tier, deployment, cost_usd)
        data = encode_answer(answer)
        await self.backend.put(lookup.key, data, lookup.policy.ttl)
        sem = lookup.policy.semantic
        if sem is not None and lookup.scope is not None and lookup.vector is not None:
            self.semantic.add(
                lookup.scope, lookup.vector, request_id, data, lookup.policy.ttl, sem.max_entries
            )

    async def close(self) -> None:
        await self.backend.close()
