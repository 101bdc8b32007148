"""CLI commands that talk to a server: ``server``, ``login``, ``sync``, ``status``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import _credentials
from . import _wire_types as wt
from ._cli_table import console, output_options, print_json
from ._cli_table import table as plain_table
from ._ranks import RANKS_DIR
from ._reader import record_verdict
from ._settings import base_dir
from ._transport import STREAMS, Shipper, read_progress
from .runlog import RunLogError, data_size


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--data-dir",
    envvar="TRACKLINE_DATA_DIR",
    show_envvar=True,
    type=click.Path(file_okay=False),
    default=None,
    help="Where the SQLite database and files go (default ~/.trackline/server).",
)
@click.option(
    "--database-url",
    envvar="TRACKLINE_DATABASE_URL",
    show_envvar=True,
    default=None,
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --data-dir).",
)
@click.option(
    "--files",
    envvar="TRACKLINE_FILES",
    show_envvar=True,
    default=None,
    help="A directory or s3://bucket/prefix (default: --data-dir/files).",
)
@click.option(
    "--s3-endpoint-url",
    envvar="TRACKLINE_S3_ENDPOINT_URL",
    default=None,
    help="For S3-compatible stores other than AWS.",
)
@click.option(
    "--heartbeat-timeout",
    envvar="TRACKLINE_HEARTBEAT_TIMEOUT",
    show_envvar=True,
    default=120.0,
    show_default=True,
    type=float,
    help="Seconds without a heartbeat after which a running run is reported crashed.",
)
@click.option(
    "--workers",
    envvar="TRACKLINE_WORKERS",
    show_envvar=True,
    default=1,
    show_default=True,
    type=int,
    help="Server processes.",
)
@click.option(
    "--max-ingest",
    envvar="TRACKLINE_MAX_INGEST",
    show_envvar=True,
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="Concurrent uploads per server process; more are refused (503, Retry-After).",
)
@click.option(
    "--max-queries",
    envvar="TRACKLINE_MAX_QUERIES",
    show_envvar=True,
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Concurrent heavy queries (history, series) per process; more are refused (503).",
)
@click.option(
    "--max-waiters",
    envvar="TRACKLINE_MAX_WAITERS",
    show_envvar=True,
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Dashboards waiting for live changes at once per process; more are refused (503).",
)
@click.option(
    "--upload-part-mb",
    envvar="TRACKLINE_UPLOAD_PART_MB",
    show_envvar=True,
    default=16.0,
    show_default=True,
    type=click.FloatRange(min=0.0625, max=64),
    help="Part size of large file uploads (keep it under your proxy's body limit).",
)
@click.option(
    "--quota-gb",
    envvar="TRACKLINE_QUOTA_GB",
    show_envvar=True,
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Storage per user or team (run logs and their files), in GB; past it uploads get 507.",
)
@click.option("--log-level", default="warning", show_default=True)
def server_command(
    host: str,
    port: int,
    data_dir: str | None,
    database_url: str | None,
    files: str | None,
    s3_endpoint_url: str | None,
    heartbeat_timeout: float,
    workers: int,
    max_ingest: int,
    max_queries: int,
    max_waiters: int,
    upload_part_mb: float,
    quota_gb: float | None,
    log_level: str,
) -> None:
    """Run the trackline server (API, ingest and dashboard).

    On first start it creates the admin user and prints its API key
    (TRACKLINE_ADMIN_KEY sets it instead).
    """
    try:
        import uvicorn
        from trackline.server.app import announce_first_start
        from trackline.server.config import ServerConfig
    except ImportError as exc:
        raise click.ClickException(
            f"the server needs its extras: pip install 'trackline[server]' ({exc})"
        ) from None
    config = ServerConfig.build(
        data_dir,
        database_url,
        files,
        s3_endpoint_url=s3_endpoint_url,
        heartbeat_timeout=heartbeat_timeout,
        max_ingest=max_ingest,
        max_queries=max_queries,
        max_waiters=max_waiters,
        upload_part=round(upload_part_mb * 1024 * 1024),
        quota_bytes=None if quota_gb is None else max(1, round(quota_gb * 1e9)),
        admin_key=os.environ.get("TRACKLINE_ADMIN_KEY") or None,
    )
    _check_port_free(host, port)
    os.environ.update(config.to_env())
    announce_first_start(config, f"http://{host}:{port}")
    click.echo(
        f"trackline server on http://{host}:{port} (database {_redact(config.database_url)})"
    )
    uvicorn.run(
        "trackline.server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )


def _check_port_free(host: str, port: int) -> None:
    """Refuse, naming ``--port``, when ``host:port`` cannot be bound (before anything is printed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                f"is another server using it? Pick another port with --port {port + 1}"
            ) from None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else url
    return url


