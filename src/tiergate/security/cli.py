"""`tiergate secrets keygen|rotate`: data keys for secrets at rest, and their rotation."""

from __future__ import annotations

import sys
from typing import TextIO

import click


@click.group()
def secrets() -> None:
    """Data keys for secrets stored at rest (AES-256-GCM, TIERGATE_DATA_KEYS)."""


@secrets.command()
@click.option("--id", "key_id", help="Key id (default: random).")
def keygen(key_id: str | None) -> None:
    """Print a new data key entry; put it first in TIERGATE_DATA_KEYS to make it primary."""
    from tiergate.security.secrets import SecretError, generate_key

    try:
        click.echo(generate_key(key_id))
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None


@secrets.command()
@click.argument("source", type=click.File("r"), default="-")
def rotate(source: TextIO) -> None:
    """Re-seal tokens under the primary data key.

    Reads lines of `PURPOSE<TAB>TOKEN` (from SOURCE or stdin) and prints the same lines with
    each token sealed under the primary key; tokens already under it are left as they are.
    """
    from tiergate.security.audit import AuditLog
    from tiergate.security.secrets import DataKeys, SecretBox, SecretError

    try:
        box = SecretBox(DataKeys.from_env())
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None
    rotated = 0
    for number, raw in enumerate(source, start=1):
        text = raw.rstrip("\n")
        if not text:
            continue
        purpose, sep, token = text.partition("\t")
        if not sep:
            raise click.ClickException(f"line {number}: expected PURPOSE<TAB>TOKEN")
        try:
            new = box.rotate(token, purpose)
        except SecretError as exc:
            raise click.ClickException(f"line {number}: {exc}") from None
        rotated += new != token
        sys.stdout.write(f"{purpose}\t{new}\n")
    AuditLog.from_env().record(
        "secret.rotate", "data-keys", actor="cli", details={"rotated": rotated}
    )
    click.echo(f"rotated {rotated} token(s)", err=True)


if __name__ == "__main__":
    secrets()
