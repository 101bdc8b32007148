"""W&B run directories -> trackline runs, read from W&B's own run files.

Offline (``offline-run-*``) and synced (``run-*``) directories hold the whole run in
``run-<id>.wandb`` (see ``wandb_files``); the files it names are under ``files/``.
Each W&B run becomes a finished run (the directories of a resumed run are joined in
order):

- the run record: project, name, group, job type, tags (plus ``wandb``), notes, config;
- history rows as metric rows at W&B's ``_step`` and ``_timestamp``, nested keys
  joined with ``/`` as ``trackline.log`` joins them; histograms, images and tables as
  media (``gradients/*`` and ``parameters/*`` from ``wandb.watch`` as histograms, as
  ``trackline.watch`` records them);
- ``define_metric`` rules; summary values that are not computed from the history
  (explicit ``run.summary[...] = ...``); alerts as summary ``_alerts``;
- system metrics, renamed where trackline has a name for them (others keep W&B's,
  under ``wandb/``); environment and git commit; console output;
- saved files (``wandb.save``, code, requirements) as run files; ``diff.patch`` as the
  git diff;
- the exit code as the final state; a run without one was cut off: ``crashed``.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import sha256_file
from ..records import (
    Console,
    DefineMetric,
    Environment,
    FileSaved,
    Finish,
    GitInfo,
    Histogram,
    MediaRecord,
    Metrics,
    Record,
    RunStart,
    SummaryUpdate,
    SystemSample,
)
from . import Imported, already_imported, clean_key, stable_run_id, verify, write_run
from .wandb_files import ScanReport, WandbFileError, read_records, record_class, scan

#: W&B's own files in ``files/``: what they hold is imported from the records instead.
_INTERNAL_FILES = {"wandb-metadata.json", "wandb-summary.json", "config.yaml", "output.log"}
_POLICIES = {0: "now", 1: "end", 2: "live"}
_SKIPPED_SUMMARY = {"_wandb", "_runtime", "_step", "_timestamp"}
_WATCH_PREFIXES = ("gradients/", "parameters/")

#: W&B system metric -> (trackline name, factor); ``{i}`` is a GPU's index.
_SYSTEM_NAMES: dict[str, tuple[str, float]] = {
    "cpu": ("proc/cpu_percent", 1.0),
    "proc.cpu.threads": ("proc/threads", 1.0),
    "proc.memory.rssMB": ("proc/rss_bytes", 1024.0 * 1024.0),
    "memory_percent": ("host/memory_percent", 1.0),
    "network.sent": ("host/net_sent_bytes", 1.0),
    "network.recv": ("host/net_recv_bytes", 1.0),
    "disk./.usagePercent": ("host/disk_percent", 1.0),
    "disk./.usageGB": ("host/disk_used_bytes", 1024.0**3),
    "gpu.{i}.gpu": ("gpu/{i}/util_percent", 1.0),
    "gpu.{i}.memoryAllocatedBytes": ("gpu/{i}/memory_used_bytes", 1.0),
    "gpu.{i}.powerWatts": ("gpu/{i}/power_watts", 1.0),
    "gpu.{i}.temp": ("gpu/{i}/temperature_c", 1.0),
    "gpu.{i}.smClock": ("gpu/{i}/sm_clock_mhz", 1.0),
}
_GPU_KEY = re.compile(r"gpu\.(\d+)\.(.+)")


def run_files(path: Path) -> list[Path]:
    """Every W&B run file under ``path`` (a run directory, ``wandb/`` or above it)."""
    if path.is_file():
        return [path] if path.suffix == ".wandb" else []
    found = {p.resolve() for p in path.rglob("*.wandb") if p.is_file()}
    return sorted(found)


def system_name(key: str) -> str:
    """A W&B system metric's trackline name."""
    if key in _SYSTEM_NAMES:
        return _SYSTEM_NAMES[key][0]
    gpu = _GPU_KEY.fullmatch(key)
    if gpu and f"gpu.{{i}}.{gpu[2]}" in _SYSTEM_NAMES:
        return _SYSTEM_NAMES[f"gpu.{{i}}.{gpu[2]}"][0].format(i=gpu[1])
    return clean_key("wandb/" + key.replace(".", "/"))


def system_factor(key: str) -> float:
    gpu = _GPU_KEY.fullmatch(key)
    pattern = f"gpu.{{i}}.{gpu[2]}" if gpu else key
    return _SYSTEM_NAMES.get(pattern, ("", 1.0))[1]