@click.command("login")
@click.option("--server", default=None, help="The server's URL (default TRACKLINE_SERVER).")
@click.option("--key", default=None, help="An API key (asked for when not given).")
def login_command(server: str | None, key: str | None) -> None:
    """Store a server's URL and API key in ~/.trackline/credentials (mode 0600)."""
    server = server or _credentials.default_server()
    if not server:
        server = click.prompt("Server URL", default="http://127.0.0.1:8080")
    server = _credentials.normalize(server)
    if not key:
        key = click.prompt("API key", hide_input=True)
    try:
        response = httpx.get(
            server + "/api/v1/viewer", headers={"authorization": f"Bearer {key}"}, timeout=10
        )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {server}: {exc}") from None
    if response.status_code == 401:
        raise click.ClickException(f"{server} does not accept this API key")
    if response.status_code != 200:
        raise click.ClickException(f"{server} answered HTTP {response.status_code}")
    try:
        name = wt.decode(response.content, wt.Viewer).name
    except wt.WireError as exc:
        raise click.ClickException(f"{server} is no trackline server ({exc})") from None
    path = _credentials.save(server, key)
    click.echo(f"logged in to {server} as {name}; credentials in {path}")


def run_dirs(paths: Iterable[str]) -> list[Path]:
    """Run directories from arguments: run directories, or directories holding runs."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if _is_run_dir(path):
            found.append(path)
            continue
        holder = path / "runs" if (path / "runs").is_dir() else path
        if holder.is_dir():
            found.extend(sorted(p for p in holder.iterdir() if _is_run_dir(p)))
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _is_run_dir(path: Path) -> bool:
    """A run's directory: its log, or (on a node without rank 0) its other ranks' logs."""
    return (path / "main.tlog").exists() or bool(rank_dirs(path))


@click.command("sync")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--server", default=None, help="Default: TRACKLINE_SERVER or `trackline login`'s.")
@click.option("--key", default=None, help="Default: TRACKLINE_API_KEY or `trackline login`'s.")
@click.option(
    "--timeout",
    default=120.0,
    show_default=True,
    help="Give up on a run after this many seconds without progress.",
)
def sync_command(
    dirs: tuple[str, ...], server: str | None, key: str | None, timeout: float
) -> None:
    """Upload offline or interrupted runs, resuming where the server is.

    DIRS are run directories or directories holding runs (default TRACKLINE_DIR
    or ./.trackline). Running it again uploads nothing twice.
    """
    found = run_dirs(dirs or [str(base_dir())])
    console = Console(stderr=True)
    if not found:
        console.print("no runs found")
        return
    chosen = _credentials.normalize(server) if server else None
    targets = {d: chosen or _recorded_server(d) or _credentials.default_server() for d in found}
    if not all(targets.values()):
        raise click.ClickException(
            "no server: pass --server, set TRACKLINE_SERVER or run `trackline login`"
        )
    keys = {s: key or _credentials.api_key(s) for s in set(targets.values()) if s}
    for target, found_key in sorted(keys.items()):
        if not found_key:
            raise click.ClickException(
                f"no API key for {target}: pass --key, set TRACKLINE_API_KEY "
                f"or run `trackline login --server {target}`"
            )
    problems: list[str] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        for run_dir in found:
            target = targets[run_dir] or ""
            on_disk = sum(_upload_status(run_dir)["size"].values())
            task = progress.add_task(run_dir.name, total=on_disk or None)
            problem = _sync_one(run_dir, target, keys[target], timeout, progress, task)
            if problem:
                problems.append(f"{run_dir}: {problem}")
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/]")
        raise click.ClickException(f"{len(problems)} of {len(found)} runs not fully uploaded")
    servers = ", ".join(sorted({t for t in targets.values() if t}))
    console.print(f"{len(found)} run(s) up to date on {servers}")


def _recorded_server(run_dir: Path) -> str | None:
    """The server a run was last uploaded to (its upload.json), if any."""
    server = (read_progress(run_dir) or {}).get("server")
    return _credentials.normalize(server) if isinstance(server, str) and server else None


def _sync_one(
    run_dir: Path,
    server: str,
    key: str | None,
    timeout: float,
    progress: Progress,
    task: object,
) -> str | None:
    for rank, directory in rank_dirs(run_dir):
        problem = _ship_one(directory, rank, server, key, timeout, progress, task)
        if problem:
            return problem if rank is None else f"rank {rank}: {problem}"
    return None


def rank_dirs(run_dir: Path) -> list[tuple[int | None, Path]]:
    """The run's directory, then those of its other ranks (``ranks/<k>/``), by rank."""
    found: list[tuple[int | None, Path]] = []
    if (run_dir / "main.tlog").exists():
        found.append((None, run_dir))
    holder = run_dir / RANKS_DIR
    if holder.is_dir():
        ranks = sorted(
            (int(p.name), p)
            for p in holder.iterdir()
            if p.name.isdigit() and int(p.name) > 0 and (p / "main.tlog").exists()
        )
        found += ranks
    return found


