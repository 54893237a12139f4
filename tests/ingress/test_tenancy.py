"""Keys, allow-lists, budgets, rate limits and the cache, through a live gateway."""

import asyncio
import time

import httpx
import openai
import pytest

from tests.conftest import three_tier_config
from tiergate.config.loader import parse_config
from tiergate.fakes import Fault, Reply
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer


def _keys(extra: str) -> str:
    return "keys:\n  - {name: test, key: tg-test-key}\n" + extra


def _config(fake, keys: str = "", routes: str = "") -> str:
    text = three_tier_config(fake).replace("keys:\n  - {name: test, key: tg-test-key}\n", "")
    if routes:
        text = text.replace("routes:\n", "routes:\n" + routes)
    return text + _keys(keys)


def _wait_booked(gw, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(gw.ledger.entries) < n and time.monotonic() < deadline:
        time.sleep(0.01)


# -- budgets -----------------------------------------------------------------------------------


def test_fifty_concurrent_requests_overspend_by_at_most_one_request(fake, start_gateway):
    gw = start_gateway(
        _config(fake, "  - {name: poor, key: tg-poor, budget_usd: 0.01, period: total}\n")
    )
    for _ in range(50):
        fake.enqueue(Reply("x", input_tokens=20, output_tokens=100, delay_headers=0.3))
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="tg-poor", max_retries=0)

    async def one() -> int:
        try:
            await client.chat.completions.create(
                model="large-model", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
            return 200
        except openai.RateLimitError as exc:
            assert exc.code == "budget_exceeded" or "budget" in str(exc)
            return 429

    async def run() -> list[int]:
        async with client:
            return await asyncio.gather(*(one() for _ in range(50)))

    statuses = asyncio.run(run())
    _wait_booked(gw, 50)
    ok = statuses.count(200)
    assert ok >= 1 and statuses.count(429) == 50 - ok
    assert fake.calls == ok  # a refused request never reaches the upstream
    spent = sum(e.total_cost_usd for e in gw.ledger.entries)
    one_request_max = (2 * 2.50 + 100 * 15.00) / 1e6  # prompt estimate + max_tokens, large-model
    assert spent <= 0.01 + one_request_max
    assert all(e.cost_usd == 0 for e in gw.ledger.entries if e.status == 429)
    # Once spent, the next request is refused with a clear message and no upstream call.
    with pytest.raises(openai.RateLimitError, match="budget exhausted"):
        gw.client("tg-poor").chat.completions.create(
            model="small-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert fake.calls == ok


def test_route_budget_applies_to_every_key(fake, start_gateway):
    routes = "  auto:cheap:\n    strategy: rules\n    budget: {usd: 0.000001, period: day}\n"
    gw = start_gateway(_config(fake, routes=routes))
    fake.enqueue(Reply("a", input_tokens=100, output_tokens=100))
    gw.client().chat.completions.create(
        model="auto:cheap", messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(openai.RateLimitError, match="route 'auto:cheap'"):
        gw.client().chat.completions.create(
            model="auto:cheap", messages=[{"role": "user", "content": "hi"}]
        )
    # other routes are not affected
    fake.enqueue(Reply("b"))
    gw.client().chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])


# -- allow-lists -------------------------------------------------------------------------------


def test_allow_lists_answer_403_and_book_no_spend(fake, start_gateway):
    keys = (
        "  - {name: small-only, key: tg-small, models: [small-model]}\n"
        "  - {name: auto-only, key: tg-auto, routes: [auto]}\n"
        "  - {name: no-premium, key: tg-nopremium, tiers: [budget, standard]}\n"
    )
    gw = start_gateway(_config(fake, keys))
    for key, model in (
        ("tg-small", "large-model"),
        ("tg-auto", "large-model"),
        ("tg-auto", "tier:premium"),
        ("tg-nopremium", "tier:premium"),
    ):
        with pytest.raises(openai.PermissionDeniedError):
            gw.client(key).chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
    assert fake.calls == 0
    assert all(e.status == 403 and e.total_cost_usd == 0 for e in gw.ledger.entries)
    # allowed: the candidate list is narrowed to what the key may use
    fake.enqueue(Reply("ok"))
    raw = gw.client("tg-small").chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-model"] == "small-model"


def test_key_is_accepted_in_each_header_and_unknown_is_401(fake, start_gateway):
    gw = start_gateway(_config(fake))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    for headers in (
        {"authorization": "Bearer tg-test-key"},
        {"x-api-key": "tg-test-key"},
        {"api-key": "tg-test-key"},
    ):
        fake.enqueue(Reply("ok"))
        r = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers={"x-api-key": "tg-nope'--%"})
    assert r.status_code == 401 and "tg-nope" not in r.text


