"""``trackline keys ls|create|revoke``: the caller's API keys on a server."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ._cli_artifact import _api, _key, _server, _when
from ._client import ApiError


@click.group("keys")
def keys_group() -> None:
    """API keys: list them, create one, revoke one (a leaked key, a finished job's)."""


@keys_group.command("ls")
@click.option("--user", default=None, help="Another user's keys (admin only).")
@_server
@_key
def ls_command(user: str | None, server: str | None, key: str | None) -> None:
    """Your keys (id, first characters, created); the keys themselves are stored hashed."""
    with _api(server, key) as api:
        try:
            found = api.keys(user)
        except ApiError as exc:
            raise click.ClickException(str(exc)) from None
    table = Table(box=None)
    for column in ("id", "key", "created"):
        table.add_column(column)
    for entry in found:
        table.add_row(str(entry["id"]), f"{entry['prefix']}…", _when(entry["created_at"]))
    Console().print(table)


@keys_group.command("create")
@_server
@_key
def create_command(server: str | None, key: str | None) -> None:
    """A new key for you, printed once: store it ('trackline login --key KEY')."""
    with _api(server, key) as api:
        try:
            click.echo(api.create_key())
        except ApiError as exc:
            raise click.ClickException(str(exc)) from None


@keys_group.command("revoke")
@click.argument("key_id", type=int)
@_server
@_key
def revoke_command(key_id: int, server: str | None, key: str | None) -> None:
    """Revoke the key KEY_ID (from 'trackline keys ls'); an admin may revoke anyone's.

    A key set by TRACKLINE_ADMIN_KEY comes back when the server restarts with it set.
    """
    with _api(server, key) as api:
        try:
            api.revoke_key(key_id)
        except ApiError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"revoked key {key_id}")
