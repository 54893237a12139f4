"""Long-running commands show progress in a terminal: `simulate` over a large file and
`eval` run under a pseudo-terminal, and the bar's text is read back from it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def in_terminal(*args: str, timeout: float = 120) -> str:
    """Run `tiergate ARGS` with stdout and stderr on a pseudo-terminal; all it wrote."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tiergate"), *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            assert ready, "no output before the timeout"
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        os.close(master)
        assert proc.wait(timeout=timeout) == 0, out.decode("utf-8", "replace")[-2000:]
    return out.decode("utf-8", "replace")


def test_simulate_over_a_large_file_shows_a_progress_bar(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    row = json.dumps({"input_tokens": 200, "output_tokens": 400, "tier": "budget"}) + "\n"
    path.write_text(row * 200_000)  # ~10 MB
    out = in_terminal("simulate", "--traffic", str(path))
    assert f"reading {path.name}" in out and "MB" in out  # the bar: bytes read of the total
    assert "flagship only" in out  # and then the table


def test_eval_shows_a_progress_bar(tmp_path: Path) -> None:
    out = in_terminal(
        "eval", "--suite", str(EXAMPLES / "eval-suite.jsonl"),
        "--config", str(EXAMPLES / "eval-config.yaml"),
        "--models", "small-model,medium-model", "--judge", "large-model", "--fake",
        "--out", str(tmp_path / "o.jsonl"),
    )  # fmt: skip
    assert "16 cases x 2 models" in out  # the bar's label...
    assert re.search(r"\b\d+/32\b", out)  # ...and its count of the total