# -- rate limits -------------------------------------------------------------------------------


def test_rpm_limit_answers_429_with_retry_after(fake, start_gateway):
    gw = start_gateway(_config(fake, "  - {name: slow, key: tg-slow, rpm: 2}\n"))
    fake.enqueue(Reply("1"), Reply("2"))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer tg-slow"}
    for _ in range(2):
        assert (
            httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers).status_code
            == 200
        )
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert fake.calls == 2


def test_tpm_limit_counts_real_tokens(fake, start_gateway):
    gw = start_gateway(_config(fake, "  - {name: tok, key: tg-tok, tpm: 1000}\n"))
    fake.enqueue(Reply("x", input_tokens=100, output_tokens=950))
    client = gw.client("tg-tok")
    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError, match="tokens per minute"):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])


# -- exact cache -------------------------------------------------------------------------------


def _ask(gw, key="tg-test-key", **kw):
    params = {"model": "auto", "messages": [{"role": "user", "content": "hello cache"}]}
    params.update(kw)
    return gw.client(key).chat.completions.with_raw_response.create(**params)


def test_exact_cache_hit_is_booked_at_zero_with_the_saving(fake, start_gateway):
    gw = start_gateway(_config(fake, "  - {name: other, key: tg-other}\n"))
    fake.enqueue(Reply("cached answer", input_tokens=10, output_tokens=5))
    first = _ask(gw, temperature=0)
    assert first.headers["x-tiergate-cache"] == "miss"
    second = _ask(gw, temperature=0)
    assert second.headers["x-tiergate-cache"] == "hit"
    assert second.parse().choices[0].message.content == "cached answer"
    assert second.headers["x-tiergate-cost-usd"] == "0.00000000"
    assert second.headers["x-tiergate-cache-match"] == first.headers["x-tiergate-request-id"]
    assert fake.calls == 1
    _wait_booked(gw, 2)
    miss, hit = gw.ledger.entries
    assert hit.cache == "hit" and hit.cost_usd == 0 and hit.cache_saved_usd == miss.cost_usd > 0
    assert hit.baseline_cost_usd == miss.baseline_cost_usd
    # another tenant never gets this tenant's answer
    fake.enqueue(Reply("theirs"))
    assert _ask(gw, key="tg-other", temperature=0).headers["x-tiergate-cache"] == "miss"
    assert fake.calls == 2


def test_cache_bypass_temperature_and_errors(fake, start_gateway):
    gw = start_gateway(_config(fake))
    fake.enqueue(Reply("a"), Reply("b"))
    assert _ask(gw, temperature=0.7).headers["x-tiergate-cache"] == "miss"
    assert _ask(gw, temperature=0.7).parse().choices[0].message.content == "b"
    fake.enqueue(Reply("c"))
    _ask(gw, temperature=0)
    raw = _ask(gw, temperature=0, extra_headers={"x-tiergate-cache": "bypass"})
    assert raw.headers["x-tiergate-cache"] == "bypass"
    assert fake.calls == 4
    # an error is never cached
    fake.enqueue(Fault(status=400))
    with pytest.raises(openai.BadRequestError):
        _ask(gw, temperature=0, messages=[{"role": "user", "content": "bad"}])
    fake.enqueue(Reply("fine"))
    ok = _ask(gw, temperature=0, messages=[{"role": "user", "content": "bad"}])
    assert ok.headers["x-tiergate-cache"] == "miss"


