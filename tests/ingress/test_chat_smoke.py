from tiergate.fakes import Fault, Reply


def test_auto_routes_short_prompt_to_budget(gw, fake):
    fake.enqueue(Reply("Hello!", input_tokens=12, output_tokens=3))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello!"
    assert raw.headers["x-tiergate-model"] == "small-model"
    assert raw.headers["x-tiergate-tier"] == "budget"
    assert raw.headers["x-tiergate-route"] == "auto"
    assert fake.last.body["model"] == "mock-small"
    # 12 * 0.05 + 3 * 0.40 per million
    assert raw.headers["x-tiergate-cost-usd"] == f"{(12 * 0.05 + 3 * 0.40) / 1e6:.8f}"
    (entry,) = gw.ledger.entries
    assert entry.model == "small-model" and entry.input_tokens == 12


def test_streaming_with_usage(gw, fake):
    fake.enqueue(Reply("one two three four", stream_chunks=4, input_tokens=5, output_tokens=4))
    stream = gw.client().chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[-1].usage.prompt_tokens == 5
    assert chunks[-1].usage.completion_tokens == 4


def test_failover_on_503(gw, fake):
    fake.enqueue(Fault(status=503), Fault(status=503), Reply("ok"))
    raw = gw.client().chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().choices[0].message.content == "ok"
    assert raw.headers["x-tiergate-model"] == "medium-model"
