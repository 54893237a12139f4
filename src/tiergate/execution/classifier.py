"""The `classifier` strategy's model call: a budget model labels the request
SIMPLE / MODERATE / COMPLEX with a short fixed prompt.

It has its own tight timeout; answers are cached by prompt hash; any failure, timeout or
unparseable label becomes a verdict without a label, and the decision then falls back to
the route's default tier. The call's cost is booked to the request as a sub-call.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

from tiergate.chat import ChatRequest, Message
from tiergate.config.schema import FallbackConfig
from tiergate.errors import TiergateError
from tiergate.execution.executor import Executor
from tiergate.routing.context import ClassifierVerdict, LabelCache
from tiergate.routing.decision import Decision
from tiergate.routing.route import Classifier

PROMPT = (
    "Rate how hard it is to answer the user's request well.\n"
    "SIMPLE: greetings, FAQ, look-ups, short rewrites or translations.\n"
    "MODERATE: summaries, extraction, ordinary code, explanations.\n"
    "COMPLEX: multi-step reasoning, proofs, math, system design, subtle analysis.\n"
    "Reply with exactly one word: SIMPLE, MODERATE or COMPLEX."
)
_LABEL = re.compile(r"\b(SIMPLE|MODERATE|COMPLEX)\b")
# One attempt on one deployment: a slow classifier is worse than none.
_POLICY = FallbackConfig(retries=0, other_models=False, other_deployments=True, tier_up=False)


def parse_label(text: str | None) -> str | None:
    """SIMPLE / MODERATE / COMPLEX from the classifier's answer, or None."""
    found = _LABEL.search((text or "").upper())
    return found.group(1) if found else None


async def classify(executor: Executor, classifier: Classifier, prompt: str) -> ClassifierVerdict:
    """Label one prompt; never raises for upstream trouble (the verdict says what failed)."""
    text = prompt[: classifier.max_prompt_chars]
    key = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).digest()
    cache: LabelCache = classifier.cache
    cached = await cache.lookup(key)
    if cached is not None:
        return ClassifierVerdict(cached, "cached")
    model = classifier.model
    request = ChatRequest(
        model=model.name,
        messages=[Message(role="system", content=PROMPT), Message(role="user", content=text)],
        temperature=0.0,
        max_tokens=5,
    )
    decision = Decision("classifier", "classifier", model.tier, (model,))
    started = time.perf_counter()
    try:
        async with asyncio.timeout(classifier.timeout):
            done = await executor.complete(request, decision, _POLICY)
    except TimeoutError:
        return ClassifierVerdict(None, f"timed out after {classifier.timeout:g} s")
    except TiergateError as exc:
        return ClassifierVerdict(None, f"failed ({type(exc).__name__})")
    ms = (time.perf_counter() - started) * 1000
    answer = done.response.message.content if done.response.choices else None
    label = parse_label(answer)
    usage = done.usage
    if label is None:
        return ClassifierVerdict(
            None,
            f"unparseable label {(answer or '')[:20]!r}",
            done.cost_usd,
            usage.input_tokens,
            usage.output_tokens,
        )
    cache.put(key, label)
    return ClassifierVerdict(
        label, f"{model.name}, {ms:.0f} ms", done.cost_usd, usage.input_tokens, usage.output_tokens
    )