def _ship_one(
    run_dir: Path,
    rank: int | None,
    server: str,
    key: str | None,
    timeout: float,
    progress: Progress,
    task: object,
) -> str | None:
    try:
        record_verdict(run_dir)  # a run killed with its agent: the server learns it crashed
    except (OSError, RunLogError) as exc:
        return f"could not record the crashed verdict: {exc}"
    with Shipper(
        run_dir, server, key, live=False, backoff_max=5.0, budget=1.0, rank=rank
    ) as shipper:
        last_progress = time.monotonic()
        best = -1
        while True:
            done = shipper.pump(final=True)
            shipped, total = shipper.progress()
            if total:  # 0 until the shipper has read the logs: keep the bar's size from disk
                progress.update(task, completed=shipped, total=total)  # type: ignore[arg-type]
            if done:
                break
            if shipped > best:
                best, last_progress = shipped, time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                return f"no progress for {timeout:.0f}s ({shipper.error})"
            time.sleep(0.05 if shipper.error is None else 0.5)
        if shipper.failed:
            return "; ".join(f"{s}: {m}" for s, m in shipper.failed.items())
        if shipper.files_failed:
            return "files not uploaded: " + "; ".join(
                f"{p} ({m})" for p, m in shipper.files_failed.items()
            )
    return None


@click.command("status")
@click.argument("directory", required=False)
@output_options
def status_command(directory: str | None, wide: bool, as_json: bool) -> None:
    """Upload progress of each local run (from its upload.json)."""
    found = run_dirs([directory or str(base_dir())])
    rows = [_upload_status(run_dir) for run_dir in found]
    if as_json:
        print_json(rows)
        return
    out = console(wide)
    if not found:
        out.print("no runs found")
        return
    if wide:
        table = plain_table(
            "id", "uploaded", *(f"{s}.tlog" for s in STREAMS), "files", "server", "problem"
        )
    else:  # at terminal width: the problem gets what is left, cut (in full below the table)
        table = Table(box=None, pad_edge=False)
        for column in ("id", "uploaded", "bytes", "files"):
            table.add_column(column, no_wrap=True, min_width=len(column))
        table.add_column("problem", no_wrap=True, overflow="ellipsis")
    for row in rows:
        sent, size = row["sent"], row["size"]
        if row["refused"]:
            share = "[red]refused[/]"
        elif row["uploaded"] is None:
            share = "[yellow]never[/]"
        elif row["uploaded"] >= 1:
            share = "[green]100%[/]"
        else:
            share = f"{100 * row['uploaded']:.0f}%"
        files = "-"
        if row["uploaded"] is not None:
            files = f"{row['files_pending']} pending" if row["files_pending"] else "ok"
            for path, (have, whole) in row["uploading"].items():
                files += f", {path.rsplit('/', 1)[-1]} {_bytes(have)}/{_bytes(whole)}"
            if row["files_failed"]:
                files += f", {len(row['files_failed'])} failed"
        if wide:
            streams = [f"{_bytes(sent[s])}/{_bytes(size[s])}" for s in STREAMS]
            table.add_row(
                row["id"], share, *streams, files, row["server"] or "-", row["error"] or ""
            )
        else:
            total = f"{_bytes(sum(sent.values()))}/{_bytes(sum(size.values()))}"
            table.add_row(row["id"], share, total, files, row["error"] or "")
    if not wide:  # the first columns whole; the problem gets the rest of the line, cut
        widths = _widths(table)
        for shown, width in zip(table.columns, widths, strict=False):
            shown.min_width = width
        table.columns[-1].max_width = max(10, out.width - sum(widths) - 2 * len(widths))
    out.print(table)
    if not wide:  # what was cut, whole: an explanation is no use with its end cut off
        for row in rows:
            if row["error"] and len(row["error"]) > 40:
                out.print(f"[bold]{row['id']}[/]: {escape(row['error'])}", soft_wrap=False)


def _widths(table: Table) -> list[int]:
    """The width of each column's widest cell, but the last column's (cut to fit)."""
    return [
        max([len(str(column.header)), *(Text.from_markup(str(c)).cell_len for c in column.cells)])
        for column in table.columns[:-1]
    ]


def _upload_status(run_dir: Path) -> dict[str, Any]:
    """A run's upload progress: bytes sent of each log, pending and failed files, last error."""
    state = read_progress(run_dir) or {}
    committed = state.get("committed") or {}
    sent: dict[str, int] = {}
    size: dict[str, int] = {}
    for stream in STREAMS:
        size[stream] = data_size(run_dir / f"{stream}.tlog")  # without reserved zeros
        sent[stream] = min(int(committed.get(stream, 0) or 0), size[stream])
    done, total = sum(sent.values()), sum(size.values())
    pending = int(state.get("files_pending") or 0)
    uploaded: float | None = None
    if state:
        uploaded = 1.0 if done >= total and not pending else min(done / max(total, 1), 0.99)
    return {
        "id": run_dir.name,
        "uploaded": uploaded,
        "sent": sent,
        "size": size,
        "files_pending": pending,
        "files_failed": state.get("files_failed") or {},
        # Files going up in parts: path -> [bytes the server has, size].
        "uploading": state.get("uploading") or {},
        "server": state.get("server"),
        "error": state.get("error"),
        #: Streams the server refused for good (this log is not uploaded as it stands).
        "refused": sorted(state.get("failed") or {}),
    }


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"


COMMANDS = [server_command, login_command, sync_command, status_command]
