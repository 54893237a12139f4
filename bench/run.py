"""tiergate's benchmark: a static upstream called directly and through the gateway.

How to run (from the repository root, as a user who may start nginx; nothing is left
running afterwards):

    apt-get install -y nginx wrk      # once (Debian/Ubuntu)
    .venv/bin/python bench/run.py     # about 5 minutes; prints every figure
    .venv/bin/python bench/run.py --memory 1000000   # adds the long memory run (7 min at 2,500/s)

One run starts nginx (bench/nginx.conf: a fixed chat completion and fixed SSE streams) and
bench/paced_upstream.py (a stream paced one event per millisecond),
starts `tiergate serve --config bench/tiergate.yaml` (virtual-key auth, the `rules` route,
SQLite ledger, metrics, request log, exact cache), drives both with wrk and bench/post.lua
(every prompt differs, so every request is a cache miss) and with a small streaming client,
and prints: added latency at concurrency 1 (direct and gateway runs in alternating rounds,
the median round's difference), requests/s at concurrency 64, streaming time to
first byte and 1,000-chunk stream time, optional memory samples, and `--workers` scaling.
If a `litellm` executable is found (PATH or --litellm) it is measured the same way.

With --pin the gateway is pinned to CPU 1 and nginx and wrk to CPU 0, so that "one gateway
process" gets one core (the workers-scaling runs are never pinned). Pinning helps only on an
otherwise idle machine: when other processes compete for the CPUs, a pinned gateway waits
in one CPU's run queue and latency gets worse, so it is off by default. This is not part of
`make test`: benchmarks print figures, tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import chat_json, sse_stream
from procs import Gateway, Nginx, PacedUpstream, wrk
from stream_client import StreamClient, Timing

PACED_INTERVAL_MS = 1.0  # between events of the paced 1,000-chunk stream (~1.1 s in all)


def _ms(us: float) -> str:
    return f"{us / 1000:.3f} ms"


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, stack: ExitStack) -> None:
        self.args = args
        self.root = root
        self.stack = stack
        self.pin = args.pin and (os.cpu_count() or 1) >= 2
        self.results: dict[str, Any] = {"meta": _meta(args)}
        root.chmod(0o755)  # nginx workers run as an unprivileged user
        files = root / "files"
        files.mkdir()
        (files / "stream-short.sse").write_bytes(sse_stream(20))
        (files / "stream-1000.sse").write_bytes(sse_stream(1000))
        self.nginx = Nginx(root, chat_json(), self._cpu("0"))
        stack.callback(self.nginx.stop)

    def _cpu(self, cpus: str) -> str | None:
        return cpus if self.pin else None

    def gateway(
        self,
        prefix: str = "/v1",
        workers: int = 1,
        pin: bool = True,
        upstream_port: int | None = None,
    ) -> Gateway:
        gw = Gateway(
            self.root,
            f"http://127.0.0.1:{upstream_port or self.nginx.port}{prefix}",
            workers=workers,
            cpus=self._cpu("1") if pin else None,
        )
        self.stack.callback(gw.stop)
        return gw

    def load(self, url: str, connections: int, duration: float, pin: bool = True) -> dict[str, Any]:
        cpus = self._cpu("0") if pin else None
        return wrk(url, connections=connections, duration=duration, cpus=cpus)

    # -- phases ----------------------------------------------------------------------------

    def latency_and_throughput(self) -> None:
        a = self.args
        gw = self.gateway()
        direct = self.nginx.url("/v1/chat/completions")
        through = f"{gw.url}/v1/chat/completions"
        self.load(through, 8, a.warmup)  # warm the pools, the caches and the JIT-less interpreter
        self.load(direct, 1, 1)
        out: dict[str, Any] = {}
        # c=1: direct and through the gateway in turns, so that a slow spell of the machine
        # weighs on both; the added latency is taken per round, the median of the rounds
        # is reported.
        rounds: list[dict[str, dict[str, float]]] = []
        for _ in range(a.rounds):
            rounds.append(
                {
                    "direct": self.load(direct, 1, a.duration / a.rounds),
                    "tiergate": self.load(through, 1, a.duration / a.rounds),
                }
            )
        out["c1_rounds"] = rounds
        for q in ("p50_us", "p99_us"):
            out[f"c1_added_{q}"] = statistics.median(
                r["tiergate"][q] - r["direct"][q] for r in rounds
            )
        middle = sorted(rounds, key=lambda r: r["tiergate"]["p50_us"] - r["direct"]["p50_us"])
        out["c1_direct"] = middle[len(middle) // 2]["direct"]
        out["c1_tiergate"] = middle[len(middle) // 2]["tiergate"]
        for name, url in (("direct", direct), ("tiergate", through)):
            cpu = gw.cpu_seconds()
            out[f"c64_{name}"] = self.load(url, 64, a.duration)
            if name == "tiergate":
                cpu = gw.cpu_seconds() - cpu
                out["cpu_us_per_request"] = cpu / out["c64_tiergate"]["requests"] * 1e6
        out["ledger_rows"] = None
        out["metrics_requests"] = gw.requests_counted()
        gw.stop()
        out["ledger_rows"] = _ledger_rows(self.root / "ledger.db")
        out["wrk_requests_to_gateway"] = (
            out["c1_tiergate"]["requests"] + out["c64_tiergate"]["requests"]
        )
        self.results["nonstream"] = out
        d1, t1 = out["c1_direct"], out["c1_tiergate"]
        d64, t64 = out["c64_direct"], out["c64_tiergate"]
        print("\n== non-streaming chat completions (every request a cache miss) ==")
        for i, r in enumerate(rounds, 1):
            d, t = r["direct"], r["tiergate"]
            print(
                f"c=1   round {i}: direct p50 {_ms(d['p50_us'])} p99 {_ms(d['p99_us'])}; "
                f"tiergate p50 {_ms(t['p50_us'])} p99 {_ms(t['p99_us'])}; "
                f"added p50 {_ms(t['p50_us'] - d['p50_us'])} p99 {_ms(t['p99_us'] - d['p99_us'])}"
            )
        print(f"c=1   direct   p50 {_ms(d1['p50_us'])}  p99 {_ms(d1['p99_us'])}  (median round)")
        print(f"c=1   tiergate p50 {_ms(t1['p50_us'])}  p99 {_ms(t1['p99_us'])}  (median round)")
        print(
            f"c=1   added    p50 {_ms(out['c1_added_p50_us'])}"
            f"  p99 {_ms(out['c1_added_p99_us'])}  (median of {len(rounds)} rounds)"
        )
        print(f"c=64  direct   {d64['rps']:.0f} req/s  errors {d64['errors']:.0f}")
        print(
            f"c=64  tiergate {t64['rps']:.0f} req/s  errors {t64['errors']:.0f}"
            f"  p50 {_ms(t64['p50_us'])}  p99 {_ms(t64['p99_us'])}"
        )
        cpu_us = out["cpu_us_per_request"]
        print(
            f"c=64  tiergate CPU {cpu_us:.0f} us/request (user+sys of the gateway process): "
            f"at most {1e6 / cpu_us:.0f} req/s on one free core"
        )
        print(
            f"ledger rows {out['ledger_rows']}, metrics count {out['metrics_requests']:.0f}, "
            f"wrk completed {out['wrk_requests_to_gateway']:.0f} (+ warm-up)"
        )

    def streaming(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        paced = PacedUpstream(PACED_INTERVAL_MS, 1000)
        self.stack.callback(paced.stop)
        cases = [
            ("short", self.nginx.port, "/sse", a.stream_requests),
            ("c1000", self.nginx.port, "/sse1000", a.stream_requests // 4),
            ("c1000_paced", paced.port, "", a.paced_requests),
        ]
        print("\n== streaming (sequential, one connection) ==")
        for name, port, prefix, n in cases:
            gw = self.gateway(prefix + "/v1", upstream_port=port)
            direct = _stream_times(port, prefix + "/v1/chat/completions", n)
            through = _stream_times(gw.port, "/v1/chat/completions", n)
            gw.stop()
            out[name] = {"direct": direct, "tiergate": through}
            label = {"short": "22-chunk", "c1000": "1000-chunk", "c1000_paced": "1000 paced"}
            added = through["first_event_p50"] - direct["first_event_p50"]
            token = through["first_content_p50"] - direct["first_content_p50"]
            print(
                f"{label[name]:>10}: first event direct {_f(direct['first_event_p50'])} "
                f"tiergate {_f(through['first_event_p50'])} (added {_f(added)}"
                f", p99 added {_f(through['first_event_p99'] - direct['first_event_p99'])}); "
                f"first text direct {_f(direct['first_content_p50'])} "
                f"tiergate {_f(through['first_content_p50'])} (added {_f(token)}); "
                f"total "
                f"direct {_f(direct['total_p50'])} tiergate {_f(through['total_p50'])} "
                f"(+{(through['total_p50'] / direct['total_p50'] - 1) * 100:.1f}%)"
            )
        self.results["streaming"] = out

    def workers(self) -> None:
        a = self.args
        out: dict[str, Any] = {}
        print("\n== --workers scaling (not pinned; nginx and wrk share the same cores) ==")
        for n in a.workers:
            try:
                gw = self.gateway(workers=n, pin=False)
            except RuntimeError as exc:
                out[str(n)] = {"error": str(exc)}
                print(f"workers={n}: the gateway did not start ({exc})")
                continue
            url = f"{gw.url}/v1/chat/completions"
            self.load(url, 64, a.warmup, pin=False)
            r = self.load(url, 64, a.duration, pin=False)
            gw.stop()
            out[str(n)] = r
            print(f"workers={n}: {r['rps']:.0f} req/s, errors {r['errors']:.0f}")
        self.results["workers"] = out

    def memory(self) -> None:
        a = self.args
        gw = self.gateway()
        url = f"{gw.url}/v1/chat/completions"
        samples: list[tuple[int, int]] = [(0, gw.rss_kib())]
        total = 0
        errors = 0.0
        print(f"\n== memory: {a.memory:,} requests at c=64, RSS after each segment ==")
        deadline = time.monotonic() + a.memory_max_seconds
        while total < a.memory and time.monotonic() < deadline:
            r = self.load(url, 64, a.memory_segment)
            total += int(r["requests"])
            errors += r["errors"]
            samples.append((total, gw.rss_kib()))
            anon, mapped = gw.rss_kib("RssAnon") / 1024, gw.rss_kib("RssFile") / 1024
            print(
                f"  {total:>9,} requests  RSS {samples[-1][1] / 1024:.1f} MiB "
                f"(anon {anon:.1f}, file {mapped:.1f})",
                flush=True,
            )
        gw.stop()
        base = next((s for s in samples if s[0] >= 50_000), samples[-1])
        growth = (samples[-1][1] / base[1] - 1) * 100
        print(
            f"RSS at {base[0]:,}: {base[1] / 1024:.1f} MiB; at {samples[-1][0]:,}: "
            f"{samples[-1][1] / 1024:.1f} MiB ({growth:+.1f}%); errors {errors:.0f}"
        )
        self.results["memory"] = {"samples": samples, "errors": errors, "growth_pct": growth}

    def litellm(self, exe: str) -> None:
        from litellm_side import LiteLLM

        a = self.args
        proxy = LiteLLM(exe, self.root, self.nginx.url("/v1"), self._cpu("1"))
        self.stack.callback(proxy.stop)
        url = f"{proxy.url}/v1/chat/completions"
        self.load(url, 8, a.warmup)
        c1 = self.load(url, 1, a.duration)
        c64 = self.load(url, 64, a.duration)
        proxy.stop()
        self.results["litellm"] = {"c1": c1, "c64": c64, "version": proxy.version[0]}
        d1 = self.results["nonstream"]["c1_direct"]
        print(f"\n== LiteLLM proxy {proxy.version[0]} (one worker), same upstream and load ==")
        print(
            f"c=1   p50 {_ms(c1['p50_us'])} (added {_ms(c1['p50_us'] - d1['p50_us'])})"
            f"  p99 {_ms(c1['p99_us'])} (added {_ms(c1['p99_us'] - d1['p99_us'])})"
        )
        print(f"c=64  {c64['rps']:.0f} req/s  errors {c64['errors']:.0f}")


def _f(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _stream_times(port: int, path: str, n: int) -> dict[str, float]:
    client = StreamClient("127.0.0.1", port, path, "sk-bench-0123456789")
    try:
        for _ in range(min(20, n)):
            client.fetch()  # warm-up
        runs: list[Timing] = [client.fetch() for _ in range(n)]
    finally:
        client.close()

    def pct(get: Callable[[Timing], float], q: float) -> float:
        values = sorted(get(t) for t in runs)
        return values[min(len(values) - 1, int(q * len(values)))]

    return {
        "n": n,
        "ttfb_p50": pct(lambda t: t.first_byte_s, 0.5),
        "ttfb_p99": pct(lambda t: t.first_byte_s, 0.99),
        "first_event_p50": pct(lambda t: t.first_event_s, 0.5),
        "first_event_p99": pct(lambda t: t.first_event_s, 0.99),
        "first_content_p50": pct(lambda t: t.first_content_s, 0.5),
        "first_content_p99": pct(lambda t: t.first_content_s, 0.99),
        "total_p50": pct(lambda t: t.total_s, 0.5),
        "total_p99": pct(lambda t: t.total_s, 0.99),
        "total_mean": statistics.fmean(t.total_s for t in runs),
        "bytes": runs[-1].body_bytes,
    }


def _ledger_rows(db: Path) -> int | None:
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        table = next((n for n in names if n.endswith("ledger")), None)
        if table is None:
            return None
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def calibrate() -> float:
    """Microseconds for one small json.dumps, best of 5: how fast this interpreter runs right
    now. A quiet modern core takes about 1.5-2 us; on a shared machine under load it can take
    several times longer, and every figure below is slowed down by the same factor."""
    import timeit

    timer = timeit.Timer("dumps(d)", "from json import dumps; d={'a': 1, 'b': [1, 2, 3], 'c': 'x'}")
    return min(timer.repeat(repeat=5, number=20_000)) / 20_000 * 1e6


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import version

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    import tiergate

    # The tree the gateway runs from (PYTHONPATH may point at another checkout than bench/).
    src = str(Path(tiergate.__file__).resolve().parent)
    commit = _version(["git", "-C", src, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", src, "status", "--porcelain", "--", "."], capture_output=True, text=True
    ).stdout.strip()
    commit += " (+ uncommitted changes)" if dirty else ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit,
        "tiergate_source": src,
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "-v"]),
        "packages": {
            p: version(p)
            for p in ("tiergate", "uvicorn", "starlette", "aiohttp", "msgspec", "uvloop")
        },
        "argv": sys.argv,
        "pinned": args.pin,
        "load_average": os.getloadavg(),
        "calibration_json_dumps_us": round(calibrate(), 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per gateway")
    p.add_argument(
        "--rounds", type=int, default=3, help="c=1: direct and gateway runs taken in turns"
    )
    p.add_argument("--stream-requests", type=int, default=2000)
    p.add_argument("--paced-requests", type=int, default=20)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--memory", type=int, default=0, help="requests in the memory run (0: skip)")
    p.add_argument("--memory-segment", type=float, default=5, help="seconds between samples")
    p.add_argument("--memory-max-seconds", type=float, default=3600, help="bound on the run")
    p.add_argument("--pin", action="store_true", help="gateway on CPU 1, nginx and wrk on 0")
    p.add_argument("--only", nargs="*", default=["nonstream", "streaming", "workers", "litellm"])
    p.add_argument("--litellm", default=None, help="the litellm executable (default: PATH)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = p.parse_args()
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so nginx and the gateway are stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="tiergate-bench-") as tmp, ExitStack() as stack:
        bench = Bench(args, Path(tmp), stack)
        print(json.dumps(bench.results["meta"], indent=1))
        if "nonstream" in args.only:
            bench.latency_and_throughput()
        if "streaming" in args.only:
            bench.streaming()
        if args.workers and "workers" in args.only:
            bench.workers()
        if args.memory:
            bench.memory()
        exe = args.litellm or _which("litellm")
        if exe and "litellm" in args.only and "nonstream" in bench.results:
            bench.litellm(exe)
        bench.results["end"] = {
            "load_average": os.getloadavg(),
            "calibration_json_dumps_us": round(calibrate(), 2),
        }
        print(f"\nat the end: {json.dumps(bench.results['end'])}")
        if args.json:
            args.json.write_text(json.dumps(bench.results, indent=1))


def _which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


if __name__ == "__main__":
    main()
