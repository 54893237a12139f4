"""The bundled demo workload: a deterministic mix of the requests a product team sends."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

OPEN_QUESTION = "open question (classifier)"
LIVE_CHAT = "live chat (speculative)"
LEGAL = "contract question (domain legal)"
KINDS = (
    "greeting/FAQ",
    "extraction",
    "summary",
    "code",
    "multi-step reasoning",
    OPEN_QUESTION,
    LIVE_CHAT,
    LEGAL,
)
# Support questions go through a cascade: the cheapest answer is checked before it is served.
SUPPORT_ROUTE = "auto:support"
# Open questions have no telltale words for the rules: a cheap model labels each one.
ASSISTANT_ROUTE = "auto:assistant"
# Live chat races the cheap tier against the premium one; the premium call is cancelled
# as soon as the cheap answer passes its checks.
CHAT_ROUTE = "auto:chat"


@dataclass(frozen=True, slots=True)
class DemoRequest:
    kind: str
    messages: list[dict[str, Any]]
    output_tokens: int  # how long the simulated model's answer is
    stream: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    route: str = "auto"  # what the client sends as `model`


_FAQ = [
    "Hi! What are your opening hours on weekends?",
    "How do I reset my password?",
    "Do you ship to Canada?",
    "Thanks, that solved it!",
    "Can I change the email address on my account?",
    "What is your refund policy?",
    "Hello, is anyone there?",
    "Where can I download my invoice?",
    "How long does delivery take?",
    "Do you have a student discount?",
    "Good morning! Can I pay with PayPal?",
    "What are your hours on public holidays?",
]
_PEOPLE = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Linus Torvalds"]
_CITIES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Berlin", "Santiago"]
_TOPICS = [
    "remote work and team productivity",
    "the history of the printing press",
    "battery chemistry in electric cars",
    "urban beekeeping",
    "the economics of open-source software",
    "ocean shipping and supply chains",
]
_CODE_TASKS = [
    "Write a Python function that merges overlapping intervals and add unit tests.",
    "Fix the bug in this function:\n```python\ndef mean(xs):\n    return sum(xs) / len(xs) + 1\n```",
    "Refactor this JavaScript to use async/await:\n```js\nfetch(url).then(r => r.json()).then(d => render(d))\n```",
    "Write a SQL query that returns the top 5 customers by revenue per month.",
    "Implement an LRU cache class in TypeScript with get and put in O(1).",
    "Explain what this regex does and write tests for it: ```^(?:\\d{3}-){2}\\d{4}$```",
]
_REASONING = [
    "Analyze the trade-offs between event sourcing and a CRUD database for a billing system, step by step, and recommend one.",
    "A train leaves at 9:40 at 84 km/h and another at 10:05 at 110 km/h on the same track. Reason step by step: when does the second catch up, and what assumptions matter?",
    "Design a rate limiter for a multi-region API. Compare token bucket and sliding window, analyze failure modes, and propose an architecture.",
    "Prove that the sum of the first n odd numbers is n squared, then generalise the argument.",
    "Our churn rose from 3% to 5% after a price change. Analyze the possible causes step by step and design an experiment to find the real one.",
]
# Each open question with the label the simulated classifier model gives it.
OPEN_QUESTIONS = {
    "What's the capital of Australia?": "SIMPLE",
    "Which planet has the most moons?": "SIMPLE",
    "Say good night in Japanese.": "SIMPLE",
    "Explain how a browser checks a website's certificate.": "MODERATE",
    "Why do onions make people cry?": "MODERATE",
    "How does compound interest work for a monthly savings plan?": "MODERATE",
    "Should a 12-person startup split its monolith into services? Weigh team, cost and risk.": (
        "COMPLEX"
    ),
    "Is it better to pay off a 4% mortgage early or invest the money? Consider taxes and risk.": (
        "COMPLEX"
    ),
}
_CHAT = [
    "My parcel arrived damaged, what should I do?",
    "Can I still change the size of the shoes I ordered this morning?",
    "The app logs me out every few minutes on my phone.",
    "Is the blue backpack coming back in stock soon?",
    "I was charged twice for order 4411, can you help?",
    "My discount code says it expired yesterday, can you honour it?",
]
# Short questions the rules alone would send to the budget tier; tagged `legal`, the route's
# domain policy lifts them to premium and keeps them off a model blocked for legal work.
_LEGAL = [
    "Is a verbal agreement to sublet my flat legally binding?",
    "Can my employer change my notice period without my consent?",
    "Does a non-compete clause apply if I am laid off?",
    "Who owns the copyright of code I wrote as a contractor?",
]
LEGAL_TAG = "legal"
# The cheap models hedge on these two, so the premium answer is served instead.
HARD_CHAT = frozenset(_CHAT[4:])
_FILLER = (
    "The committee met on Tuesday to review the quarterly figures, which showed steady growth "
    "in the northern region and a slight decline elsewhere. Several members raised concerns "
    "about hiring, while others argued the budget should favour tooling and training. "
)


def build_workload(size: int = 210, seed: int = 42) -> list[DemoRequest]:
    """A shuffled, reproducible workload of `size` requests across the five kinds."""
    rng = random.Random(seed)
    shares = {
        "greeting/FAQ": 0.19,
        "extraction": 0.16,
        "summary": 0.16,
        "code": 0.14,
        "multi-step reasoning": 0.10,
        OPEN_QUESTION: 0.10,
        LIVE_CHAT: 0.10,
        LEGAL: 0.05,
    }
    out: list[DemoRequest] = []
    for kind, share in shares.items():
        for _ in range(round(size * share)):
            out.append(_make(kind, rng))
    rng.shuffle(out)
    return out[:size]


_SUPPORT_PROMPT = "You are a friendly support agent for Acme."


def _make(kind: str, rng: random.Random) -> DemoRequest:
    stream = rng.random() < 0.25
    if kind == "greeting/FAQ":
        return DemoRequest(
            kind,
            [
                {"role": "system", "content": _SUPPORT_PROMPT},
                {"role": "user", "content": rng.choice(_FAQ)},
            ],
            rng.randint(25, 90),
            stream,
            route=SUPPORT_ROUTE,
        )
    if kind == "extraction":
        person, city = rng.choice(_PEOPLE), rng.choice(_CITIES)
        amount = rng.randint(40, 4000)
        text = (
            f"Invoice 2026-{rng.randint(100, 999)} issued to {person}, {city}, "
            f"on {rng.randint(1, 28)} March 2026 for EUR {amount}.00, due in 30 days."
        )
        return DemoRequest(
            kind,
            [{"role": "user", "content": f"Extract name, city, date and amount as JSON: {text}"}],
            rng.randint(40, 80),
            False,
            {"response_format": {"type": "json_object"}},
        )
    if kind == "summary":
        body = _FILLER * rng.randint(3, 8)
        topic = rng.choice(_TOPICS)
        return DemoRequest(
            kind,
            [{"role": "user", "content": f"Summarize this note on {topic} in 3 bullets:\n{body}"}],
            rng.randint(80, 160),
            stream,
        )
    if kind == OPEN_QUESTION:
        return DemoRequest(
            kind,
            [{"role": "user", "content": rng.choice(list(OPEN_QUESTIONS))}],
            rng.randint(60, 300),
            stream,
            route=ASSISTANT_ROUTE,
        )
    if kind == LIVE_CHAT:
        return DemoRequest(
            kind,
            [
                {"role": "system", "content": _SUPPORT_PROMPT},
                {"role": "user", "content": rng.choice(_CHAT)},
            ],
            rng.randint(40, 90),
            stream,
            route=CHAT_ROUTE,
        )
    if kind == LEGAL:
        return DemoRequest(
            kind,
            [{"role": "user", "content": rng.choice(_LEGAL)}],
            rng.randint(120, 300),
            stream,
            {"extra_headers": {"x-tiergate-tags": LEGAL_TAG}},
        )
    if kind == "code":
        return DemoRequest(
            kind,
            [
                {"role": "system", "content": "You are a senior software engineer."},
                {"role": "user", "content": rng.choice(_CODE_TASKS)},
            ],
            rng.randint(250, 600),
            stream,
        )
    return DemoRequest(
        kind,
        [{"role": "user", "content": rng.choice(_REASONING)}],
        rng.randint(500, 1000),
        stream,
    )
