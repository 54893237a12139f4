"""Running the demo: fake providers, a real gateway on a real socket, the workload replayed
through `model="auto"` with the official OpenAI SDK, and the bill."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import openai
import uvicorn

from tiergate.config.loader import parse_config
from tiergate.demo.providers import SimulatedProviders
from tiergate.demo.workload import (
    ASSISTANT_ROUTE,
    CHAT_ROUTE,
    HARD_CHAT,
    LEGAL,
    LIVE_CHAT,
    OPEN_QUESTIONS,
    SUPPORT_ROUTE,
    DemoRequest,
    build_workload,
)
from tiergate.fakes import FakeUpstream
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import free_port
from tiergate.ledger import LedgerEntry, MemoryLedger

DEMO_KEY = "tg-demo-key"
DEMO_ADMIN_KEY = "tg-demo-admin"
FLAGSHIP = "gpt-5.4"

_CONFIG = """
providers:  # local simulations: no proxy from the environment applies (`direct`)
  openai-sim:    {{kind: openai,    base_url: "{openai}", api_key: sk-demo, proxy: direct}}
  openai-sim-eu: {{kind: openai,    base_url: "{openai}", api_key: sk-demo, proxy: direct}}
  anthropic-sim: {{kind: anthropic, base_url: "{anthropic}", api_key: sk-demo, proxy: direct}}
  gemini-sim:    {{kind: gemini,    base_url: "{gemini}", api_key: sk-demo, proxy: direct}}
models:
  gpt-5-nano:
    deployments: [{{provider: openai-sim}}, {{provider: openai-sim-eu}}]
  gpt-5.4: {{provider: openai-sim}}
{extra_models}
routes:
  auto:
    strategy: rules
    baseline: {flagship}
    fallback: {{retries: 1, backoff_base: 0.05, backoff_max: 0.3, retry_after_cap: 1}}
    policies:
      domains:
        legal: {{min_tier: premium, blocked_models: [{legal_blocked}]}}
  {support}:
    strategy: [rules, cascade]
    baseline: {flagship}
    fallback: {{retries: 1, backoff_base: 0.05, backoff_max: 0.3, retry_after_cap: 1}}
  {assistant}:
    strategy: classifier
    classifier: {{model: gpt-5-nano, timeout: 1.5}}
    baseline: {flagship}
    fallback: {{retries: 1, backoff_base: 0.05, backoff_max: 0.3, retry_after_cap: 1}}
  {chat}:
    strategy: [rules, speculative]
    speculative: {{deadline_ms: 1500}}
    baseline: {flagship}
    fallback: {{retries: 1, backoff_base: 0.05, backoff_max: 0.3, retry_after_cap: 1}}
keys:
  - {{name: demo, key: {key}}}
use_catalog: false
observability: {{request_log: "off", admin_key: {admin_key}}}
"""
# Each protocol is the cheapest choice somewhere, so the demo exercises all three.
_ANTHROPIC_MODELS = """
  claude-haiku-4-5: {provider: anthropic-sim}
  claude-sonnet-4-6: {provider: anthropic-sim}
"""
_GEMINI_MODELS = """
  gemini-2.0-flash: {provider: gemini-sim}
  gemini-3.1-pro: {provider: gemini-sim}
"""
_OPENAI_STANDARD = """
  gpt-5-mini:
    deployments: [{provider: openai-sim}, {provider: openai-sim-eu}]
