"""A retrained router file swapped under a running gateway goes live without a restart
(the gateway's background `RouterWatcher`, not a test calling `check()`)."""

import time

from tests.conftest import three_tier_config
from tests.ingress.test_routing_learned import _router_file
from tiergate.fakes import Reply


def test_the_running_gateway_picks_up_a_swapped_router_file(start_gateway, fake, tmp_path):
    path = tmp_path / "router.bin"
    _router_file(path, hard_needs_large=True)
    gw = start_gateway(
        three_tier_config(fake).replace(
            "routes:\n",
            "routes:\n  auto:learned:\n    strategy: learned\n"
            f"    learned: {{path: {path}, tolerance: 0.1, reload_interval: 0.1}}\n",
            1,
        )
    )
    fake.respond_with(lambda prompt: Reply("ok"))
    client = gw.client()

    def routed_model() -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="auto:learned",
            messages=[{"role": "user", "content": "solve this hard integral calculus"}],
        )
        return raw.headers["x-tiergate-model"]

    assert routed_model() == "large-model"
    _router_file(path, hard_needs_large=False)  # atomic replace, as a deploy would do
    deadline = time.monotonic() + 10
    while routed_model() != "small-model":
        assert time.monotonic() < deadline, "the new router never went live"
        time.sleep(0.05)
