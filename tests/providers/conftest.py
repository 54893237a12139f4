"""The fake upstream every end-to-end adapter test talks to, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.providers.adapter_kit import E2E_KEY
from tiergate.fakes import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(api_key=E2E_KEY) as upstream:
        yield upstream