"""


@dataclass
class DemoResult:
    entries: list[LedgerEntry]
    kinds: dict[str, str]  # request id -> kind
    protocols: dict[str, str]  # model -> provider kind
    failed_requests: int
    seconds: float
    flagship: str
    tiers: tuple[str, ...] = ()  # cheapest first


def demo_config_text(fake: FakeUpstream, adapters: set[str]) -> str:
    extra = ""
    if "anthropic" in adapters:
        extra += _ANTHROPIC_MODELS
    else:
        extra += _OPENAI_STANDARD
    if "gemini" in adapters:
        extra += _GEMINI_MODELS
    return _CONFIG.format(
        openai=fake.base_url("openai"),
        anthropic=fake.base_url("anthropic"),
        gemini=fake.base_url("gemini"),
        extra_models=extra,
        # A model that invents case law never answers a legal question.
        legal_blocked="gemini-3.1-pro" if "gemini" in adapters else "",
        flagship=FLAGSHIP,
        support=SUPPORT_ROUTE,
        assistant=ASSISTANT_ROUTE,
        chat=CHAT_ROUTE,
        key=DEMO_KEY,
        admin_key=DEMO_ADMIN_KEY,
    )


async def _send(
    client: openai.AsyncOpenAI, item: DemoRequest
) -> tuple[str | None, BaseException | None]:
    try:
        if item.stream:
            async with client.chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
                model=item.route,
                messages=item.messages,
                stream=True,
                stream_options={"include_usage": True},
                **item.params,
            ) as response:
                async for _ in response.iter_lines():
                    pass
                return response.headers.get("x-tiergate-request-id"), None
        raw = await client.chat.completions.with_raw_response.create(
            model=item.route,
            messages=item.messages,  # type: ignore[arg-type]
            **item.params,
        )
        return raw.headers.get("x-tiergate-request-id"), None
    except openai.APIStatusError as exc:
        return exc.response.headers.get("x-tiergate-request-id"), exc
    except openai.APIError as exc:
        return None, exc


async def run_demo(
    *,
    size: int = 210,
    concurrency: int = 24,
    on_progress: object = None,
    serve_after: bool = False,
    port: int | None = None,
) -> DemoResult:
    """Run the whole product offline and return what the ledger booked."""
    workload = build_workload(size)
    from tiergate.providers import builtin_adapters

    adapters = set(builtin_adapters())
    fake = FakeUpstream(api_key="sk-demo")
    await fake.start()
    ledger = MemoryLedger()
    gateway = Gateway.from_config(parse_config(demo_config_text(fake, adapters)), ledger=ledger)
    tiers = {d.upstream_model: m.tier for m in gateway.fleet.models.values() for d in m.deployments}
    answer_tokens = {_last_user(item): item.output_tokens for item in workload}
    hedge_prompts = frozenset(_last_user(i) for i in workload if i.route == SUPPORT_ROUTE)
    fake.respond_with(
        SimulatedProviders(
            answer_tokens,
            tiers,
            hedge_prompts=hedge_prompts,
            labels=OPEN_QUESTIONS,
            hard_prompts=HARD_CHAT,
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(gateway),
            host="127.0.0.1",
            port=port or free_port(),
            log_level="error",
            access_log=False,
            lifespan="on",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{server.config.port}"
    # The gateway is on this machine: an HTTP_PROXY in the environment must not apply.
    client = openai.AsyncOpenAI(
        base_url=f"{base}/v1",
        api_key=DEMO_KEY,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
    )
    kinds: dict[str, str] = {}
    failed = 0
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()

    async def one(item: DemoRequest) -> None:
        nonlocal failed
        async with semaphore:
            request_id, error = await _send(client, item)
        if request_id:
            kinds[request_id] = item.kind
        if error is not None:
            failed += 1
        if callable(on_progress):
            on_progress()

    try:
        await asyncio.gather(*(one(item) for item in workload))
        seconds = time.perf_counter() - started
        if serve_after:
            print(f"Dashboard: {base}/dashboard  (admin key {DEMO_ADMIN_KEY}; Ctrl-C to stop)")
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    finally:
        await client.close()
        server.should_exit = True
        await serving
        await fake.stop()
    protocols: dict[str, str] = {
        m.name: m.deployments[0].provider.kind for m in gateway.fleet.models.values()
    }
    return DemoResult(
        list(ledger.entries), kinds, protocols, failed, seconds, FLAGSHIP, gateway.fleet.tiers
    )


def _last_user(item: DemoRequest) -> str:
    for message in reversed(item.messages):
        if message["role"] == "user":
            return " ".join(str(message["content"]).split())
    return ""


def summarize(result: DemoResult) -> dict[str, object]:
    """Figures for the report: per kind and model, totals, failover."""
    rows: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    by_protocol: Counter[str] = Counter()
    total = baseline = 0.0
    fallback_requests = failed_attempts = 0
    strategies: Counter[str] = Counter()
    escalated = 0
    checked_usd = 0.0  # what the cascade's rejected cheap answers cost
    speculative: Counter[str] = Counter()
    classified = 0
    legal_reason = ""
    for e in result.entries:
        kind = result.kinds.get(e.request_id, "other")
        purposes = [c.purpose for c in e.sub_calls]
        if kind == LIVE_CHAT:
            # Which side of the race served: the row says so, the tier and model columns
            # say who; the cost column includes the losing call.
            outcome = _race_outcome(e)
            speculative[outcome] += 1
            kind = f"{kind}: {outcome}"
        if "classifier" in purposes:
            classified += 1
        if kind == LEGAL and not legal_reason:
            legal_reason = e.reasons
        key = (kind, e.tier or "-", e.model or "(failed)")
        row = rows[key]
        row[0] += 1
        # Sub-calls (a cascade's rejected answers) are part of what the request cost.
        row[1] += e.total_cost_usd
        row[2] += e.baseline_cost_usd
        total += e.total_cost_usd
        baseline += e.baseline_cost_usd
        strategies[e.strategy] += 1
        if "cascade" in purposes:
            escalated += 1
            checked_usd += sum(c.cost_usd for c in e.sub_calls if c.purpose == "cascade")
        if e.model:
            by_protocol[result.protocols.get(e.model, "?")] += 1
        if e.fallbacks:
            fallback_requests += 1
            failed_attempts += e.fallbacks
    return {
        "rows": sorted(rows.items(), key=lambda kv: _row_order(kv[0], result.tiers)),
        "total": total,
        "baseline": baseline,
        "fallback_requests": fallback_requests,
        "failed_attempts": failed_attempts,
        "by_protocol": dict(by_protocol),
        "requests": len(result.entries),
        "strategies": dict(strategies),
        "escalated": escalated,
        "escalation_usd": checked_usd,
        "speculative": dict(speculative),
        "classifier_calls": classified,
        "legal_reason": legal_reason,
    }


def _row_order(key: tuple[str, str, str], tiers: tuple[str, ...]) -> tuple[str, int, str]:
    kind, tier, model = key
    return kind, tiers.index(tier) if tier in tiers else len(tiers), model


def _race_outcome(e: LedgerEntry) -> str:
    """How a speculative request ended, in the words of the demo's table."""
    purposes = {c.purpose for c in e.sub_calls}
    if e.tier == "premium":
        if "speculative" in purposes:
            return "cheap answer rejected"
        return "cheap too slow" if "speculative-cancelled" in purposes else "premium served"
    if "speculative-cancelled" in purposes:
        return "premium cancelled"
    return "both answered" if "speculative" in purposes else "cheap only"
