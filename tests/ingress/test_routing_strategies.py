"""Every strategy through the real server with fake upstreams: which model served, what was
booked, what the reasons say."""

from __future__ import annotations

import json
import time

from tests.conftest import three_tier_config
from tiergate.fakes import Fault, Reply, ToolCall


def _route(fake, body: str) -> str:
    """The three-tier config with one more route (indented under `routes:`)."""
    config = three_tier_config(fake)
    return config.replace("routes:\n", "routes:\n" + body, 1)


def _ask(gw, text="hi", model="auto:x", **kwargs):
    return gw.client().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_rules_reason_header_and_ledger(gw, fake):
    fake.enqueue(Reply("We open at 9."))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "What are your hours?"}]
    )
    reason = raw.headers["x-tiergate-reason"]
    assert reason.startswith("rules: greeting or FAQ:") and "matched 'hours' -> budget" in reason
    (entry,) = gw.ledger.entries
    assert entry.strategy == "rules" and entry.reasons.startswith("rules: greeting or FAQ")


def test_per_request_controls_tighten(gw, fake):
    fake.enqueue(Reply("ok"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"tiergate": {"min_tier": "premium", "tags": ["legal"]}},
    )
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert "minimum tier premium" in raw.headers["x-tiergate-reason"]


def test_cascade_serves_the_cheap_answer_when_it_passes(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: cascade}\n"))
    fake.enqueue(Reply("Paris.", input_tokens=10, output_tokens=2), model="mock-small")
    raw = _ask(gw, "capital of France?")
    assert raw.headers["x-tiergate-model"] == "small-model"
    assert "cascade: small-model passed validation" in raw.headers["x-tiergate-reason"]
    assert fake.calls == 1
    (entry,) = gw.ledger.entries
    assert entry.extra_cost_usd == 0 and entry.strategy == "cascade"


def test_cascade_escalates_exactly_when_a_validator_fails(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: cascade}\n"))
    fake.enqueue(
        Reply("I'm sorry, I can't help with that.", input_tokens=10, output_tokens=9),
        model="mock-small",
    )
    fake.enqueue(Reply("", input_tokens=10, output_tokens=0), model="mock-medium")
    fake.enqueue(Reply("Here is the answer.", input_tokens=10, output_tokens=4), model="mock-large")
    raw = _ask(gw, "a question")
    assert raw.parse().choices[0].message.content == "Here is the answer."
    assert raw.headers["x-tiergate-model"] == "large-model"
    reason = raw.headers["x-tiergate-reason"]
    assert "small-model failed validation (refusal)" in reason
    assert "medium-model failed validation (empty answer)" in reason
    assert [r.model for r in fake.history] == ["mock-small", "mock-medium", "mock-large"]
    (entry,) = gw.ledger.entries
    small = (10 * 0.05 + 9 * 0.40) / 1e6
    medium = (10 * 0.25) / 1e6
    assert [c.purpose for c in entry.sub_calls] == ["cascade", "cascade"]
    assert abs(entry.extra_cost_usd - (small + medium)) < 1e-12
    assert abs(entry.cost_usd - (10 * 2.5 + 4 * 15) / 1e6) < 1e-12


