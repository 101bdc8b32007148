"""Runs of a W&B project -> trackline runs, read through W&B's public API (``wandb.Api``).

For runs that were synced to W&B (its cloud or a W&B server) and whose run directories
are gone. The key and host are W&B's own (``WANDB_API_KEY`` or ``wandb login``,
``WANDB_BASE_URL``). Each run becomes a finished run with what the API gives: its name,
tags, notes, group, job type, config, every history row (``scan_history``: steps,
timestamps, histograms, images and tables through the run's files), the summary values
not computed from the history, system metrics (the ``system`` stream), the console
(``output.log``), the run's files, the commit, and its state. The same conversion as
the run-file importer (``wandb_runs``) follows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..records import Console, RunStart, SystemSample
from . import Imported, already_imported, stable_run_id
from .wandb_runs import (
    _INTERNAL_FILES,
    _Converter,
    _Run,
    project_name,
    system_factor,
    system_name,
    write_converted,
)

#: W&B's run states -> (trackline's, the reason written with it).
_STATES = {
    "finished": ("finished", "imported"),
    "failed": ("failed", "imported"),
    "crashed": ("crashed", "imported; crashed on W&B"),
    "killed": ("killed", "imported"),
    "running": ("crashed", "imported while still running on W&B"),
    "preempted": ("crashed", "imported; preempted on W&B"),
}
#: Rows asked of the system stream at once (W&B's API samples to this many at most).
SYSTEM_SAMPLES = 100_000


def _api() -> Any:
    try:
        import wandb
    except ImportError as exc:
        raise RuntimeError(
            "reading from W&B's server needs wandb: pip install 'trackline[import-wandb]'"
        ) from exc
    try:
        return wandb.Api(timeout=60)
    except wandb.errors.Error as exc:  # no key, a bad key, no server
        raise RuntimeError(f"W&B: {exc}") from None


def _time(text: Any) -> float:
    """A W&B timestamp (ISO 8601, UTC without a zone) as seconds."""
    if not isinstance(text, str) or not text:
        return 0.0
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def import_project(
    path: str, runs_dir: Path, project: str | None = None, api: Any = None
) -> Iterator[Imported]:
    """Import every run of W&B project ``path`` (``entity/project``)."""
    if path.count("/") != 1 or not all(path.split("/")):
        raise RuntimeError(f"--from-server takes ENTITY/PROJECT, not {path!r}")
    api = api if api is not None else _api()
    entity, name = path.split("/")
    target = project or project_name(name)
    try:
        found = list(api.runs(path))  # listed first: a page's runs are light
    except ValueError as exc:  # wandb's "Could not find project"
        raise RuntimeError(f"W&B: {exc} (entity {entity})") from None
    for run in found:
        yield _import_run(run, entity, name, target, runs_dir)


def _import_run(wb: Any, entity: str, project: str, target: str, runs_dir: Path) -> Imported:
    run_id = stable_run_id("wandb", f"{entity}/{project}/{wb.id}")
    source = f"W&B run {entity}/{project}/{wb.id}"
    if already_imported(runs_dir, run_id):
        return Imported(source, run_id, runs_dir / run_id, skipped=True)
    with tempfile.TemporaryDirectory(prefix="trackline-wandb-") as scratch_name:
        scratch = Path(scratch_name)
        converter = _Converter(target, scratch)
        run = _Run(wb.id, target, files_dirs=[scratch / "files"])
        files = list(wb.files())
        for file in files:
            file.download(root=str(scratch / "files"), replace=True, exist_ok=True)
        start = _time(getattr(wb, "created_at", None))
        user = getattr(getattr(wb, "user", None), "username", "") or ""
        run.start = RunStart(
            run_id=run_id,
            project=target,
            name=(wb.name or wb.id)[:128],
            start_time=start,
            group=wb.group or None,
            job_type=wb.job_type or None,
            tags=["wandb", *(t[:64] for t in wb.tags or [])],
            notes=wb.notes or None,
            user=user,
        )
        run.config = {k: v for k, v in dict(wb.config).items() if not k.startswith("_")}
        run.last_time = start
        for row in wb.scan_history():
            tree = dict(row)
            step = tree.pop("_step", None)
            converter.history_row(run, tree, step if isinstance(step, int) else run.max_step + 1)
        run.summary = dict(wb.summary)
        for row in wb.history(stream="system", pandas=False, samples=SYSTEM_SAMPLES):
            values = {
                system_name(name): float(value) * system_factor(name)
                for key, value in row.items()
                if key.startswith("system.") and isinstance(value, (int, float))
                for name in [key.removeprefix("system.")]
            }
            if values:
                run.system.append(SystemSample(float(row.get("_timestamp") or start), values))
        for file in files:
            name = file.name
            local = scratch / "files" / name
            if name == "output.log" and local.is_file():
                lines = local.read_text(errors="replace").splitlines()
                run.console.append(Console("stdout", lines, start))
            elif not name.startswith("media/") and name not in _INTERNAL_FILES and local.is_file():
                run.saved[name] = ("end", local)
        if getattr(wb, "commit", None):
            run.git = (wb.commit, None)
        run.exit_time = _time(getattr(wb, "heartbeat_at", None)) or None
        state, reason = _STATES.get(wb.state, ("crashed", f"imported; W&B state {wb.state}"))
        run.final_state = (state, reason)
        run.exit_code = 0 if state == "finished" else None
        return write_converted(run, scratch, runs_dir, source)