def project_name(project: str) -> str:
    """A W&B project name as a trackline project name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", project).strip("-.") or "wandb"
    return name[:128]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _put(tree: dict[str, Any], item: Any) -> None:
    """Set one (possibly nested) W&B item in ``tree``."""
    path = list(item.nested_key) or [item.key]
    for part in path[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    tree[path[-1]] = _json(item.value_json)


def _drop(tree: dict[str, Any], item: Any) -> None:
    path = list(item.nested_key) or [item.key]
    for part in path[:-1]:
        tree = tree.get(part) or {}
    if isinstance(tree, dict):
        tree.pop(path[-1], None)


#: The keys of a summary value that ``define_metric(summary=...)`` made: computed again here.
_COMPUTED = frozenset({"min", "max", "mean", "first", "last", "best", "copy"})


def _leaves(
    tree: dict[str, Any], whole: frozenset[str] = frozenset(), prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    """(key joined with ``/``, value) for each value; a W&B media value (``_type``) and a
    dict whose keys are all in ``whole`` are one value."""
    for key, value in tree.items():
        full = f"{prefix}{key}"
        nested = isinstance(value, dict) and value and "_type" not in value
        if nested and not (whole and set(value) <= whole):
            yield from _leaves(value, whole, full + "/")
        else:
            yield full, value


def _seconds(stamp: Any) -> float:
    return float(stamp.seconds) + float(stamp.nanos) / 1e9


def _histogram(value: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """(edges, counts) of a W&B histogram value (``bins`` or ``packedBins``)."""
    counts = value.get("values")
    if not isinstance(counts, list):
        return None
    if isinstance(value.get("bins"), list):
        edges = [float(e) for e in value["bins"]]
    elif isinstance(value.get("packedBins"), dict):
        packed = value["packedBins"]
        edges = [packed["min"] + packed["size"] * i for i in range(int(packed["count"]) + 1)]
    else:
        return None
    if len(edges) != len(counts) + 1:
        return None
    return edges, [float(c) for c in counts]


@dataclass
class _Run:
    """One W&B run's records, folded into trackline's as they are read."""

    run_id: str
    project: str
    files_dirs: list[Path] = field(default_factory=list)
    start: RunStart | None = None
    config: dict[str, Any] = field(default_factory=dict)
    main: list[Record] = field(default_factory=list)
    system: list[Record] = field(default_factory=list)
    console: list[Record] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    last_values: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, str]] = field(default_factory=list)
    saved: dict[str, tuple[str, Path]] = field(default_factory=dict)
    media_files: dict[str, Path] = field(default_factory=dict)
    points: int = 0
    last_time: float = 0.0
    exit_code: int | None = None
    exit_time: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    partial_line: dict[str, str] = field(default_factory=dict)
    git: tuple[str | None, str | None] = (None, None)
    environment: dict[str, Any] = field(default_factory=dict)
    final_state: tuple[str, str] | None = None
    max_step: int = -1
    step_offset: int = 0
    part_started: bool = False
    notes: list[str] = field(default_factory=list)

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


class _Converter:
    """Turns the records of one W&B run (one or more run files) into a ``_Run``."""

    def __init__(self, project: str | None, scratch: Path) -> None:
        self.project = project
        self.media_dir = scratch / "media"

    def convert(self, paths: list[Path]) -> _Run:
        run: _Run | None = None
        for path in paths:
            report = ScanReport()
            records = list(read_records(path, report))
            first = next((r.run for r in records if r.WhichOneof("record_type") == "run"), None)
            if first is None:
                raise WandbFileError(f"{path}: no run record")
            if run is None:
                project = self.project or project_name(first.project or "uncategorized")
                run = _Run(first.run_id, project)
            run.files_dirs.append(path.parent / "files")
            run.exit_code = None  # a resumed part's exit decides
            run.part_started = False
            for record in records:
                self._record(run, record)
            if report.torn_tail:
                run.notes.append(f"{path.name} ends in a torn record (the run was cut off)")
            if report.skipped_chunks:
                run.notes.append(f"{report.skipped_chunks} damaged chunk(s) of {path.name} skipped")
        assert run is not None
        return run

    def _record(self, run: _Run, record: Any) -> None:
        kind = record.WhichOneof("record_type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(run, getattr(record, kind))

    def _on_run(self, run: _Run, record: Any) -> None:
        config: dict[str, Any] = {}
        for item in record.config.update:
            _put(config, item)
        config.pop("_wandb", None)
        if run.start is not None:  # a resumed part: its config changes only
            run.config.update(config)
            return
        run.config = config
        start = _seconds(record.start_time) if record.HasField("start_time") else 0.0
        run.last_time = start
        run.start = RunStart(
            run_id=stable_run_id("wandb", f"{record.entity}/{record.project}/{record.run_id}"),
            project=run.project,
            name=(record.display_name or record.run_id)[:128],
            start_time=start,
            group=record.run_group or None,
            job_type=record.job_type or None,
            tags=["wandb", *(t[:64] for t in record.tags)],
            notes=record.notes or None,
            host=record.host,
        )
        if record.HasField("git") and (record.git.commit or record.git.remote_url):
            run.git = (record.git.commit or None, record.git.remote_url or None)

    def _on_config(self, run: _Run, record: Any) -> None:
        for item in record.update:
            _put(run.config, item)
        for item in record.remove:
            _drop(run.config, item)
        run.config.pop("_wandb", None)

    def _on_history(self, run: _Run, record: Any) -> None:
        tree: dict[str, Any] = {}
        for item in record.item:
            _put(tree, item)
        step = tree.pop("_step", None)
        self.history_row(run, tree, step if isinstance(step, int) else record.step.num)

    def history_row(self, run: _Run, tree: dict[str, Any], step: int) -> None:
        """One history row (``_step`` taken out): metrics, and media where values are."""
        step = self._continued(run, step)
        when = tree.pop("_timestamp", None)
        when = float(when) if isinstance(when, (int, float)) else run.last_time
        run.last_time = max(run.last_time, when)
        tree.pop("_runtime", None)
        values: dict[str, float | int | str] = {}
        for key, value in _leaves(tree):
            key = clean_key(key)
            if isinstance(value, bool):
                values[key] = int(value)
            elif isinstance(value, (int, float, str)):
                values[key] = value
            elif isinstance(value, dict):
                self._media(run, step, when, key, value)
                continue
            else:
                run.skip("list values")
                continue
            run.last_values[key] = values[key]
        if values:
            run.points += len(values)
            run.main.append(Metrics(step, when, values))

    def _continued(self, run: _Run, step: int) -> int:
        """A resumed part's step, after the steps before it: offline W&B runs resume at 0."""
        if not run.part_started:
            run.part_started = True
            run.step_offset = run.max_step + 1 - step if step <= run.max_step else 0
            if run.step_offset:
                run.notes.append(
                    f"a resumed part restarted at step {step}: its steps moved by {run.step_offset}"
                )
        step += run.step_offset
        run.max_step = max(run.max_step, step)
        return step

    def _media(self, run: _Run, step: int, when: float, key: str, value: dict[str, Any]) -> None:
        kind = value.get("_type")
        if kind == "histogram":
            found = _histogram(value)
            if found is None:
                run.skip("malformed histograms")
            elif key.startswith(_WATCH_PREFIXES):
                run.main.append(Histogram(step, when, key, *found))
            else:
                edges, counts = found
                items = [{"counts": counts, "edges": edges}]
                run.main.append(MediaRecord(step, when, key, "histogram", items))
        elif kind == "image-file":
            self._image(run, step, when, key, [value.get("path")], [value.get("caption")])
        elif kind == "images/separated":
            names = value.get("filenames") or []
            captions = value.get("captions") or [None] * len(names)
            paths = [f"media/images/{name}" for name in names]
            self._image(run, step, when, key, paths, captions)
        elif kind == "table-file":
            self._table(run, step, when, key, value.get("path"))
        else:
            run.skip(f"{kind} values")

    def _source(self, run: _Run, relative: Any) -> Path | None:
        if not isinstance(relative, str):
            return None
        for files_dir in reversed(run.files_dirs):
            candidate = files_dir / relative
            if candidate.is_file():
                return candidate
        return None

    def _image(
        self,
        run: _Run,
        step: int,
        when: float,
        key: str,
        paths: list[Any],
        captions: list[Any],
    ) -> None:
        from ..media import Image

        items = []
        for relative, caption in zip(paths, captions, strict=False):
            source = self._source(run, relative)
            if source is None:
                run.skip("images whose file is gone")
                continue
            image = Image(str(source), caption=caption if isinstance(caption, str) else None)
            items.append(image.write(self.media_dir))
        if items:
            run.main.append(MediaRecord(step, when, key, "image", items))

    def _table(self, run: _Run, step: int, when: float, key: str, relative: Any) -> None:
        from ..media import Table

        source = self._source(run, relative)
        if source is None:
            run.skip("tables whose file is gone")
            return
        try:
            content = json.loads(source.read_text())
            table = Table(columns=content["columns"], data=content["data"])
        except (ValueError, KeyError, TypeError):
            run.skip("tables that could not be read")
            return
        run.main.append(MediaRecord(step, when, key, "table", [table.write(self.media_dir)]))

    def _on_summary(self, run: _Run, record: Any) -> None:
        for item in record.update:
            _put(run.summary, item)
        for item in record.remove:
            _drop(run.summary, item)

    def _on_metric(self, run: _Run, record: Any) -> None:
        name = record.name or record.glob_name
        if not name or record.expanded_from_glob:
            return
        summary = "last"
        chosen = [
            k for k in ("min", "max", "mean", "first", "last", "none") if getattr(record.summary, k)
        ]
        if record.summary.best:
            chosen.insert(0, "max" if record.goal == 2 else "min")
        if chosen:
            summary = chosen[0]
        step_metric = record.step_metric or None
        run.main.append(
            DefineMetric(clean_key(name) if name != "*" else name, summary, step_metric)
        )

    def _on_alert(self, run: _Run, record: Any) -> None:
        alert = {"title": record.title, "text": record.text, "level": record.level or "INFO"}
        run.alerts.append(alert)

    def _on_stats(self, run: _Run, record: Any) -> None:
        values: dict[str, float] = {}
        for item in record.item:
            value = _json(item.value_json)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[system_name(item.key)] = float(value) * system_factor(item.key)
        if values:
            run.system.append(SystemSample(_seconds(record.timestamp), values))

    def _on_environment(self, run: _Run, record: Any) -> None:
        """W&B writes the software and the hardware in two records; both fill one."""
        found: dict[str, Any] = {
            "python": record.python,
            "platform": record.os,
            "hostname": record.host,
            "user": record.username,
            "argv": [record.program, *record.args] if record.program else list(record.args),
            "executable": record.executable,
            "cwd": record.root,
            "cpu_count": record.cpu_count_logical or record.cpu_count,
            "memory_total": record.memory.total if record.HasField("memory") else 0,
            "gpus": [g.name for g in record.gpu_nvidia] or [record.gpu_type] * record.gpu_count,
        }
        run.environment.update({k: v for k, v in found.items() if v})
        if record.HasField("git") and (record.git.commit or record.git.remote_url):
            run.git = (record.git.commit or None, record.git.remote_url or None)

    def _on_files(self, run: _Run, record: Any) -> None:
        for item in record.files:
            name = item.path
            if name.startswith("media/") or name in _INTERNAL_FILES:
                continue
            source = self._source(run, name)
            if source is None:
                run.skip("saved files that are gone")
                continue
            run.saved[name] = (_POLICIES.get(item.policy, "now"), source)

    def _on_output_raw(self, run: _Run, record: Any) -> None:
        stream = "stdout" if record.output_type == 1 else "stderr"
        text = run.partial_line.get(stream, "") + record.line
        *lines, rest = text.split("\n")
        run.partial_line[stream] = rest
        if lines:
            lines = [line.rsplit("\r", 1)[-1] for line in lines]
            run.console.append(Console(stream, lines, _seconds(record.timestamp)))

    _on_output = _on_output_raw

    def _on_exit(self, run: _Run, record: Any) -> None:
        run.exit_code = int(record.exit_code)
        if run.start is not None:
            run.exit_time = run.start.start_time + float(record.runtime)