def test_cascade_json_schema_validator(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: cascade}\n"))
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
    fake.enqueue(Reply('{"n": "three"}'), model="mock-small")
    fake.enqueue(Reply('{"n": 3}'), model="mock-medium")
    raw = _ask(
        gw,
        "count",
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    assert json.loads(raw.parse().choices[0].message.content) == {"n": 3}
    assert "JSON does not match the schema: n:" in raw.headers["x-tiergate-reason"]


def test_rules_then_cascade_validates_tool_arguments(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: [rules, cascade]}\n"))
    tool = {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    fake.enqueue(Reply(tool_calls=[ToolCall("weather", {"town": "Paris"})]), model="mock-medium")
    fake.enqueue(Reply(tool_calls=[ToolCall("weather", {"city": "Paris"})]), model="mock-large")
    raw = _ask(gw, "weather in Paris?", tools=[tool])
    call = raw.parse().choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert raw.headers["x-tiergate-model"] == "large-model"
    reason = raw.headers["x-tiergate-reason"]
    assert reason.startswith("rules: tools:")  # rules chose standard; the cascade refined it
    assert "tool weather arguments" in reason


def test_cascade_streaming_buffers_the_cheap_answer(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: cascade}\n"))
    fake.enqueue(Reply("As an AI, I cannot know."), model="mock-small")
    fake.enqueue(Reply("Fine answer here.", input_tokens=5, output_tokens=3), model="mock-medium")
    stream = gw.client().chat.completions.create(
        model="auto:x",
        messages=[{"role": "user", "content": "q"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Fine answer here."
    assert chunks[-1].usage.completion_tokens == 3
    assert [r.stream for r in fake.history] == [False, False]
    (entry,) = gw.ledger.entries
    assert entry.model == "medium-model" and entry.stream
    assert [c.purpose for c in entry.sub_calls] == ["cascade"]


def test_cascade_last_tier_streams_live(start_gateway, fake):
    gw = start_gateway(_route(fake, "  auto:x: {strategy: cascade, cascade: {max_steps: 2}}\n"))
    fake.enqueue(Reply(""), model="mock-small")
    fake.enqueue(Reply("live words here", stream_chunks=3), model="mock-medium")
    stream = gw.client().chat.completions.create(
        model="auto:x", messages=[{"role": "user", "content": "q"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "live words here"
    assert [r.stream for r in fake.history] == [False, True]


def test_classifier_labels_route_books_its_cost_and_caches(start_gateway, fake):
    gw = start_gateway(
        _route(
            fake,
            "  auto:x:\n    strategy: classifier\n    classifier: {model: small-model}\n",
        )
    )
    fake.enqueue(Reply("COMPLEX", input_tokens=100, output_tokens=1), model="mock-small")
    fake.enqueue(Reply("deep answer", input_tokens=20, output_tokens=2), model="mock-large")
    raw = _ask(gw, "What is the meaning of it all?")
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert raw.headers["x-tiergate-reason"].startswith("classifier: COMPLEX (small-model,")
    (entry,) = gw.ledger.entries
    (sub,) = entry.sub_calls
    assert sub.purpose == "classifier" and sub.model == "small-model"
    assert abs(entry.extra_cost_usd - (100 * 0.05 + 1 * 0.40) / 1e6) < 1e-12
    assert entry.total_cost_usd > entry.cost_usd
    classifier_body = fake.history[0].body
    assert (
        classifier_body["max_tokens"] == 5 and "SIMPLE" in classifier_body["messages"][0]["content"]
    )
    # Same prompt again: the label comes from the cache, no classifier call.
    fake.enqueue(Reply("again"), model="mock-large")
    raw = _ask(gw, "What is the meaning of it all?")
    assert "classifier: COMPLEX (cached)" in raw.headers["x-tiergate-reason"]
    assert fake.calls == 3
    assert gw.ledger.entries[-1].sub_calls == []


def test_classifier_failures_fall_back_to_the_default_tier(start_gateway, fake):
    gw = start_gateway(
        _route(
            fake,
            "  auto:x:\n    strategy: classifier\n    default_tier: standard\n"
            "    classifier: {model: small-model, timeout: 0.3}\n",
        )
    )
    fake.enqueue(Reply("maybe?"), model="mock-small")
    raw = _ask(gw, "one")
    assert raw.headers["x-tiergate-model"] == "medium-model"
    assert (
        "classifier: unparseable label 'maybe?' -> default tier standard"
        in raw.headers["x-tiergate-reason"]
    )
    fake.enqueue(Reply("SIMPLE", delay_headers=1.0), model="mock-small")
    raw = _ask(gw, "two")
    assert raw.headers["x-tiergate-model"] == "medium-model"
    assert "classifier: timed out after 0.3 s" in raw.headers["x-tiergate-reason"]
    fake.enqueue(Fault(status=500), Fault(status=500), model="mock-small")
    raw = _ask(gw, "three")
    assert raw.headers["x-tiergate-model"] == "medium-model"


def test_speculative_cancels_premium_when_cheap_passes(start_gateway, fake):
    gw = start_gateway(
        _route(fake, "  auto:x: {strategy: speculative, speculative: {deadline_ms: 2000}}\n")
    )
    # The cheap answer takes 0.3 s, so the premium request has surely reached the upstream
    # before it is cancelled (a premium call cancelled before it was sent costs nothing).
    fake.enqueue(
        Reply("quick and good", input_tokens=10, output_tokens=3, delay_headers=0.3),
        model="mock-small",
    )
    fake.enqueue(Reply("slow premium", delay_headers=3.0), model="mock-large")
    started = time.monotonic()
    raw = _ask(gw, "hello there")
    assert time.monotonic() - started < 2.0
    assert raw.parse().choices[0].message.content == "quick and good"
    assert raw.headers["x-tiergate-model"] == "small-model"
    assert "cancelled large-model" in raw.headers["x-tiergate-reason"]
    fake.wait_idle_blocking(within=5)
    (premium,) = fake.history.where(model="mock-large")
    assert premium.disconnected and not premium.completed
    (entry,) = gw.ledger.entries
    (sub,) = entry.sub_calls
    assert sub.purpose == "speculative-cancelled" and sub.model == "large-model"
    assert sub.cost_usd == sub.input_tokens * 2.5 / 1e6 > 0


def test_speculative_serves_premium_when_cheap_fails(start_gateway, fake):
    gw = start_gateway(
        _route(fake, "  auto:x: {strategy: speculative, speculative: {deadline_ms: 2000}}\n")
    )
    fake.enqueue(Reply("I don't know.", input_tokens=10, output_tokens=3), model="mock-small")
    fake.enqueue(Reply("premium answer", input_tokens=10, output_tokens=2), model="mock-large")
    raw = _ask(gw, "hello there")
    assert raw.parse().choices[0].message.content == "premium answer"
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert "speculative: small-model hedge" in raw.headers["x-tiergate-reason"]
    (entry,) = gw.ledger.entries
    (sub,) = entry.sub_calls
    assert sub.purpose == "speculative" and sub.model == "small-model"
    assert abs(sub.cost_usd - (10 * 0.05 + 3 * 0.40) / 1e6) < 1e-12


def test_speculative_deadline_cancels_the_slow_cheap_call(start_gateway, fake):
    gw = start_gateway(
        _route(fake, "  auto:x: {strategy: speculative, speculative: {deadline_ms: 300}}\n")
    )
    fake.enqueue(Reply("too late", delay_headers=2.0), model="mock-small")
    fake.enqueue(Reply("premium answer", delay_headers=0.5), model="mock-large")
    raw = _ask(gw, "hello there")
    assert raw.headers["x-tiergate-model"] == "large-model"
    fake.wait_idle_blocking(within=5)
    (cheap,) = fake.history.where(model="mock-small")
    assert cheap.disconnected
    assert [c.purpose for c in gw.ledger.entries[0].sub_calls] == ["speculative-cancelled"]


def test_static_by_endpoint_sees_the_messages_ingress(start_gateway, fake):
    import anthropic

    gw = start_gateway(
        _route(
            fake,
            "  auto:x:\n    strategy: [static, rules]\n"
            "    static:\n      - {endpoint: messages, tier: premium}\n",
        )
    )
    fake.enqueue(Reply("from premium"), Reply("from rules"))
    client = anthropic.Anthropic(base_url=gw.url, api_key="tg-test-key", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="auto:x", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert raw.headers["x-tiergate-reason"].startswith("static: endpoint messages -> tier premium")
    assert _ask(gw).headers["x-tiergate-model"] == "small-model"