def test_stream_is_served_from_cache_and_cached_from_a_stream(fake, start_gateway):
    routes = "  auto:sampled:\n    strategy: rules\n    cache: {ttl: 60, allow_temperature: true}\n"
    gw = start_gateway(_config(fake, routes=routes))
    fake.enqueue(Reply("one two three", stream_chunks=3, input_tokens=7, output_tokens=3))
    stream = gw.client().chat.completions.create(
        model="auto:sampled", messages=[{"role": "user", "content": "s"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two three"
    time.sleep(0.05)
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto:sampled",
        messages=[{"role": "user", "content": "s"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-tiergate-cache"] == "hit"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[-1].usage.prompt_tokens == 7
    plain = gw.client().chat.completions.with_raw_response.create(
        model="auto:sampled", messages=[{"role": "user", "content": "s"}]
    )
    assert plain.headers["x-tiergate-cache"] == "hit"
    assert plain.parse().choices[0].message.content == "one two three"
    assert fake.calls == 1


# -- semantic cache ----------------------------------------------------------------------------


def test_semantic_cache_matches_a_rephrasing_of_the_same_tenant(fake, start_gateway):
    routes = "  auto:faq:\n    strategy: rules\n    cache: {semantic: {threshold: 0.85}}\n"
    gw = start_gateway(_config(fake, "  - {name: other, key: tg-other}\n", routes))
    fake.enqueue(Reply("Paris."))
    ask = {"model": "auto:faq", "temperature": 0}
    first = gw.client().chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "What is the capital of France?"}], **ask
    )
    similar = gw.client().chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "what is the capital of  france"}], **ask
    )
    assert similar.headers["x-tiergate-cache"] == "hit"
    assert similar.headers["x-tiergate-cache-match"] == first.headers["x-tiergate-request-id"]
    assert similar.parse().choices[0].message.content == "Paris."
    fake.enqueue(Reply("Berlin."), Reply("other tenant"), Reply("turns"))
    different = gw.client().chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "Name three rivers in Germany and their lengths"}],
        **ask,
    )
    assert different.headers["x-tiergate-cache"] == "miss"
    other = gw.client("tg-other").chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": "what is the capital of france"}], **ask
    )
    assert other.headers["x-tiergate-cache"] == "miss"
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    multi = gw.client().chat.completions.with_raw_response.create(messages=conversation, **ask)
    assert multi.headers["x-tiergate-cache"] == "miss"
    assert fake.calls == 4


# -- abandoned streams -------------------------------------------------------------------------


def test_abandoned_stream_is_booked_499_with_the_tokens_produced(fake, start_gateway):
    gw = start_gateway(_config(fake))
    words = " ".join(f"w{i}" for i in range(40))
    fake.enqueue(Reply(words, stream_chunks=40, chunk_delay=0.05, input_tokens=9))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST",
            f"{gw.url}/v1/chat/completions",
            json=body,
            headers={"authorization": "Bearer tg-test-key"},
        ) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any(line.startswith("data: ") for line in got)
    _wait_booked(gw, 1)
    (entry,) = gw.ledger.entries
    assert entry.status == 499 and entry.stream
    assert 0 < entry.output_tokens < 40
    assert entry.cost_usd > 0


def test_budget_spent_before_a_restart_still_counts(fake, tmp_path):
    extra = f"ledger: {{url: 'sqlite:///{tmp_path / 'l.db'}'}}\n"
    text = _config(fake, "  - {name: once, key: tg-once, budget_usd: 0.00001, period: day}\n")
    text = text + extra
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": "Bearer tg-once"}
    fake.enqueue(Reply("spent", input_tokens=100, output_tokens=100))
    with BackgroundServer(create_app(Gateway.from_config(parse_config(text)))) as server:
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 200
    # a new process reads what the ledger already holds for this period
    with BackgroundServer(create_app(Gateway.from_config(parse_config(text)))) as server:
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
        assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"
    assert fake.calls == 1
