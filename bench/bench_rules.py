"""How long the `rules` routing decision takes: p50 / p90 / p99 in microseconds.

    .venv/bin/python bench/bench_rules.py [--tokens 1000] [--runs 20000]

The decision is `Router.decide` on a chat request: feature extraction (one pass over the
messages, the instruction window, code and length cues), the default rule table (one
vocabulary lookup over the instruction window), candidate ordering and the reason text,
for the PRODUCT.md three-tier config. Several prompt kinds are timed; the target is
p50 <= 50 us for a 1,000-token prompt. Prints, never asserts.

Timings on a shared machine swing with its load, so the bench also prints the load
average and a calibration: the p50 of `json.dumps` on a small dict (~1-2 us on a quiet
modern laptop core) — compare decisions across machines in multiples of it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

from tiergate.chat import ChatRequest, Message
from tiergate.config.loader import build_fleet, parse_config
from tiergate.routing.route import build_routes
from tiergate.routing.router import Router

CONFIG = """
providers:
  upstream: {kind: openai, base_url: "http://127.0.0.1:18080/v1", api_key: x}
models:
  small-model:  {provider: upstream, model: m, tier: budget,   price: {input: 0.05, output: 0.40}}
  medium-model: {provider: upstream, model: m, tier: standard, price: {input: 0.25, output: 2.00}}
  large-model:  {provider: upstream, model: m, tier: premium,  price: {input: 2.50, output: 15.00}}
routes:
  auto: {strategy: rules}
use_catalog: false
"""

PROSE = (
    "Our quarterly planning meeting covered hiring, the office move and the new billing "
    "provider. Several teams reported delays caused by vendor onboarding, and finance asked "
    "for clearer forecasts before the board meeting next month. "
)


def _prompt(kind: str, tokens: int) -> str:
    body = (PROSE * (tokens * 4 // len(PROSE) + 1))[: tokens * 4]
    if kind == "summary":
        return "Summarize the following notes in five bullet points.\n\n" + body
    if kind == "no-match":  # nothing but prose: every keyword rule scans the window
        return body
    if kind == "reasoning":
        return body + "\n\nThink through the trade-offs step by step and recommend a plan."
    raise ValueError(kind)


def bench(router: Router, request: ChatRequest, runs: int) -> list[float]:
    decide = router.decide
    for _ in range(200):  # warm up
        decide(request)
    samples = []
    gc.disable()  # a collection in the middle of one sample says nothing about routing
    try:
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            decide(request)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        gc.enable()
    return samples


def calibration(runs: int = 20_000) -> float:
    """p50 of a small `json.dumps`, in microseconds: how fast this machine is right now."""
    doc = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        json.dumps(doc)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20_000)
    args = parser.parse_args()
    config = parse_config(CONFIG)
    fleet = build_fleet(config)
    router = Router(fleet, build_routes(config, fleet))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} on {os.cpu_count()} CPUs; json.dumps p50 {calibration():.1f} us")
    print(f"rules decision, {args.tokens}-token prompts, {args.runs} runs each (microseconds)")
    print(f"{'prompt':>10} {'tier':>9} {'p50':>7} {'p90':>7} {'p99':>7}")
    for kind in ("summary", "no-match", "reasoning"):
        request = ChatRequest(
            model="auto", messages=[Message(role="user", content=_prompt(kind, args.tokens))]
        )
        tier = router.decide(request).tier
        samples = sorted(bench(router, request, args.runs))
        q = statistics.quantiles(samples, n=100)
        print(f"{kind:>10} {tier:>9} {q[49]:7.1f} {q[89]:7.1f} {q[98]:7.1f}")


if __name__ == "__main__":
    main()
