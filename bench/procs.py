"""Starting, waiting for and stopping the processes a benchmark run needs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
KEY = "sk-bench-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: Sequence[str], cpus: str | None) -> list[str]:
    """`cmd` restricted to `cpus` (e.g. "0") when taskset exists and a set is given."""
    if cpus is None or shutil.which("taskset") is None:
        return list(cmd)
    return ["taskset", "-c", cpus, *cmd]


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM (graceful: the gateway flushes its ledger), then SIGKILL if it hangs."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Nginx:
    """The static upstream (bench/nginx.conf), in the scratch directory `root`."""

    def __init__(self, root: Path, chat_json: str, cpus: str | None) -> None:
        self.root = root
        self.port = free_port()
        conf = (BENCH / "nginx.conf").read_text()
        for name, value in {
            "@PORT@": str(self.port),
            "@ROOT@": str(root),
            "@CHAT_JSON@": chat_json,
        }.items():
            conf = conf.replace(name, value)
        (root / "nginx.conf").write_text(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        cmd = [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "e.log")]
        self.proc = subprocess.Popen(pinned(cmd, cpus), stdout=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "nginx")

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"

    def stop(self) -> None:
        stop(self.proc)


class PacedUpstream:
    """bench/paced_upstream.py: the 1,000-chunk stream, one event every `interval_ms`."""

    def __init__(self, interval_ms: float, chunks: int) -> None:
        self.port = free_port()
        cmd = [sys.executable, str(BENCH / "paced_upstream.py"), str(self.port)]
        cmd += [str(interval_ms), str(chunks)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "the paced upstream")

    def url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{prefix}"

    def stop(self) -> None:
        stop(self.proc)


class Gateway:
    """`tiergate serve --config bench/tiergate.yaml` against the given upstream base URL."""

    def __init__(
        self,
        root: Path,
        upstream: str,
        *,
        workers: int = 1,
        cpus: str | None = None,
        config: Path = BENCH / "tiergate.yaml",
    ) -> None:
        self.port = free_port()
        self.workers = workers
        tiergate = Path(sys.executable).parent / "tiergate"
        env = {
            **os.environ,
            "BENCH_UPSTREAM": upstream,
            "BENCH_DIR": str(root),
            "UPSTREAM_KEY": "upstream-secret",
            "TIERGATE_KEY": KEY,
        }
        cmd = [str(tiergate), "serve", "--config", str(config), "--port", str(self.port)]
        cmd += ["--workers", str(workers)]
        self._log = (root / "gateway.log").open("ab")
        self.proc = subprocess.Popen(
            pinned(cmd, cpus), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._logpath = root / "gateway.log"
        try:
            wait_port(self.port, self.proc, "the gateway", timeout=60)
            deadline = time.monotonic() + 60
            while http_get(f"{self.url}/health/ready")[0] != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway never became ready")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            tail = self._logpath.read_text(errors="replace").splitlines()[-30:]
            print("\n".join(["gateway log (last lines):", *tail]), file=sys.stderr)
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pids(self) -> list[int]:
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        return pids

    def rss_kib(self, field: str = "VmRSS") -> int:
        """Resident memory of the serving process(es): the parent plus any workers.
        `field` may also be RssAnon (heap) or RssFile (mapped files, e.g. SQLite's)."""
        total = 0
        for pid in self._pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the serving process(es) so far: a figure that other load
        on the machine does not distort, unlike requests/s."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self._pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def requests_counted(self) -> float:
        """The sum of `tiergate_requests_total` over every label set (this process only)."""
        status, body = http_get(f"{self.url}/metrics")
        if status != 200:
            return float("nan")
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in body.decode().splitlines()
            if line.startswith("tiergate_requests_total{")
        )

    def stop(self) -> None:
        stop(self.proc)
        if not self._log.closed:
            self._log.close()


def wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    stream: bool = False,
    cpus: str | None = None,
) -> dict[str, float]:
    """One bounded wrk run with bench/post.lua; its `done` JSON line as a dict."""
    host, _, path = url.removeprefix("http://").partition("/")
    env = {**os.environ, "BENCH_PATH": "/" + path, "BENCH_KEY": KEY}
    if stream:
        env["BENCH_STREAM"] = "1"
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
    ]
    cmd += ["-s", str(BENCH / "post.lua"), f"http://{host}"]
    out = subprocess.run(
        pinned(cmd, cpus), env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in reversed(out.splitlines()) if ln.startswith("{"))
    result: dict[str, float] = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(v for k, v in result.items() if k.startswith("errors_"))
    return result
