"""The `learned` strategy through the real server, and reloading a retrained router file."""

from __future__ import annotations

import os

import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Reply
from tiergate.learned.artifact import save_artifact
from tiergate.learned.train import train_router
from tiergate.outcomes import OutcomeRecord
from tiergate.routing.learned import RouterWatcher


def _router_file(path, hard_needs_large: bool = True) -> None:
    records = []
    for i in range(30):
        easy, hard = f"hello there friend number {i}", f"solve this hard integral calculus {i}"
        records += [
            OutcomeRecord(model="small-model", score=1.0, prompt=easy),
            OutcomeRecord(model="large-model", score=1.0, prompt=easy),
            OutcomeRecord(model="small-model", score=0.0 if hard_needs_large else 1.0, prompt=hard),
            OutcomeRecord(model="large-model", score=1.0, prompt=hard),
        ]
    artifact, _ = train_router(records)
    tmp = f"{path}.tmp"
    save_artifact(tmp, artifact)
    os.replace(tmp, path)  # as a deploy would: readers see the old file or the new one


@pytest.fixture
def router_path(tmp_path):
    path = tmp_path / "router.bin"
    _router_file(path)
    return path


def test_learned_picks_the_cheapest_model_within_tolerance(start_gateway, fake, router_path):
    gw = start_gateway(
        three_tier_config(fake).replace(
            "routes:\n",
            f"routes:\n  auto:learned:\n    strategy: learned\n"
            f"    learned: {{path: {router_path}, tolerance: 0.1}}\n",
            1,
        )
    )
    fake.enqueue(Reply("hi!"), Reply("42"))
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(
        model="auto:learned", messages=[{"role": "user", "content": "hello there friend"}]
    )
    assert raw.headers["x-tiergate-model"] == "small-model"
    assert raw.headers["x-tiergate-reason"].startswith("learned: small-model predicted 0.")
    raw = client.chat.completions.with_raw_response.create(
        model="auto:learned",
        messages=[{"role": "user", "content": "solve this hard integral calculus"}],
    )
    assert raw.headers["x-tiergate-model"] == "large-model"
    assert "tolerance 0.1" in raw.headers["x-tiergate-reason"]


def test_a_changed_router_file_is_reloaded(start_gateway, fake, router_path):
    gw = start_gateway(
        three_tier_config(fake).replace(
            "routes:\n",
            f"routes:\n  auto:learned:\n    strategy: learned\n"
            f"    learned: {{path: {router_path}, tolerance: 0.1}}\n",
            1,
        )
    )
    hard = "solve this hard integral calculus"
    from tiergate.chat import ChatRequest, Message

    request = ChatRequest(model="auto:learned", messages=[Message(role="user", content=hard)])
    assert gw.gateway.router.decide(request).model.name == "large-model"
    _router_file(router_path, hard_needs_large=False)
    strategy = gw.gateway.routes["auto:learned"].learned
    assert strategy is not None
    watcher = RouterWatcher([strategy])
    assert watcher.check() == 1
    assert gw.gateway.router.decide(request).model.name == "small-model"
    router_path.write_bytes(b"not a router")  # a broken file keeps the old router in service
    assert watcher.check() == 0
    assert gw.gateway.router.decide(request).model.name == "small-model"
