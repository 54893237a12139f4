"""Helpers for adapter tests: canonical requests, deployments, and one real HTTP call."""

from __future__ import annotations

import collections.abc
import contextlib
import itertools
import types
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import aiohttp
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import is_typeddict

from tiergate.chat import ChatChunk, ChatRequest, ChatResponse, accumulate, convert_chat_request
from tiergate.fleet import Deployment, Provider, ProviderKind
from tiergate.providers.base import Adapter, SSEEvent, StreamDecoder, UpstreamCall
from tiergate.providers.sse import SSEParser

F = TypeVar("F", bound=Callable[..., None])


def chat(*messages: dict[str, Any], **fields: Any) -> ChatRequest:
    """A canonical request, validated exactly as the OpenAI ingress would."""
    return convert_chat_request({"model": "auto", "messages": list(messages), **fields})


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_def(name: str, parameters: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, **extra}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def deployment(kind: ProviderKind, base_url: str, upstream: str, **provider: Any) -> Deployment:
    p = Provider(name=f"{kind}-test", kind=kind, base_url=base_url, **provider)
    return Deployment(f"test-model@{p.name}", "test-model", p, upstream)


def body(upstream_call: UpstreamCall) -> Any:
    return msgspec.json.decode(upstream_call.body)


def feed_all(decoder: StreamDecoder, events: list[SSEEvent]) -> list[ChatChunk]:
    chunks: list[ChatChunk] = []
    for event in events:
        chunks.extend(decoder.feed(event))
    return chunks


def split_anywhere(text: str, cuts: list[int]) -> list[str]:
    """`text` cut at the given positions (any order, duplicates allowed)."""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


# JSON values whose compact encoding survives decode + encode unchanged.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
tool_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,30}", fullmatch=True)
texts = st.text(min_size=1, max_size=200).filter(lambda s: s.strip() != "")


def compact(value: Any) -> str:
    return msgspec.json.encode(value).decode()


@contextlib.asynccontextmanager
async def _post(
    adapter: Adapter, request: ChatRequest, dep: Deployment, *, stream: bool
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The adapter's upstream call made over real HTTP; an error status is mapped and raised."""
    upstream_call = adapter.build(request, dep, stream=stream)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            upstream_call.url, headers=upstream_call.headers, data=upstream_call.body
        ) as resp,
    ):
        if resp.status >= 400:
            raise adapter.map_error(resp.status, await resp.read(), resp.headers)
        yield resp


async def stream_chunks(
    adapter: Adapter, request: ChatRequest, dep: Deployment
) -> tuple[list[ChatChunk], bool]:
    """Every chunk of a streamed call, and whether the provider's end marker came."""
    async with _post(adapter, request, dep, stream=True) as resp:
        decoder = adapter.stream_decoder(dep)
        parser = SSEParser()
        chunks: list[ChatChunk] = []
        async for data in resp.content.iter_any():
            for event in parser.feed(data):
                chunks.extend(decoder.feed(event))
        for event in parser.close():
            chunks.extend(decoder.feed(event))
        return chunks, decoder.finished


async def send(
    adapter: Adapter, request: ChatRequest, dep: Deployment, *, stream: bool
) -> ChatResponse:
    """One real HTTP round trip through the adapter (a stream is folded with `accumulate`)."""
    if stream:
        chunks, finished = await stream_chunks(adapter, request, dep)
        assert finished, "the stream ended without the provider's end marker"
        return accumulate(chunks)
    async with _post(adapter, request, dep, stream=False) as resp:
        return adapter.parse(await resp.read(), dep)


E2E_KEY = "sk-e2e-upstream"
"""The key the fake upstream of the end-to-end tests (`tests/providers/conftest.py`) wants."""


def e2e_deployment(kind: ProviderKind, fake: Any, upstream: str) -> Deployment:
    """A deployment on the end-to-end fake upstream, speaking `kind`."""
    return deployment(kind, fake.base_url(kind), upstream, api_key=E2E_KEY)


def tool_round_trip(
    question: str, follow_up: str, name: str, arguments: str, call_id: str, result: str = "done"
) -> ChatRequest:
    """Question, a call of `name` with `arguments`, its result, and a follow-up question."""
    return chat(
        user(question),
        {"role": "assistant", "tool_calls": [call(call_id, name, arguments)]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
        user(follow_up),
        tools=[tool_def(name, {"type": "object"})],
    )


def round_trip_cases(**extra: st.SearchStrategy[Any]) -> Callable[[F], F]:
    """The inputs of a round-trip property test: a question, a follow-up, a tool name and
    its arguments object (plus `extra` strategies), 80 examples."""

    def decorate(test: F) -> F:
        cases = given(question=texts, follow_up=texts, name=tool_names, args=json_objects, **extra)
        return settings(max_examples=80)(cases(test))

    return decorate


def assert_text_and_call(response: ChatResponse, text: str, name: str, arguments: str) -> None:
    """The answer is exactly `text` plus one call of `name` with exactly `arguments`."""
    assert response.message.content == text
    (tc,) = response.message.tool_calls or []
    assert (tc.function.name, tc.function.arguments) == (name, arguments)
    assert response.finish_reason == "tool_calls"


def conforms(value: Any, tp: Any) -> bool:
    """True when `value` fits the SDK type `tp`, with no key its TypedDicts do not declare.

    Pydantic ignores unknown TypedDict keys, so this walks the types itself: a misspelt
    field anywhere in a request body fails here.
    """
    if tp is Any or tp is object:
        return True
    origin = get_origin(tp)
    if origin is Annotated:
        return conforms(value, get_args(tp)[0])
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return False
        hints = get_type_hints(tp)
        required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
        return (
            set(value) <= set(hints)
            and required <= set(value)
            and all(conforms(v, hints[k]) for k, v in value.items())
        )
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in get_args(tp))
    if origin is Literal:
        return value in get_args(tp)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp in (str, int, bool):
        return isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
    if tp is dict or origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if origin is not None:
        if not isinstance(value, list):
            return False
        args = get_args(tp)
        return all(conforms(v, args[0]) for v in value) if args else True
    return True  # SDK classes for file inputs and the like: not in our bodies
