"""CLI commands that read local run directories: ``trackline runs`` and ``trackline show``."""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any, Literal

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._cli_table import console, output_options, print_json
from ._cli_table import table as plain_table
from ._reader import AmbiguousRunError, LocalRun, RunNotFoundError, list_runs, open_run
from ._sparkline import main_metrics, metric_series, sparkline
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


def _state_text(run: LocalRun) -> Text:
    return Text(run.state, style=_STATE_STYLE.get(run.state, ""))


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
@click.option(
    "--watch",
    is_flag=True,
    help="Redraw every --interval seconds, with sparklines of running runs (Ctrl-C to stop).",
)
@click.option("--interval", default=2.0, show_default=True, help="Seconds between redraws.")
def runs_command(
    path: str | None,
    directory: str | None,
    wide: bool,
    as_json: bool,
    watch: bool,
    interval: float,
) -> None:
    """List local runs in PATH or --dir (default: TRACKLINE_DIR or ./.trackline)."""
    where = directory or path
    found = list_runs(where)
    if as_json:
        print_json([_row(run) for run in found])
        return
    out = console(wide)
    if not watch:
        out.print(_runs_view(found, out.width, wide, curves=False))
        return
    with Live(_runs_view(found, out.width, wide), console=out, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(_runs_view(list_runs(where), out.width, wide), refresh=True)
        except KeyboardInterrupt:
            pass


WATCHED_RUNS = 4
"""``runs --watch`` draws curves of this many runs: the running ones, newest first."""


def _runs_view(
    found: list[LocalRun], width: int, wide: bool, curves: bool = True
) -> RenderableType:
    """The run table (to ``width`` unless ``wide``), then sparklines of the runs still
    running (of the newest run when none is)."""
    if not found:
        return Text("no runs found")
    table = _wide_table(found) if wide else _runs_table(found, width)
    if not curves:
        return table
    watched = sorted(
        (run for run in found if run.state == "running"),
        key=lambda run: run.start_time or 0.0,
        reverse=True,
    )[:WATCHED_RUNS] or [max(found, key=lambda run: run.start_time or 0.0)]
    parts: list[RenderableType] = [table]
    for run in watched:
        series = metric_series(run.history())
        keys = main_metrics(series, limit=3)
        parts.append(Text.assemble("\n", (run.name, "bold"), f" ({run.id}) ", _state_text(run)))
        if keys:
            parts.append(_curves(series, keys, run.summary, min(width, WIDE_CURVES)))
    parts.append(Text(time.strftime("updated %H:%M:%S · Ctrl-C to stop"), style="dim"))
    return Group(*parts)


WIDE_CURVES = 160
"""Widest sparkline table, so ``--wide`` does not draw thousand-column curves."""


def _wide_table(found: list[LocalRun]) -> Table:
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
            Text(run.name),
            Text(run.project),
            _state(run),
            started,
            _duration(run.duration),
            str(run.last_step + 1),
            Text(_latest(run, None)),
        )
    return table


def _runs_table(found: list[LocalRun], width: int) -> Table:
    """At ``width`` columns: id, name and state in full (long names cut), metrics get the rest."""
    durations = [_duration(run.duration) for run in found]
    widths = {
        "id": max(2, *(len(run.id) for run in found)),
        "name": min(24, max(4, *(len(run.name) for run in found))),
        "state": max(5, *(len(run.state) for run in found)),
        "duration": max(8, *(len(d) for d in durations)),
    }
    rest = width - sum(widths.values()) - 2 * len(widths)
    table = Table(box=None, pad_edge=False)
    for column, column_width in widths.items():
        justify: Literal["left", "right"] = "right" if column == "duration" else "left"
        table.add_column(
            column, width=column_width, no_wrap=True, overflow="ellipsis", justify=justify
        )
    table.add_column("latest metrics", width=max(10, rest), no_wrap=True, overflow="ellipsis")
    for run, duration in zip(found, durations, strict=True):
        table.add_row(
            run.id, Text(run.name), _state(run), duration, Text(_latest(run, None, short=True))
        )
    return table


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
@click.option(
    "--metric",
    "-m",
    "metrics",
    multiple=True,
    help="Draw these metrics (glob, repeatable; default: the most logged).",
)
@click.option("--watch", is_flag=True, help="Redraw until the run ends (Ctrl-C to stop).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between redraws.")
def show_command(
    run: str,
    directory: str | None,
    as_json: bool,
    metrics: tuple[str, ...],
    watch: bool,
    interval: float,
) -> None:
    """Show RUN (a directory, id, name or unique id prefix): config, summary with sparklines
    of its metrics, git, system stats; ``--watch`` follows it live."""
    local = _open(run, directory)
    if as_json:
        click.echo(
            json.dumps(_as_dict(local, _system_digest(local.system())), indent=2, default=str)
        )
        return
    out = Console()
    if not watch:
        out.print(_show(local, out.width, metrics))
        return
    with Live(_show(local, out.width, metrics), console=out, auto_refresh=False) as live:
        try:
            while local.state == "running":
                time.sleep(interval)
                local = _open(str(local.path), None)
                live.update(_show(local, out.width, metrics), refresh=True)
        except KeyboardInterrupt:
            pass


