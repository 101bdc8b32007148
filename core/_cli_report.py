"""``trackline report ls|pull|push|share``: reports as code, through ``trackline.Api``.

``pull`` prints a report as plain markdown (front matter, prose, and each run set and
panel as a fenced ``trackline`` block); ``push`` saves such a file as a new version and
records that version in the file, so the next push from it is not taken for a conflict.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import _report_format
from ._cli_artifact import _api, _key, _server, _when
from ._client import ApiError


@click.group("report")
def report_group() -> None:
    """Reports: list, pull as markdown, push from markdown, share."""


@report_group.command("ls")
@click.argument("project")
@_server
@_key
def ls_command(project: str, server: str | None, key: str | None) -> None:
    """Reports of PROJECT ("name" or "entity/name")."""
    with _api(server, key) as api:
        try:
            found = api.reports(project)
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    if not found:
        click.echo(f"no reports in {project}")
    for report in found:
        when = _when(report["updated_at"])
        click.echo(f"{report['slug']}  v{report['version']}  {when}  {report['title']}")


@report_group.command("pull")
@click.argument("report")
@click.option("--version", "version", type=click.IntRange(min=1), help="An older version.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@_server
@_key
def pull_command(
    report: str, version: int | None, output: Path | None, server: str | None, key: str | None
) -> None:
    """Print REPORT ([entity/]project/report) as markdown, or write it to --output."""
    with _api(server, key) as api:
        try:
            text = api.pull_report(report, version)
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@report_group.command("push")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", default=None, help="[entity/]project/report (default: the file's).")
@click.option("--force", is_flag=True, help="Save even if the report moved since the pull.")
@_server
@_key
def push_command(
    file: Path, to: str | None, force: bool, server: str | None, key: str | None
) -> None:
    """Save FILE as a new version of its report (or create the report)."""
    text = file.read_text(encoding="utf-8")
    try:
        doc = _report_format.read_document(text)
    except _report_format.ReportFormatError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    with _api(server, key) as api:
        try:
            saved = api.push_report(text, to=to, force=force)
        except ApiError as exc:
            hint = " (pull it again and merge, or push --force)" if exc.status == 409 else ""
            raise click.ClickException(f"{exc.detail}{hint}") from None
        except (_report_format.ReportFormatError, ValueError) as exc:
            raise click.ClickException(f"{file}: {exc}") from None
    where = f"{saved['project']}/{saved['slug']}"
    if saved["version"] == doc.version and (to is None or to == doc.report):
        click.echo(f"{where} is unchanged at version {saved['version']}")
        return
    pulled = _report_format.Document(
        report=where, version=saved["version"], title=saved["title"], body=saved["body"]
    )
    file.write_text(_report_format.write_document(pulled), encoding="utf-8")
    click.echo(f"{where}: version {saved['version']} saved ({file} now says so)")


@report_group.command("share")
@click.argument("report")
@click.option(
    "--expires", type=click.FloatRange(min=0, min_open=True), help="Days (default never)."
)
@_server
@_key
def share_command(report: str, expires: float | None, server: str | None, key: str | None) -> None:
    """A read-only link to REPORT that needs no API key (revocable in the dashboard)."""
    with _api(server, key) as api:
        try:
            made = api.share_report(report, expires)
        except (ApiError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(made["url"])
