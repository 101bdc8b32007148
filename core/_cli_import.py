"""``trackline import``: bring history recorded by other trackers along."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ._names import check_project
from ._settings import base_dir
from .importers import Imported


@click.group("import")
def import_group() -> None:
    """Import runs from W&B, TensorBoard or MLflow as trackline runs."""


_DIR = click.option(
    "--dir",
    "target",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the runs go (default TRACKLINE_DIR or ./.trackline); then `trackline sync`.",
)


_SERVER = click.option(
    "--server",
    default=None,
    help="Upload the runs to this server afterwards, as `trackline sync` does.",
)
_KEY = click.option(
    "--key", default=None, help="API key for --server (default as `trackline sync`)."
)


def _upload(run_dirs: list[Path], server: str | None, key: str | None) -> None:
    """``trackline sync`` of the runs just imported (or found already imported)."""
    if server is None or not run_dirs:
        return
    from ._cli_remote import sync_command

    click.get_current_context().invoke(
        sync_command, dirs=tuple(str(d) for d in run_dirs), server=server, key=key, timeout=120.0
    )


def _checked_project(name: str) -> str:
    try:
        return check_project(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--project") from None


def _runs_dir(target: Path | None) -> Path:
    runs_dir = base_dir(target) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    return runs_dir


def _report(
    results: Iterator[Imported], total: int | None, runs_dir: Path, where: str
) -> list[Path]:
    """Drive an importer with a progress bar; one line per run, a total at the end; the
    run directories imported or found already imported."""
    console = Console(stderr=True)
    imported = skipped = points = 0
    run_dirs: list[Path] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("importing", total=total)
            for result in results:
                progress.advance(task)
                run_dirs.append(result.run_dir)
                if result.skipped:
                    skipped += 1
                    continue
                imported += 1
                points += result.points_written
                extra = f" ({'; '.join(result.notes)})" if result.notes else ""
                console.print(
                    f"{result.run_id}  {result.points_read:,} points read, "
                    f"{result.points_written:,} written and verified  {result.source}{extra}"
                )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"{imported} run(s) imported ({points:,} points) {where}, {skipped} already imported; "
        f"upload them with `trackline sync {runs_dir.parent}` (or --server)"
    )
    return run_dirs


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", default=None, help="Default: the log directory's name.")
@_DIR
@_SERVER
@_KEY
def tensorboard_command(
    logdir: Path, project: str | None, target: Path | None, server: str | None, key: str | None
) -> None:
    """Import every directory of TensorBoard event files under LOGDIR as a finished run.

    Importing again skips what is already imported; an interrupted import leaves no half
    run. Scalars, histograms, hparams (config) and text (summary) are imported with their
    steps and wall times.
    """
    from .importers.tensorboard import event_dirs, import_logdir

    name = project or "".join(
        c if c.isalnum() or c in "._-" else "-" for c in logdir.resolve().name
    )
    name = _checked_project(name)
    total = len(event_dirs(logdir))
    if not total:
        Console(stderr=True).print(f"no TensorBoard event files under {logdir}")
        return
    runs_dir = _runs_dir(target)
    done = _report(import_logdir(logdir, runs_dir, name), total, runs_dir, f"into project {name!r}")
    _upload(done, server, key)


@import_group.command("mlflow")
@click.option(
    "--tracking-uri",
    default=None,
    help="MLflow's store: sqlite:///mlflow.db, http://host:5000, ... (default MLFLOW_TRACKING_URI).",
)
@click.option(
    "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable)."
)
@click.option("--project", default=None, help="One project for all (default: one per experiment).")
@_DIR
@_SERVER
@_KEY
def mlflow_command(
    tracking_uri: str | None,
    experiments: tuple[str, ...],
    project: str | None,
    target: Path | None,
    server: str | None,
    key: str | None,
) -> None:
    """Import MLflow runs: params, every metric's history, tags, status, artifacts.

    Each experiment becomes a project (or all go to --project); importing again skips what
    is already imported.
    """
    from .importers.mlflow import import_tracking

    if project is not None:
        _checked_project(project)
    runs_dir = _runs_dir(target)
    results = import_tracking(tracking_uri, runs_dir, list(experiments) or None, project)
    _upload(_report(results, None, runs_dir, "from MLflow"), server, key)


@import_group.command("wandb")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--from-server",
    "server_project",
    metavar="ENTITY/PROJECT",
    default=None,
    help="Read a project's runs through W&B's public API instead (W&B's key and host: "
    "WANDB_API_KEY or `wandb login`, WANDB_BASE_URL).",
)
@click.option(
    "--project", default=None, help="One project for all (default: each run's W&B project)."
)
@_DIR
@_SERVER
@_KEY
def wandb_command(
    path: Path | None,
    server_project: str | None,
    project: str | None,
    target: Path | None,
    server: str | None,
    key: str | None,
) -> None:
    """Import W&B runs: run directories found under PATH, or a project on W&B's server.

    PATH is a run directory (offline-run-*, run-*), a wandb/ directory or anything above
    them. History, config, summary, define_metric rules, histograms, images, tables,
    system metrics, console output, saved files and the final state are imported;
    importing again skips what is already imported. Needs the wandb package.
    """
    if (path is None) == (server_project is None):
        raise click.UsageError("give PATH (run directories) or --from-server ENTITY/PROJECT")
    if project is not None:
        _checked_project(project)
    console = Console(stderr=True)
    if server_project is not None:
        from .importers.wandb_api import import_project

        runs_dir = _runs_dir(target)
        results = import_project(server_project, runs_dir, project)
        _upload(_report(results, None, runs_dir, f"from W&B project {server_project}"), server, key)
        return
    from .importers.wandb_runs import find_runs, import_runs

    assert path is not None
    try:
        groups, problems = find_runs(path)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        console.print(f"skipped {problem}")
    if not groups:
        console.print(f"no W&B run files (*.wandb) to import under {path}")
        return
    runs_dir = _runs_dir(target)
    done = _report(import_runs(groups, runs_dir, project), len(groups), runs_dir, "from W&B")
    _upload(done, server, key)


COMMANDS = [import_group]
