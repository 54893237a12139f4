"""Failover through the real server: which deployment served, what the ledger says."""

import time

import openai
import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Fault, Reply


def _ask(gw, **kwargs):
    return gw.client().chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "auto"), messages=[{"role": "user", "content": "hi"}], **kwargs
    )


def test_retry_after_is_honoured_then_same_deployment_succeeds(gw, fake):
    fake.enqueue(Fault(status=429, retry_after=0.3), Reply("after wait"))
    started = time.monotonic()
    raw = _ask(gw)
    assert time.monotonic() - started >= 0.3
    assert raw.parse().choices[0].message.content == "after wait"
    assert raw.headers["x-tiergate-model"] == "small-model"
    (entry,) = gw.ledger.entries
    assert entry.fallbacks == 1 and "small-model@upstream:429" in entry.attempts


def test_retry_after_beyond_cap_moves_on_without_waiting(gw, fake):
    fake.enqueue(Fault(status=429, retry_after=60), Reply("next model"))
    started = time.monotonic()
    raw = _ask(gw)
    assert time.monotonic() - started < 5
    assert raw.headers["x-tiergate-model"] == "medium-model"


def test_tier_up_after_every_budget_attempt_fails(gw, fake):
    fake.enqueue(Fault(status=500), Fault(status=502), Reply("standard answered"))
    raw = _ask(gw)
    assert raw.headers["x-tiergate-tier"] == "standard"
    assert [r.model for r in fake.history][-3:] == ["mock-small", "mock-small", "mock-medium"]


def test_client_mistake_from_upstream_is_returned_as_is_without_failover(gw, fake):
    fake.enqueue(Fault(status=400, message="messages: bad role"))
    with pytest.raises(openai.BadRequestError) as err:
        _ask(gw)
    assert "bad role" in str(err.value)
    assert fake.calls == 1
    (entry,) = gw.ledger.entries
    assert entry.status == 400 and entry.cost_usd == 0


def test_revoked_provider_key_is_not_retried_in_a_loop(fake, start_gateway):
    config = three_tier_config(fake).replace("api_key: sk-upstream", "api_key: sk-revoked")
    gw = start_gateway(config)
    with pytest.raises(openai.APIStatusError) as err:
        _ask(gw)
    assert err.value.status_code == 502
    # one attempt per deployment, never a retry on the same dead credential
    assert fake.calls == 3
    # ... and the dead credential is out: the next request does not call upstream at all
    with pytest.raises(openai.APIStatusError):
        _ask(gw)
    assert fake.calls == 3


def test_timeout_before_headers_fails_over(gw, fake):
    fake.enqueue(Fault(delay_headers=5), Reply("fast one"))
    raw = _ask(gw)
    assert raw.parse().choices[0].message.content == "fast one"


def test_garbage_json_fails_over(gw, fake):
    fake.enqueue(Fault(garbage=True), Reply("clean"))
    assert _ask(gw).parse().choices[0].message.content == "clean"


def test_all_fail_gives_502_envelope_and_ledger_row(gw, fake):
    fake.enqueue(*[Fault(status=500)] * 6)
    with pytest.raises(openai.APIStatusError) as err:
        _ask(gw)
    assert err.value.status_code == 502
    assert err.value.body["code"] == "all_upstreams_failed"
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.cost_usd == 0


def test_circuit_opens_and_skips_a_failing_deployment(gw, fake):
    # budget fails 3 times in a row (threshold 3): its circuit opens
    fake.enqueue(Fault(status=500), Fault(status=500), Reply("a"))
    _ask(gw)
    fake.enqueue(Fault(status=500), Reply("b"))
    _ask(gw)
    before = fake.calls
    raw = _ask(gw)
    assert raw.headers["x-tiergate-model"] == "medium-model"
    assert fake.calls == before + 1  # budget was skipped without a call


def test_streaming_fails_over_before_first_byte(gw, fake):
    fake.enqueue(Fault(error_after=0, status=529), Reply("streamed fine", stream_chunks=3))
    stream = gw.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "streamed fine"


def test_stream_cut_after_first_byte_ends_with_error_not_done(gw, fake):
    fake.enqueue(Fault(truncate_after=3, reply=Reply("a b c d e f g h", stream_chunks=8)))
    with gw.client().chat.completions.with_streaming_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] != "data: [DONE]"
    assert '"error"' in lines[-1]
    (entry,) = gw.ledger.entries
    assert entry.status == 502 and entry.stream


def test_direct_model_request_does_not_switch_models(gw, fake):
    fake.enqueue(*[Fault(status=503)] * 4)
    with pytest.raises(openai.APIStatusError):
        _ask(gw, model="small-model")
    assert {r.model for r in fake.history} == {"mock-small"}


def test_all_throttled_is_429_with_retry_after(gw, fake):
    fake.enqueue(*[Fault(status=429, retry_after=30)] * 6)
    with pytest.raises(openai.RateLimitError) as err:
        _ask(gw)
    assert err.value.response.headers["retry-after"] == "30"
    assert err.value.body["code"] == "upstream_rate_limited"


def test_all_overloaded_is_503(gw, fake):
    fake.enqueue(*[Fault(status=503), Fault(status=529)] * 3)
    with pytest.raises(openai.InternalServerError) as err:
        _ask(gw)
    assert err.value.status_code == 503
