"""`tiergate simulate`: monthly cost of a traffic mix on one flagship vs routed by tier."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from tiergate.observability.simulate import (
    SCENARIOS,
    TIERS,
    Plan,
    PlanResult,
    Traffic,
    TrafficError,
    catalog_plans,
    fleet_plan,
    read_traffic_file,
    scenario,
    scenario_traffic,
)
from tiergate.observability.simulate import simulate as run_simulation


def _plans(config_path: str | None) -> tuple[list[Plan], tuple[str, ...], dict[str, str]]:
    """Plans, tiers and model -> tier, from a config or the built-in catalog."""
    from tiergate.catalog import load_catalog

    catalog = load_catalog()
    if config_path is None:
        tier_of = {name: e.tier for name, e in catalog.entries.items()}
        return catalog_plans(catalog), TIERS, tier_of
    from tiergate.config.loader import build_fleet, load_config
    from tiergate.errors import ConfigError

    try:
        fleet = build_fleet(load_config(config_path), catalog)
    except ConfigError as exc:
        raise click.ClickException(f"{config_path}: " + "; ".join(exc.problems)) from None
    tier_of = {name: e.tier for name, e in catalog.entries.items()}
    tier_of.update({name: m.tier for name, m in fleet.models.items()})
    return [fleet_plan(fleet, Path(config_path).name)], fleet.tiers, tier_of


def _read(path: str, tier_of: dict[str, str], tiers: tuple[str, ...]) -> Traffic:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    size = Path(path).stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=size < 1_000_000,  # small files read in a blink; no bar to flash
    ) as bar:
        task = bar.add_task(f"reading {Path(path).name}", total=size)
        return read_traffic_file(
            path,
            tier_of.get,
            tiers=tiers,
            progress=lambda done: bar.update(task, completed=done),
        )


def _print_table(traffic: Traffic, results: list[PlanResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    mix = ", ".join(
        f"{tier} {load.requests / traffic.requests:.0%}"
        for tier, load in traffic.by_tier.items()
        if traffic.requests
    )
    table = Table(
        title=f"{traffic.source}: {traffic.note}, USD per month\nmix: {mix}",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("configuration", no_wrap=True)
    table.add_column("flagship only", justify="right")
    table.add_column("routed", justify="right")
    table.add_column("saving", justify="right", style="green")
    for r in results:
        models = "\n".join(f"[dim]{tier}:[/dim] {m}" for tier, (m, _usd) in r.per_tier.items())
        table.add_row(
            f"[bold]{r.plan}[/bold]\n{models}",
            f"${r.flagship_usd:,.2f}\n[dim]{r.flagship}[/dim]",
            f"${r.routed_usd:,.2f}",
            f"${r.saving_usd:,.2f}\n{r.saving_pct:.0f}%",
        )
    console.print(table)
    if traffic.skipped or traffic.untiered:
        console.print(
            f"[dim]{traffic.skipped:,} lines skipped (no tokens or failed); "
            f"{traffic.untiered:,} without a known tier counted as the middle tier[/dim]"
        )


def plot(traffic: Traffic, results: list[PlanResult], path: str) -> None:
    """A bar chart: flagship vs routed monthly cost per configuration, savings labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = range(len(results))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(results) + 2), 4.5), dpi=120)
    flagship = [r.flagship_usd for r in results]
    routed = [r.routed_usd for r in results]
    ax.bar([i - width / 2 for i in x], flagship, width, label="flagship only", color="#9aa5b1")
    bars = ax.bar(
        [i + width / 2 for i in x], routed, width, label="routed by tier", color="#2f80ed"
    )
    for bar, r in zip(bars, results, strict=True):
        ax.annotate(
            f"-{r.saving_pct:.0f}%",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=10,
            color="#1b5e20",
            fontweight="bold",
        )
    ax.set_xticks(list(x), [f"{r.plan}\nvs {r.flagship}" for r in results])
    ax.set_ylabel("USD per month")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"${v:,.0f}")
    ax.set_title(f"{traffic.source}: {traffic.note}", fontsize=11)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@click.command()
@click.option(
    "--scenario",
    "scenario_name",
    help=f"A named traffic mix: {', '.join(SCENARIOS)}.",
)
@click.option(
    "--traffic",
    "traffic_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Recorded traffic: JSON lines with input_tokens, output_tokens and tier (or model).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Price the models of this config (cheapest per tier) instead of the built-in catalog.",
)
@click.option(
    "--requests-per-month",
    type=click.FloatRange(min=0, min_open=True),
    help="Scale recorded traffic (or a scenario) to this many requests a month.",
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG chart.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def simulate(
    scenario_name: str | None,
    traffic_path: str | None,
    config_path: str | None,
    requests_per_month: float | None,
    plot_path: str | None,
    as_json: bool,
) -> None:
    """Monthly cost of a traffic mix on a single flagship model vs routed by tier."""
    if (scenario_name is None) == (traffic_path is None):
        raise click.UsageError("give exactly one of --scenario NAME and --traffic FILE")
    plans, tiers, tier_of = _plans(config_path)
    if scenario_name is not None:
        try:
            traffic = scenario_traffic(scenario(scenario_name))
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--scenario") from None
    else:
        assert traffic_path is not None
        try:
            traffic = _read(traffic_path, tier_of, tiers)
        except TrafficError as exc:
            raise click.ClickException(str(exc)) from None
        if not traffic.requests:
            raise click.ClickException(f"{traffic_path}: no lines with input and output tokens")
    if requests_per_month is not None and traffic.requests:
        traffic = traffic.scaled(
            requests_per_month / traffic.requests, f"{requests_per_month:,.0f} requests/month"
        )
    results = run_simulation(traffic, plans)
    if plot_path:
        plot(traffic, results, plot_path)
    if as_json:
        sys.stdout.write(
            orjson.dumps(
                {
                    "traffic": {
                        "source": traffic.source,
                        "note": traffic.note,
                        "requests": round(traffic.requests, 2),
                        "by_tier": {
                            t: {
                                "requests": round(load.requests, 2),
                                "input_tokens": round(load.input_tokens),
                                "output_tokens": round(load.output_tokens),
                            }
                            for t, load in traffic.by_tier.items()
                        },
                        "skipped": traffic.skipped,
                        "untiered": traffic.untiered,
                    },
                    "results": [r.to_json() for r in results],
                    "plot": plot_path,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
            + "\n"
        )
        return
    _print_table(traffic, results)
    if plot_path:
        click.echo(f"chart written to {plot_path}")