_MISSING = object()


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _finish_records(run: _Run) -> Iterable[Record]:
    """The records after the history: summary, files and the final state."""
    end = max(run.last_time, run.exit_time or 0.0)
    explicit: dict[str, Any] = {}
    for key, value in _leaves(run.summary, _COMPUTED):
        if key in _SKIPPED_SUMMARY or key.split("/")[0] in _SKIPPED_SUMMARY:
            continue
        if isinstance(value, dict):  # media, or a define_metric summary computed again here
            continue
        key = clean_key(key)
        logged = run.last_values.get(key, _MISSING)
        if logged == value or (_is_nan(logged) and _is_nan(value)):
            continue  # the last logged value: trackline computes it from the history
        explicit[key] = value
    if run.alerts:
        explicit["_alerts"] = run.alerts[-100:]
    if explicit:
        yield SummaryUpdate(explicit)
    for name, (policy, source) in sorted(run.saved.items()):
        yield FileSaved(name, policy, source.stat().st_size, sha256_file(source), end, None)
    if run.final_state is not None:  # from W&B's server
        state, reason = run.final_state
        yield Finish(end, state, exit_code=run.exit_code, reason=reason)
    elif run.exit_code is None:
        yield Finish(end, "crashed", reason="imported; the W&B run has no exit record")
    else:
        state = "finished" if run.exit_code == 0 else "failed"
        yield Finish(end, state, exit_code=run.exit_code, reason="imported")


