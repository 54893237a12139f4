"""`tiergate serve` with PRODUCT.md's example configuration, verbatim, as a real process."""

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.config.test_loader import PRODUCT_EXAMPLE
from tests.serving import wait_ready
from tiergate.fakes import FakeUpstream, Reply
from tiergate.ingress.server import free_port


def test_serve_product_example_verbatim(tmp_path: Path):
    try:
        upstream = FakeUpstream(port=18080, api_key="sk-upstream-secret").start_in_thread()
    except OSError:
        pytest.skip("port 18080 (the example's upstream) is in use on this machine")
    config = tmp_path / "tiergate.yaml"
    config.write_text(PRODUCT_EXAMPLE)
    port = free_port()
    env = dict(os.environ, UPSTREAM_KEY="sk-upstream-secret", TIERGATE_KEY="tg-bench-key")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiergate", "serve", "--config", str(config), "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc, lambda: proc.stderr.read().decode() if proc.stderr else "(no output)")
        upstream.enqueue(Reply("served", input_tokens=10, output_tokens=2))
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="tg-bench-key", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hello"}]
        )
        assert raw.parse().choices[0].message.content == "served"
        assert raw.headers["x-tiergate-model"] == "small-model"
        assert upstream.last.headers["authorization"] == "Bearer sk-upstream-secret"
        models = {m.id for m in client.models.list()}
        assert {"small-model", "medium-model", "large-model", "auto"} <= models
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        upstream.stop_thread()


def test_serve_refuses_to_start_with_a_missing_env_var(tmp_path: Path):
    config = tmp_path / "tiergate.yaml"
    config.write_text(PRODUCT_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in ("UPSTREAM_KEY", "TIERGATE_KEY")}
    result = subprocess.run(
        [sys.executable, "-m", "tiergate", "serve", "--config", str(config)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"environment variable UPSTREAM_KEY is not set" in result.stderr
