"""Shared fixtures: fake upstreams and a real gateway on a real socket."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from hypothesis import HealthCheck, settings

from tiergate.config.loader import parse_config
from tiergate.fakes import FakeUpstream
from tiergate.gateway import Gateway
from tiergate.ingress.app import create_app
from tiergate.ingress.server import BackgroundServer
from tiergate.ledger import MemoryLedger

# Timing-based health checks and deadlines fail on a loaded 2-core CI machine without
# saying anything about the code; property tests keep their full example counts.
settings.register_profile(
    "tiergate", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("tiergate")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "routing"

_PROXY_VARIABLES = tuple(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    for name in (base, base.lower())
)


@pytest.fixture(autouse=True, scope="session")
def _no_proxy_from_the_machine() -> Iterator[None]:
    """Every test talks to servers on this machine: a proxy the machine is set up with (a
    CI runner's, say) must not come between them, in this process or in the servers it
    starts. Tests of the proxy settings set their own variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        yield


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.in_thread(api_key="sk-upstream") as upstream:
        yield upstream


@dataclass
class LiveGateway:
    gateway: Gateway
    server: BackgroundServer
    memory_ledger: MemoryLedger

    @property
    def ledger(self) -> MemoryLedger:
        """The ledger, once every answer sent so far is booked (see `BackgroundServer.settled`)."""
        self.server.settled()
        return self.memory_ledger

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, key: str = "tg-test-key", **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=key,
            max_retries=0,
            **kwargs,  # type: ignore[arg-type]
        )


def three_tier_config(fake: FakeUpstream, extra: str = "") -> str:
    """The PRODUCT.md example config, pointed at a fake upstream."""
    return textwrap.dedent(
        f"""
        providers:
          upstream:
            kind: openai
            base_url: {fake.base_url("openai")}
            api_key: sk-upstream
            timeout: {{connect: 2, first_byte: 3, inactivity: 3, total: 10}}
        models:
          small-model:  {{provider: upstream, model: mock-small, tier: budget,   price: {{input: 0.05, output: 0.40}}}}
          medium-model: {{provider: upstream, model: mock-medium, tier: standard, price: {{input: 0.25, output: 2.00}}}}
          large-model:  {{provider: upstream, model: mock-large, tier: premium,  price: {{input: 2.50, output: 15.00}}}}
        routes:
          auto:
            strategy: rules
            fallback: {{retries: 1, backoff_base: 0.01, backoff_max: 0.05}}
        keys:
          - {{name: test, key: tg-test-key}}
        """
    ) + textwrap.dedent(extra)


@pytest.fixture
def start_gateway() -> Iterator[Callable[[str], LiveGateway]]:
    started: list[LiveGateway] = []

    def start(config_text: str) -> LiveGateway:
        ledger = MemoryLedger()
        gateway = Gateway.from_config(parse_config(config_text), ledger=ledger)
        server = BackgroundServer(create_app(gateway)).start()
        live = LiveGateway(gateway, server, ledger)
        started.append(live)
        return live

    yield start
    for live in started:
        live.server.stop()


@pytest.fixture
def gw(fake: FakeUpstream, start_gateway: Callable[[str], LiveGateway]) -> LiveGateway:
    return start_gateway(three_tier_config(fake))
