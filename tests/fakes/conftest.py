"""Fixtures: a fake upstream in the test's loop, and one in a thread for sync SDKs."""

from collections.abc import AsyncIterator, Iterator

import pytest

from tiergate.fakes import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def threaded() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread() as upstream:
        yield upstream


@pytest.fixture
def sync_fake(threaded: FakeUpstream) -> FakeUpstream:
    """The module's threaded fake, cleared for this test."""
    threaded.clear()
    return threaded
