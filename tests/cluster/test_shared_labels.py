"""The classifier's label cache is shared through Redis: a label paid for on one instance is
reused by another without a classifier call."""

import time

import pytest

from tests.conftest import three_tier_config
from tiergate.fakes import Reply
from tiergate.store.testing import REDIS_URL, scratch_redis_prefix

pytestmark = pytest.mark.redis

ROUTE = "  auto:x:\n    strategy: classifier\n    classifier: {model: small-model}\n"


def _ask(gw, text):
    return gw.client().chat.completions.with_raw_response.create(
        model="auto:x", messages=[{"role": "user", "content": text}]
    )


def test_label_from_one_instance_is_used_by_another(fake, start_gateway):
    with scratch_redis_prefix() as prefix:
        text = three_tier_config(fake, f"redis: {{url: '{REDIS_URL}', prefix: '{prefix}'}}\n")
        text = text.replace("routes:\n", "routes:\n" + ROUTE, 1)
        one, two = start_gateway(text), start_gateway(text)
        fake.enqueue(Reply("COMPLEX"), model="mock-small")
        fake.enqueue(Reply("deep answer"), model="mock-large")
        first = _ask(one, "Prove that there are infinitely many primes.")
        assert first.headers["x-tiergate-model"] == "large-model"
        time.sleep(0.2)  # the label is written back in the background
        fake.enqueue(Reply("deep answer again"), model="mock-large")
        second = _ask(two, "Prove that there are infinitely many primes.")
        assert "classifier: COMPLEX (cached)" in second.headers["x-tiergate-reason"]
        assert second.headers["x-tiergate-model"] == "large-model"
        assert fake.calls_for(model="mock-small") == 1  # one classifier call for both
