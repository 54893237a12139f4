"""Routers built from config text, without a server."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from tiergate.chat import ChatRequest, Message
from tiergate.config.loader import build_fleet, parse_config
from tiergate.routing.route import build_routes
from tiergate.routing.router import Router

MODELS = """
providers:
  upstream: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: x}
models:
  small-model:  {provider: upstream, model: mock-small, tier: budget,   price: {input: 0.05, output: 0.40}}
  cheap-out:    {provider: upstream, model: mock-co, tier: budget,   price: {input: 0.10, output: 0.20}}
  medium-model: {provider: upstream, model: mock-medium, tier: standard, price: {input: 0.25, output: 2.00}}
  large-model:  {provider: upstream, model: mock-large, tier: premium,  price: {input: 2.50, output: 15.00}}
use_catalog: false
"""


def make_router(
    routes: str = "",
    cooling: Callable[[str], bool] | None = None,
    latency: Callable[[str], float | None] | None = None,
) -> Router:
    config = parse_config(MODELS + textwrap.dedent(routes))
    fleet = build_fleet(config)
    return Router(fleet, build_routes(config, fleet), cooling=cooling, latency=latency)


def ask(text: str, model: str = "auto", **fields: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content=text)], **fields)  # type: ignore[arg-type]


@pytest.fixture
def router() -> Router:
    return make_router()
