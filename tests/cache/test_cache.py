"""The response cache: keys, the LRU, the semantic index, and Redis shared by two gateways."""

import asyncio
import time

import msgspec
import numpy as np
import openai
import pytest

from tests.conftest import three_tier_config
from tiergate.cache.entry import digest, request_shape
from tiergate.cache.semantic import SemanticIndex, eligible, embed
from tiergate.cache.store import MemoryCache
from tiergate.chat import decode_chat_request
from tiergate.fakes import Reply
from tiergate.store.testing import REDIS_URL, scratch_redis_prefix


def _chat(**fields):
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_chat_request(msgspec.json.encode(body))


def test_key_ignores_stream_and_metadata_but_not_what_changes_the_answer():
    base = digest("t", request_shape(_chat(temperature=0)))
    assert digest("t", request_shape(_chat(temperature=0, stream=True, user="u"))) == base
    assert digest("t", request_shape(_chat(temperature=0, metadata={"a": "b"}))) == base
    assert digest("other", request_shape(_chat(temperature=0))) != base
    assert digest("t", request_shape(_chat(temperature=0, max_tokens=5))) != base
    assert digest("t", request_shape(_chat(temperature=0, model="auto:x"))) != base
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert digest("t", request_shape(_chat(temperature=0, tools=tools))) != base


async def test_lru_evicts_oldest_and_expires():
    cache = MemoryCache(max_entries=2)
    await cache.put("a", b"1", 60)
    await cache.put("b", b"2", 60)
    assert await cache.get("a") == b"1"  # a is now the most recent
    await cache.put("c", b"3", 60)
    assert await cache.get("b") is None and await cache.get("a") == b"1"
    await cache.put("d", b"4", 0.001)
    await asyncio.sleep(0.01)  # past its time to live, whatever the clock's resolution
    assert await cache.get("d") is None


def test_embedding_similarity():
    a = embed("What is the capital of France?")
    assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ embed("what is the capital of  france")) > 0.9
    assert float(a @ embed("Write a haiku about autumn leaves")) < 0.5


def test_semantic_index_and_eligibility():
    index = SemanticIndex()
    v = embed("hello there friend")
    index.add("scope", v, "req1", b"answer", ttl=60, size=4)
    assert index.find("scope", v, 0.9) == ("req1", b"answer")
    assert index.find("other-scope", v, 0.9) is None
    for i in range(4):  # the ring keeps the newest `size` entries
        index.add("scope", embed(f"filler {i}"), f"f{i}", b"x", ttl=60, size=4)
    assert index.find("scope", v, 0.9) is None
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert eligible(_chat(), multi_turn=False, tools=False)
    assert not eligible(_chat(tools=tools), multi_turn=False, tools=False)
    assert eligible(_chat(tools=tools), multi_turn=False, tools=True)
    turns = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert not eligible(_chat(messages=turns), multi_turn=False, tools=False)
    assert eligible(_chat(messages=turns), multi_turn=True, tools=False)


def test_two_gateways_share_the_redis_cache_and_rate_limits(fake, start_gateway):
    with scratch_redis_prefix() as prefix:
        text = three_tier_config(fake, f"redis: {{url: '{REDIS_URL}', prefix: '{prefix}'}}\n")
        text = text.replace("keys:\n", "keys:\n  - {name: shared, key: tg-shared, rpm: 3}\n")
        one, two = start_gateway(text), start_gateway(text)
        fake.enqueue(Reply("from redis"))
        ask = {"model": "auto", "temperature": 0, "messages": [{"role": "user", "content": "q"}]}
        first = one.client("tg-shared").chat.completions.with_raw_response.create(**ask)
        assert first.headers["x-tiergate-cache"] == "miss"
        time.sleep(0.1)  # the answer is stored in the background
        second = two.client("tg-shared").chat.completions.with_raw_response.create(**ask)
        assert second.headers["x-tiergate-cache"] == "hit"
        assert second.parse().choices[0].message.content == "from redis"
        assert fake.calls == 1
        # rpm 3 across both instances: the third request anywhere is the last one
        two.client("tg-shared").chat.completions.create(**ask)
        with pytest.raises(openai.RateLimitError):
            one.client("tg-shared").chat.completions.create(**ask)


def test_ttl_is_per_route(fake, start_gateway):
    routes = "  auto:short:\n    strategy: rules\n    cache: {ttl: 2}\n"
    gw = start_gateway(three_tier_config(fake).replace("routes:\n", "routes:\n" + routes, 1))
    fake.enqueue(Reply("first"), Reply("second"), Reply("long-lived"))
    client = gw.client()

    def ask(model: str):
        return client.chat.completions.with_raw_response.create(
            model=model, temperature=0, messages=[{"role": "user", "content": "ttl?"}]
        )

    assert ask("auto:short").headers["x-tiergate-cache"] == "miss"
    assert ask("auto").headers["x-tiergate-cache"] == "miss"  # the route is part of the key
    time.sleep(0.1)
    assert ask("auto:short").headers["x-tiergate-cache"] == "hit"
    time.sleep(2.1)
    late = ask("auto:short")
    assert late.headers["x-tiergate-cache"] == "miss"
    assert late.parse().choices[0].message.content == "long-lived"
    assert ask("auto").headers["x-tiergate-cache"] == "hit"  # the default TTL is 300 s
    assert fake.calls == 3
