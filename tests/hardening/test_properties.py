"""Property tests: the request parsers and protocol translators turn *any* input into either
a result or their one documented error — never a crash that would become a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.providers.adapter_kit import deployment
from tiergate.chat import ChatRequest
from tiergate.errors import BadRequest, ClientError, UpstreamError
from tiergate.ingress.chat import _decode
from tiergate.ingress.limits import json_depth, screen_request
from tiergate.ingress.messages_wire import messages_request_to_chat
from tiergate.providers import builtin_adapters
from tiergate.providers.base import SSEEvent
from tiergate.providers.sse import SSEParser

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Strings that stress the depth scanner and the decoders: brackets, quotes, escapes.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\ab,:\n\x00\u2028é🙂'), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=30,
)


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    return 0


@SETTINGS
@given(json_values, st.booleans())
def test_json_depth_is_exact_for_any_document(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth(text) == true_depth(value)
    assert json_depth(text, stop_above=0) == true_depth(value) or true_depth(value) == 0


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_give_bad_request(raw):
    try:
        request = _decode(raw)
    except BadRequest:
        return
    assert isinstance(request, ChatRequest)


message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "bot"])},
    optional={
        "content": st.one_of(
            st.none(),
            tricky_text,
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["text", "image_url"])}, optional={"text": tricky_text}
                ),
                max_size=2,
            ),
        ),
        "tool_call_id": st.sampled_from(["c1", "c2", ""]),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.sampled_from(["c1", "c2"]),
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries(
                        {"name": st.just("f"), "arguments": tricky_text}
                    ),
                }
            ),
            max_size=2,
        ),
    },
)
tool = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": st.sampled_from(["f", "g", "bad name"])},
            optional={
                "parameters": st.one_of(
                    st.dictionaries(
                        st.sampled_from(["type", "properties", "required", "items"]),
                        json_values,
                        max_size=3,
                    ),
                    json_values,
                )
            },
        ),
    }
)
request_like = st.fixed_dictionaries(
    {"model": st.one_of(st.just("auto"), tricky_text, st.integers())},
    optional={
        "messages": st.lists(message, max_size=5),
        "tools": st.lists(tool, max_size=3),
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]), json_values),
        "response_format": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {
                    "type": st.just("json_schema"),
                    "json_schema": st.fixed_dictionaries(
                        {"name": st.just("x")}, optional={"schema": json_values}
                    ),
                }
            ),
        ),
        "max_tokens": st.one_of(st.integers(), st.floats(), tricky_text),
        "stream": st.one_of(st.booleans(), json_values),
        "tiergate": json_values,
        "api_base": tricky_text,
    },
)


@SETTINGS
@given(request_like)
def test_request_shaped_json_is_accepted_or_refused_with_400(data):
    try:
        request = _decode(json.dumps(data).encode())
        screen_request(request)
    except BadRequest:
        return
    assert "api_base" not in data


@SETTINGS
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "model": st.sampled_from(["auto", ""]),
                "max_tokens": st.one_of(st.integers(), tricky_text),
            },
            optional={
                "messages": st.lists(
                    st.fixed_dictionaries(
                        {"role": st.sampled_from(["user", "assistant", "system"])},
                        optional={
                            "content": st.one_of(
                                tricky_text,
                                st.lists(
                                    st.dictionaries(
                                        st.sampled_from(
                                            [
                                                "type",
                                                "text",
                                                "id",
                                                "name",
                                                "input",
                                                "tool_use_id",
                                                "content",
                                                "source",
                                            ]
                                        ),
                                        st.one_of(
                                            json_values,
                                            st.sampled_from(
                                                [
                                                    "text",
                                                    "tool_use",
                                                    "tool_result",
                                                    "image",
                                                    "thinking",
                                                ]
                                            ),
                                        ),
                                        max_size=4,
                                    ),
                                    max_size=3,
                                ),
                            )
                        },
                    ),
                    max_size=4,
                ),
                "system": st.one_of(tricky_text, json_values),
                "tools": json_values,
                "tool_choice": json_values,
                "stop_sequences": json_values,
            },
        ),
    )
)
def test_anthropic_messages_translation_never_crashes(data):
    try:
        messages_request_to_chat(data)
    except ClientError:
        pass


@SETTINGS
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_sse_parser_is_independent_of_how_bytes_are_split(parts):
    whole = b"".join(parts)
    one = SSEParser()
    expected = one.feed(whole) + one.close()
    many = SSEParser()
    got = [e for p in parts for e in many.feed(p)] + many.close()
    assert got == expected


ADAPTERS = builtin_adapters()


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
@SETTINGS
@given(body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_adapters_parse_any_body_or_raise_upstream_error(kind, body):
    adapter = ADAPTERS[kind]
    dep = deployment(kind, "http://127.0.0.1:9/v1", "m")
    try:
        adapter.parse(body, dep)
    except UpstreamError:
        pass
    try:
        adapter.map_error(500, body, {})
    except Exception as exc:  # map_error returns the error; it must not raise one
        raise AssertionError(f"map_error raised {exc!r}") from exc


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
@SETTINGS
@given(
    events=st.lists(
        st.tuples(
            st.one_of(st.text(max_size=60), json_values.map(json.dumps)),
            st.sampled_from(
                ["message", "message_start", "content_block_delta", "error", "ping", "message_stop"]
            ),
        ),
        max_size=6,
    )
)
def test_stream_decoders_take_any_events_or_raise_upstream_error(kind, events):
    decoder = ADAPTERS[kind].stream_decoder(deployment(kind, "http://127.0.0.1:9/v1", "m"))
    try:
        for data, name in events:
            decoder.feed(SSEEvent(data, name))
    except UpstreamError:
        pass
