"""``trackline import``: bring history recorded by other trackers along."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ._names import check_project
from ._settings import base_dir


@click.group("import")
def import_group() -> None:
    """Import runs from TensorBoard (more sources to come) as trackline runs."""


@import_group.command("tensorboard")
@click.argument("logdir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--project", default=None, help="Default: the log directory's name.")
@click.option(
    "--dir",
    "target",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the runs go (default TRACKLINE_DIR or ./.trackline); then `trackline sync`.",
)
def tensorboard_command(logdir: Path, project: str | None, target: Path | None) -> None:
    """Import every directory of TensorBoard event files under LOGDIR as a finished run.

    Importing again skips what is already imported; an interrupted import leaves no half
    run. Scalars, histograms, hparams (config) and text (summary) are imported with their
    steps and wall times.
    """
    from .importers.tensorboard import event_dirs, import_logdir

    name = project or "".join(
        c if c.isalnum() or c in "._-" else "-" for c in logdir.resolve().name
    )
    try:
        check_project(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--project") from None
    runs_dir = base_dir(target) / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    total = len(event_dirs(logdir))
    if not total:
        console.print(f"no TensorBoard event files under {logdir}")
        return
    imported = skipped = points = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("importing", total=total)
            for result in import_logdir(logdir, runs_dir, name):
                progress.advance(task)
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
        f"{imported} run(s) imported ({points:,} points) into project {name!r}, "
        f"{skipped} already imported; upload them with `trackline sync {runs_dir.parent}`"
    )


COMMANDS = [import_group]
