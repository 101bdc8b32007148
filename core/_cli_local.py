"""CLI commands that read local run directories: ``trackline runs`` and ``trackline show``."""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any, Literal

import click
from rich.console import Console
from rich.table import Table

from ._cli_table import console, output_options, print_json
from ._cli_table import table as plain_table
from ._reader import AmbiguousRunError, LocalRun, RunNotFoundError, list_runs, open_run
from .records import Gap

_STATE_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "crashed": "red",
    "killed": "yellow",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _latest(run: LocalRun, limit: int | None = 3, short: bool = False) -> str:
    """``key=value, ...`` of the summary; ``short`` keeps the last part of ``a/b`` keys
    where no other key of the run ends the same (``train/loss`` and ``val/loss`` stay)."""
    summary = run.summary
    shown = list(summary.items())[:limit]
    tails = [k.rsplit("/", 1)[-1] for k in summary]

    def name(key: str) -> str:
        tail = key.rsplit("/", 1)[-1]
        return tail if short and tails.count(tail) == 1 else key

    items = [f"{name(k)}={_value(v)}" for k, v in shown]
    more = len(summary) - len(shown)
    return ", ".join(items) + (f" (+{more})" if more > 0 else "")


def _state(run: LocalRun) -> str:
    style = _STATE_STYLE.get(run.state, "")
    return f"[{style}]{run.state}[/]" if style else run.state


_dir_option = click.option(
    "--dir",
    "directory",
    default=None,
    help="Where runs/ is (default TRACKLINE_DIR or ./.trackline).",
)


@click.command("runs")
@click.argument("path", required=False)
@_dir_option
@output_options
def runs_command(path: str | None, directory: str | None, wide: bool, as_json: bool) -> None:
    """List local runs in PATH or --dir (default: TRACKLINE_DIR or ./.trackline)."""
    found = list_runs(directory or path)
    if as_json:
        print_json([_row(run) for run in found])
        return
    out = console(wide)
    if not found:
        out.print("no runs found")
        return
    if wide:
        table = plain_table(
            "id", "name", "project", "state", "started", "duration", "steps", "latest metrics"
        )
        for run in found:
            started = (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(run.start_time))
                if run.start_time
                else "-"
            )
            table.add_row(
                run.id,
                run.name,
                run.project,
                _state(run),
                started,
                _duration(run.duration),
                str(run.last_step + 1),
                _latest(run, None),
            )
        out.print(table)
        return
    # At terminal width: id, name and state in full (long names cut), metrics get the rest.
    durations = [_duration(run.duration) for run in found]
    widths = {
        "id": max(2, *(len(run.id) for run in found)),
        "name": min(24, max(4, *(len(run.name) for run in found))),
        "state": max(5, *(len(run.state) for run in found)),
        "duration": max(8, *(len(d) for d in durations)),
    }
    rest = out.width - sum(widths.values()) - 2 * len(widths)
    table = Table(box=None, pad_edge=False)
    for column, width in widths.items():
        justify: Literal["left", "right"] = "right" if column == "duration" else "left"
        table.add_column(column, width=width, no_wrap=True, overflow="ellipsis", justify=justify)
    table.add_column("latest metrics", width=max(10, rest), no_wrap=True, overflow="ellipsis")
    for run, duration in zip(found, durations, strict=True):
        table.add_row(run.id, run.name, _state(run), duration, _latest(run, None, short=True))
    out.print(table)


def _row(run: LocalRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "project": run.project,
        "state": run.state,
        "reason": run.reason,
        "start_time": run.start_time,
        "duration": run.duration,
        "steps": run.last_step + 1,
        "summary": run.summary,
        "path": str(run.path),
    }


@click.command("show")
@click.argument("run")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def show_command(run: str, directory: str | None, as_json: bool) -> None:
    """Show RUN (a directory, id, name or unique id prefix): config, summary, git, system stats."""
    try:
        local = open_run(run, dir=directory)
    except AmbiguousRunError as exc:
        raise click.UsageError(str(exc)) from None
    except RunNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    digest = _system_digest(local.system())
    if as_json:
        click.echo(json.dumps(_as_dict(local, digest), indent=2, default=str))
        return
    console = Console()
    console.print(
        f"[bold]{local.name}[/] ({local.id}) project={local.project} "
        f"state=[{_STATE_STYLE.get(local.state, '')}]{local.state}[/] "
        f"duration={_duration(local.duration)} host={local.host}"
    )
    if local.reason:
        console.print(f"{local.state}: {local.reason}")
    if local.tags:
        console.print("tags: " + ", ".join(local.tags))
    if local.notes:
        console.print(f"notes: {local.notes}")
    if local.traceback:
        console.print("[red]traceback:[/]\n" + local.traceback)
    for gap in local.gaps:
        console.print(f"[red]gap[/]: {_gap_text(gap)}", highlight=False)
    _print_mapping(console, "config", local.config)
    _print_mapping(console, "summary", local.summary)
    if local.git is not None:
        git = local.git
        console.print(
            f"[bold]git[/]: {git.commit} on {git.branch} ({git.remote}){' dirty' if git.dirty else ''}"
            + (f", diff in {git.diff_file}" if git.diff_file else "")
        )
    env = local.environment
    if env is not None:
        console.print(
            f"[bold]environment[/]: Python {env.python} on {env.platform}, {env.cpu_count} CPUs, "
            f"{env.memory_total / 2**30:.1f} GiB"
            + (f", GPUs: {', '.join(env.gpus)}" if env.gpus else "")
        )
        console.print(f"  command: {' '.join(env.argv)}")
    if digest:
        table = Table(title="system", box=None)
        for column in ("metric", "mean", "max", "last"):
            table.add_column(column)
        for key, (mean, peak, last) in digest.items():
            table.add_row(key, _value(mean), _value(peak), _value(last))
        console.print(table)
    if local.files:
        console.print("[bold]files[/]: " + ", ".join(sorted(local.files)))


def _gap_text(gap: Gap) -> str:
    """``"N rows of steps A-B lost: reason"``, as the dashboard says it."""
    return f"{gap.rows} rows of steps {gap.first_step}-{gap.last_step} lost: {gap.reason}"


def _print_mapping(console: Console, title: str, values: dict[str, Any]) -> None:
    if not values:
        return
    table = Table(title=title, box=None, show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(
            key, _value(value) if not isinstance(value, (dict, list)) else json.dumps(value)
        )
    console.print(table)


def _system_digest(samples: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    series: dict[str, list[float]] = {}
    for sample in samples:
        for key, value in sample.items():
            if key != "_time":
                series.setdefault(key, []).append(float(value))
    return {
        key: (statistics.fmean(vals), max(vals), vals[-1]) for key, vals in sorted(series.items())
    }


def _as_dict(run: LocalRun, digest: dict[str, tuple[float, float, float]]) -> dict[str, Any]:
    return {
        **_row(run),
        "tags": run.tags,
        "notes": run.notes,
        "config": run.config,
        "git": None
        if run.git is None
        else {f: getattr(run.git, f) for f in run.git.__struct_fields__},
        "environment": None
        if run.environment is None
        else {
            f: getattr(run.environment, f)
            for f in run.environment.__struct_fields__
            if f != "packages"
        },
        "system": {k: {"mean": m, "max": p, "last": last} for k, (m, p, last) in digest.items()},
        "files": sorted(run.files),
        "gaps": [{f: getattr(g, f) for f in g.__struct_fields__} for g in run.gaps],
    }


COMMANDS = [runs_command, show_command]
