"""LiteLLM's proxy against the same static upstream, for the side-by-side figure.

Used by bench/run.py only when a `litellm` executable exists (install it in a separate
virtualenv, never in tiergate's: `python -m venv /tmp/litellm && /tmp/litellm/bin/pip
install 'litellm[proxy]'`, then `--litellm /tmp/litellm/bin/litellm`). One worker, the
virtual key as its master key, `auto` mapped to the upstream: the same request as tiergate
gets. Measured in RESULTS.md's 2026-11-23 run (LiteLLM 1.106.2).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from procs import KEY, free_port, http_get, pinned, stop, wait_port

CONFIG = """\
model_list:
  - model_name: auto
    litellm_params:
      model: openai/mock-model
      api_base: {upstream}
      api_key: upstream-secret
general_settings:
  master_key: {key}
"""


class LiteLLM:
    def __init__(self, exe: str, root: Path, upstream: str, cpus: str | None) -> None:
        self.port = free_port()
        config = root / "litellm.yaml"
        config.write_text(CONFIG.format(upstream=upstream, key=KEY))
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        # `litellm --version` also prints warnings (e.g. it cannot fetch its price list
        # offline): keep the line that carries a version number.
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if re.search(r"\d+\.\d+", ln)]
        versioned = [ln for ln in lines if "version" in ln.lower()] or lines
        self.version = versioned[-1:] or ["unknown"]
        cmd = [exe, "--config", str(config), "--port", str(self.port), "--num_workers", "1"]
        self._log = (root / "litellm.log").open("ab")
        self.proc = subprocess.Popen(pinned(cmd, cpus), stdout=self._log, stderr=self._log)
        try:
            wait_port(self.port, self.proc, "litellm", timeout=120)
            deadline = time.monotonic() + 60
            while http_get(f"{self.url}/health/liveliness")[0] != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("litellm never became live")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)
        if not self._log.closed:
            self._log.close()