def _open(run: str, directory: str | None) -> LocalRun:
    try:
        return open_run(run, dir=directory)
    except AmbiguousRunError as exc:
        raise click.UsageError(str(exc)) from None
    except RunNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


def _show(local: LocalRun, width: int, patterns: tuple[str, ...]) -> Group:
    """What ``trackline show`` prints for ``local``, at ``width`` columns."""
    parts: list[RenderableType] = [
        f"[bold]{escape(local.name)}[/] ({local.id}) project={escape(local.project)} "
        f"state={_state(local)} duration={_duration(local.duration)} host={escape(local.host)}"
    ]
    if local.reason:
        parts.append(Text(f"{local.state}: {local.reason}"))
    if local.tags:
        parts.append(Text("tags: " + ", ".join(local.tags)))
    if local.notes:
        parts.append(Text(f"notes: {local.notes}"))
    if local.traceback:
        parts += ["[red]traceback:[/]", Text(local.traceback)]
    parts += [Text.assemble(("gap", "red"), f": {_gap_text(gap)}") for gap in local.gaps]
    if local.fork_from is not None:
        parts.append(Text(f"forked from {local.fork_from} after step {local.fork_step}"))
    if local.rewinds:
        steps = ", then ".join(str(s) for s in local.rewinds)
        parts.append(Text(f"rewound to step {steps} (later rows hidden: history(rewound=True))"))
    parts.append(_mapping("config", local.config))
    series = metric_series(local.history())
    drawn = main_metrics(series, patterns)
    if drawn:
        parts.append(_curves(series, drawn, local.summary, width))
    parts.append(_mapping("summary", {k: v for k, v in local.summary.items() if k not in drawn}))
    if local.git is not None:
        git = local.git
        parts.append(
            Text(
                f"git: {git.commit} on {git.branch}{f' ({git.remote})' if git.remote else ''}"
                f"{' dirty' if git.dirty else ''}"
                + (f", diff in {git.diff_file}" if git.diff_file else "")
            )
        )
    env = local.environment
    if env is not None:
        parts.append(
            Text(
                f"environment: Python {env.python} on {env.platform}, {env.cpu_count} CPUs, "
                f"{env.memory_total / 2**30:.1f} GiB"
                + (f", GPUs: {', '.join(env.gpus)}" if env.gpus else "")
                + f"\n  command: {' '.join(env.argv)}"
            )
        )
    digest = _system_digest(local.system())
    if digest:
        table = Table(title="system", box=None)
        for column in ("metric", "mean", "max", "last"):
            table.add_column(column)
        for key, (mean, peak, last) in digest.items():
            table.add_row(key, _value(mean), _value(peak), _value(last))
        parts.append(table)
    if local.files:
        parts.append(Text("files: " + ", ".join(sorted(local.files))))
    return Group(*parts)


def _curves(
    series: dict[str, list[float]], keys: list[str], summary: dict[str, Any], width: int
) -> Table:
    """One row per metric: its name, a sparkline over its steps, min, max and summary value."""
    numbers = {k: [v for v in series[k] if math.isfinite(v)] or [math.nan] for k in keys}
    name_width = min(24, max(len(k) for k in keys))
    spark_width = max(8, width - name_width - 3 * 10 - 2 * 4)
    table = Table(title="metrics", box=None, pad_edge=False)
    table.add_column("metric", width=name_width, no_wrap=True, overflow="ellipsis")
    table.add_column(f"over {max(len(series[k]) for k in keys)} rows", no_wrap=True)
    for column in ("min", "max", "summary"):
        table.add_column(column, justify="right", max_width=10, no_wrap=True, overflow="ellipsis")
    for key in keys:
        table.add_row(
            key,
            Text(sparkline(series[key], spark_width), style="cyan"),
            _value(min(numbers[key])),
            _value(max(numbers[key])),
            _value(summary.get(key, series[key][-1])),
        )
    return table


def _gap_text(gap: Gap) -> str:
    """``"N rows of steps A-B lost: reason"``, as the dashboard says it."""
    return f"{gap.rows} rows of steps {gap.first_step}-{gap.last_step} lost: {gap.reason}"


def _mapping(title: str, values: dict[str, Any]) -> RenderableType:
    if not values:
        return Text("", end="")
    table = Table(title=title, box=None, show_header=False)
    table.add_column("key")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(
            key, _value(value) if not isinstance(value, (dict, list)) else json.dumps(value)
        )
    return table


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
        "fork_from": run.fork_from,
        "fork_step": run.fork_step,
        "rewinds": run.rewinds,
    }


COMMANDS = [runs_command, show_command]
