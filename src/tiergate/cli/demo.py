"""`tiergate demo`: the whole product, offline, in under a minute."""

from __future__ import annotations

import asyncio

import click
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table


@click.command()
@click.option("--requests", "size", default=210, show_default=True, type=click.IntRange(10, 5000))
@click.option("--concurrency", default=24, show_default=True, type=click.IntRange(1, 256))
@click.option("--serve", is_flag=True, help="Keep the gateway running afterwards (dashboard).")
@click.option("--port", type=int, default=None, help="Port for the gateway (default: free).")
def demo(size: int, concurrency: int, serve: bool, port: int | None) -> None:
    """Replay a mixed workload through model="auto" against simulated providers."""
    from tiergate.demo.run import run_demo, summarize

    console = Console()
    console.print(
        "[bold]tiergate demo[/]: simulated OpenAI, Anthropic and Gemini providers "
        "(no network, no keys), a real gateway, the official OpenAI SDK as the client.\n"
    )
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("replaying workload", total=size)
        result = asyncio.run(
            run_demo(
                size=size,
                concurrency=concurrency,
                on_progress=lambda: progress.advance(task),
                serve_after=serve,
                port=port,
            )
        )
    s = summarize(result)
    table = Table(
        title=(
            f'Where {s["requests"]} requests went (model="auto", "auto:support", '
            '"auto:assistant", "auto:chat")'
        ),
        caption=f"last column: the same requests on {result.flagship} alone",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("kind", overflow="fold")
    table.add_column("tier", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("reqs", justify="right", no_wrap=True)
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("flagship", justify="right", no_wrap=True)
    for (kind, tier, model), (count, cost, base) in s["rows"]:  # type: ignore[attr-defined]
        table.add_row(kind, tier, model, str(int(count)), f"${cost:.4f}", f"${base:.4f}")
    console.print(table)
    total, baseline = float(s["total"]), float(s["baseline"])  # type: ignore[arg-type]
    saved = 1 - total / baseline if baseline else 0.0
    console.print(
        f"Total: [bold]${total:.4f}[/] routed vs [bold]${baseline:.4f}[/] on {result.flagship} "
        f"alone: [bold green]{saved:.0%} saved[/]."
    )
    used = ", ".join(f"{k} {v}" for k, v in sorted(s["strategies"].items()))  # type: ignore[attr-defined]
    console.print(
        f"Strategies: {used}. The support route's cascade checked every cheap answer and "
        f"escalated the {s['escalated']} that hedged (the rejected answers cost "
        f"${float(s['escalation_usd']):.6f}, included above)."  # type: ignore[arg-type]
    )
    races = ", ".join(f"{k} {v}" for k, v in sorted(s["speculative"].items()))  # type: ignore[attr-defined]
    classified = s["strategies"].get("classifier", 0)  # type: ignore[attr-defined]
    console.print(
        f"The assistant route's classifier (a budget model) labelled {classified} open "
        f"question(s) with {s['classifier_calls']} call(s), repeats from its cache; the chat "
        f"route raced cheap and premium answers ({races})."
    )
    if s["legal_reason"]:
        console.print(f"A contract question tagged legal: [italic]{s['legal_reason']}[/].")
    protocols = ", ".join(f"{k}: {v}" for k, v in sorted(s["by_protocol"].items()))  # type: ignore[attr-defined]
    console.print(f"Served by protocol: {protocols}.")
    console.print(
        f"Failover: {s['fallback_requests']} request(s) needed it "
        f"({s['failed_attempts']} failed upstream attempt(s) absorbed); "
        f"{result.failed_requests} request(s) failed for the client. "
        f"Took {result.seconds:.1f} s."
    )
    if not serve:
        console.print(
            "Dashboard: run [bold]tiergate demo --serve[/] and open the printed /dashboard URL."
        )
