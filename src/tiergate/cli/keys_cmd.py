"""`tiergate keys create|list|revoke`: virtual keys in the configured store (the SQLite
file `tiergate.db` by default, PostgreSQL when `ledger.url` or `store.url` says so)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson

from tiergate.errors import ClientError, ConfigError
from tiergate.store.db import DatabaseURL
from tiergate.store.keys import PERIODS, KeySpec, KeyStore, StoredKey

F = TypeVar("F", bound=Callable[..., Any])


def config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, exists=True),
        envvar="TIERGATE_CONFIG",
        help="YAML config (default: $TIERGATE_CONFIG, else embedded defaults).",
    )(f)


def database_url(config_path: str | None, *, for_keys: bool) -> DatabaseURL:
    """The key store's (or the ledger's) database, from the config or the defaults."""
    from tiergate.config.loader import load_config
    from tiergate.config.schema import Config

    try:
        config = load_config(config_path) if config_path else Config()
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        raise click.ClickException(f"the configuration has problems: {problems}") from None
    url = (config.store.url if for_keys else None) or config.ledger.url
    if url.startswith("memory://"):
        raise click.ClickException(f"{url} keeps nothing: configure ledger.url or store.url")
    try:
        return DatabaseURL.parse(url, config.ledger.table_prefix)
    except ConfigError as exc:
        raise click.ClickException("; ".join(exc.problems)) from None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _open(config_path: str | None) -> KeyStore:
    return KeyStore(database_url(config_path, for_keys=True))


def _audited(action: str, target: str, details: dict[str, object] | None = None) -> None:
    import getpass

    from tiergate.security.audit import AuditLog

    AuditLog.from_env().record(action, target, actor=f"cli:{getpass.getuser()}", details=details)


@click.group()
def keys() -> None:
    """Create, list and revoke virtual keys."""


@keys.command()
@click.option("--name", required=True, help="Unique name (tenant) of the key.")
@click.option("--budget", type=click.FloatRange(min=0), help="Spend limit in USD.")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True)
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute.")
@click.option("--models", help="Comma-separated models the key may use (default: all).")
@click.option("--tiers", help="Comma-separated tiers the key may use (default: all).")
@click.option("--routes", help="Comma-separated routes/targets the key may name (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
def create(
    name: str,
    budget: float | None,
    period: str,
    rpm: int | None,
    tpm: int | None,
    models: str | None,
    tiers: str | None,
    routes: str | None,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Create a key; its secret is printed this once and stored only as a hash."""
    spec = KeySpec(name, budget, period, rpm, tpm, _split(models), _split(tiers), _split(routes))
    store = _open(config_path)
    try:
        secret, stored = store.create(spec)
    except ClientError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    _audited("key.create", name, stored.public())
    if as_json:
        click.echo(orjson.dumps({"key": secret, **stored.public()}).decode())
        return
    click.echo(secret)
    click.echo(
        f"created key {name!r}; store the secret above now: it cannot be shown again",
        err=True,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@config_option
def list_(as_json: bool, show_all: bool, config_path: str | None) -> None:
    """List keys (never their secrets)."""
    store = _open(config_path)
    try:
        found = store.list(include_revoked=show_all)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps([k.public() for k in found]).decode())
        return
    _table(found)


def _table(found: list[StoredKey]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "hint", "budget", "rpm", "tpm", "allowed", "status")
    for k in found:
        info = k.info
        budget = f"${info.budget_usd:g}/{info.period}" if info.budget_usd is not None else "-"
        allowed = "; ".join(
            f"{label}: {','.join(sorted(values))}"
            for label, values in (
                ("models", info.models),
                ("tiers", info.tiers),
                ("routes", info.routes),
            )
            if values
        )
        table.add_row(
            info.name,
            k.hint,
            budget,
            str(info.rpm or "-"),
            str(info.tpm or "-"),
            allowed or "all",
            "revoked" if info.revoked else "active",
        )
    Console(file=sys.stdout).print(table)


@keys.command()
@click.argument("name")
@config_option
def revoke(name: str, config_path: str | None) -> None:
    """Revoke a key: refused by running gateways within their refresh interval (2 s)."""
    store = _open(config_path)
    try:
        stored = store.revoke(name)
    finally:
        store.close()
    if stored is None:
        raise click.ClickException(f"no key named {name!r}")
    _audited("key.revoke", name)
    click.echo(f"revoked key {name!r}", err=True)