def find_runs(path: Path) -> tuple[list[list[Path]], list[str]]:
    """The W&B run files under ``path`` grouped by run (a resumed run has several, in
    start order), and the files that are not W&B run files, with why."""
    paths = run_files(path)
    if not paths:
        return [], []
    problems: list[str] = []
    record_type = record_class()
    keyed: dict[tuple[str, str, str], list[tuple[float, Path]]] = {}
    for path in paths:
        identity, start = ("", "", str(path)), 0.0
        try:
            for raw in scan(path.read_bytes()):
                record = record_type()
                record.ParseFromString(raw)
                if record.WhichOneof("record_type") == "run":
                    r = record.run
                    identity = (r.entity, r.project, r.run_id)
                    start = _seconds(r.start_time)
                    break
        except WandbFileError as exc:
            problems.append(f"{path}: {exc}")
            continue
        keyed.setdefault(identity, []).append((start, path))
    return [[p for _, p in sorted(group)] for group in keyed.values()], problems


def import_runs(
    groups: list[list[Path]], runs_dir: Path, project: str | None = None
) -> Iterator[Imported]:
    """Import each W&B run (a group of its run files, from ``find_runs``)."""
    for group in groups:
        yield _import_group(group, runs_dir, project)


def _import_group(paths: list[Path], runs_dir: Path, project: str | None) -> Imported:
    source = f"W&B run {paths[0].parent.name}"
    with tempfile.TemporaryDirectory(prefix="trackline-wandb-") as scratch:
        run = _Converter(project, Path(scratch)).convert(paths)
        assert run.start is not None
        if already_imported(runs_dir, run.start.run_id):
            return Imported(source, run.start.run_id, runs_dir / run.start.run_id, skipped=True)
        return write_converted(run, Path(scratch), runs_dir, source)


