from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tiergate.store.testing import REDIS_URL, scratch_redis_prefix


@pytest.fixture
def redis_prefix():
    with scratch_redis_prefix() as prefix:
        yield prefix


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()
