"""``trackline artifact ls|get|lineage``: artifacts on a server, through ``trackline.Api``."""

from __future__ import annotations

import datetime

import click
from rich.console import Console
from rich.table import Table

from ._client import Api, ApiError


def _api(server: str | None, key: str | None) -> Api:
    try:
        return Api(server, key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


_server = click.option("--server", default=None, help="Default: TRACKLINE_SERVER or login's.")
_key = click.option("--key", default=None, help="Default: TRACKLINE_API_KEY or login's.")


@click.group("artifact")
def artifact_group() -> None:
    """Artifacts on the server: list, download, lineage."""


@artifact_group.command("ls")
@click.argument("project")
@click.argument("name", required=False)
@_server
@_key
def ls_command(project: str, name: str | None, server: str | None, key: str | None) -> None:
    """Artifacts of PROJECT ("name" or "entity/name"); with NAME, that artifact's versions."""
    with _api(server, key) as api:
        try:
            if name is not None:
                _versions(api, f"{project}/{name}")
                return
            found = api.artifacts(project)
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    if not found:
        click.echo(f"no artifacts in project {project!r} (or none this key may read)")
        return
    table = Table(box=None)
    for column in ("name", "type", "versions", "aliases", "updated"):
        table.add_column(column)
    for artifact in found:
        aliases = ", ".join(f"{a}={v}" for a, v in sorted(artifact.aliases.items()))
        table.add_row(
            artifact.name,
            artifact.type,
            str(artifact.version_count),
            aliases,
            _when(artifact.updated_at),
        )
    Console().print(table)


def _versions(api: Api, path: str) -> None:
    versions = api.artifact_versions(path)
    if not versions:
        click.echo(f"no versions of artifact {path!r}")
        return
    table = Table(box=None)
    for column in ("version", "aliases", "files", "size", "digest", "producer", "created"):
        table.add_column(column)
    for version in versions:
        table.add_row(
            f"v{version.version}",
            ", ".join(version.aliases),
            "" if version.file_count is None else str(version.file_count),
            str(version.size),
            version.digest[:12],
            version.producer or "-",
            _when(version.created_at),
        )
    Console().print(table)


@artifact_group.command("get")
@click.argument("ref")
@click.option("--root", default=None, help="Where to put the files (default ./artifacts/NAME-vN).")
@_server
@_key
def get_command(ref: str, root: str | None, server: str | None, key: str | None) -> None:
    """Download [entity/]project/name[:alias|vN] (files checked by sha256)."""
    with _api(server, key) as api:
        try:
            version = api.artifact(ref)
            target = version.download(root)
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{version.path}:v{version.version} -> {target}")


@artifact_group.command("lineage")
@click.argument("ref")
@_server
@_key
def lineage_command(ref: str, server: str | None, key: str | None) -> None:
    """The run that produced [entity/]project/name[:alias|vN] and the runs that used it."""
    with _api(server, key) as api:
        try:
            version = api.artifact(ref)
            found = version.lineage()
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{version.path}:v{version.version} ({version.digest[:12]})")
    producer = found["producer"]
    if producer is not None:
        click.echo(f"  produced by {producer['id']} {producer['name']!r} ({producer['project']})")
    else:
        click.echo("  produced by: (not readable or unknown)")
    for run in found["consumers"]:
        click.echo(f"  used by     {run['id']} {run['name']!r} ({run['project']})")