def write_converted(run: _Run, scratch: Path, runs_dir: Path, source: str) -> Imported:
    """Write a converted W&B run (media made under ``scratch``) and verify it."""
    assert run.start is not None
    run_id = run.start.run_id
    result = Imported(source, run_id, runs_dir / run_id)
    start = RunStart(**{**_fields(run.start), "config": run.config})
    copies = {f"media/{p.name}": p for p in (scratch / "media").glob("*") if p.is_file()}
    diff = next((d / "diff.patch" for d in run.files_dirs if (d / "diff.patch").is_file()), None)
    if run.environment:
        defaults = {"python": "", "platform": "", "hostname": "", "user": "", "argv": []}
        defaults.update(executable="", cwd="")
        run.system.insert(0, Environment(**{**defaults, **run.environment}))
    commit, remote = run.git
    if commit or remote or diff:
        size = diff.stat().st_size if diff else 0
        run.system.append(
            GitInfo(commit, None, remote, diff is not None, "git.diff" if diff else None, size)
        )
        if diff is not None:
            copies["git.diff"] = diff
    tail = run.partial_line
    for stream, rest in tail.items():
        if rest:
            run.console.append(Console(stream, [rest], run.last_time))
    records = [start, *run.main, *_finish_records(run)]
    files = {name: source for name, (_, source) in run.saved.items()}
    write_run(
        runs_dir,
        run_id,
        records,
        files,
        copies=copies,
        streams={"system": run.system, "console": run.console},
    )
    result.points_read = run.points
    result.points_written = verify(runs_dir / run_id, run.points)
    result.notes = run.notes + [
        f"{n} {what} not imported" for what, n in sorted(run.skipped.items())
    ]
    return result


def _fields(record: RunStart) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}
