"""MLflow tracking data -> trackline runs, read with MLflow's own client.

Experiments become projects (or all go to ``--project``); each run becomes a finished
run: params as config (numbers and booleans read back from MLflow's strings), every
metric's full history with its steps and timestamps, user tags as ``key=value`` tags,
``mlflow.note.content`` as notes, the status as the state, start and end times, and the
artifacts as run files.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..artifacts import sha256_file
from ..records import FileSaved, Finish, Metrics, Record, RunStart
from . import Imported, already_imported, clean_key, stable_run_id, verify, write_run

_STATES = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}


def _client(tracking_uri: str | None) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise RuntimeError(
            "reading MLflow data needs mlflow: pip install 'trackline[import-mlflow]'"
        ) from exc
    return MlflowClient(tracking_uri)


def project_name(experiment: str) -> str:
    """An MLflow experiment name as a trackline project name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", experiment).strip("-.") or "mlflow"
    return name[:128]


def param_value(text: str) -> Any:
    """MLflow keeps params as strings: numbers, booleans (``true``/``True``) and null
    (``null``/``None``) are read back; anything else stays a string."""
    python = {"True": True, "False": False, "None": None}
    if text in python:
        return python[text]
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


def _runs(client: Any, experiment_id: str) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _artifacts(client: Any, run_id: str, into: Path) -> dict[str, Path]:
    """Every artifact file of the run, downloaded under ``into``: name -> local path."""
    found: dict[str, Path] = {}
    pending = [""]
    while pending:
        folder = pending.pop()
        for entry in client.list_artifacts(run_id, folder or None):
            if entry.is_dir:
                pending.append(entry.path)
            else:
                local = Path(client.download_artifacts(run_id, entry.path, str(into)))
                found[entry.path] = local
    return found


def import_tracking(
    tracking_uri: str | None,
    runs_dir: Path,
    experiments: list[str] | None = None,
    project: str | None = None,
) -> Iterator[Imported]:
    """Import the runs of the chosen experiments (all without ``experiments``).

    MLflow's own deprecation warnings (its SQLAlchemy store) are not the user's business.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield from _import_all(tracking_uri, runs_dir, experiments, project)


def _import_all(
    tracking_uri: str | None, runs_dir: Path, experiments: list[str] | None, project: str | None
) -> Iterator[Imported]:
    client = _client(tracking_uri)
    chosen = client.search_experiments()
    if experiments:
        names = set(experiments)
        missing = names - {e.name for e in chosen}
        if missing:
            raise RuntimeError(f"no MLflow experiment named {', '.join(sorted(missing))}")
        chosen = [e for e in chosen if e.name in names]
    for experiment in chosen:
        for run in _runs(client, experiment.experiment_id):
            yield _import_run(client, run, runs_dir, project or project_name(experiment.name))


def _import_run(client: Any, run: Any, runs_dir: Path, project: str) -> Imported:
    info, data = run.info, run.data
    run_id = stable_run_id("mlflow", info.run_id)
    result = Imported(f"mlflow run {info.run_id}", run_id, runs_dir / run_id)
    if already_imported(runs_dir, run_id):
        result.skipped = True
        return result
    points: dict[tuple[int, str], tuple[float, float]] = {}
    for key in sorted(data.metrics):
        for m in client.get_metric_history(info.run_id, key):
            points[(int(m.step), clean_key(key))] = (m.timestamp / 1000.0, float(m.value))
    rows: dict[int, dict[str, float | int | str]] = {}
    times: dict[int, float] = {}
    for (step, key), (when, value) in sorted(points.items()):
        rows.setdefault(step, {})[key] = value
        times[step] = max(times.get(step, when), when)
    start = (info.start_time or 0) / 1000.0 or min(times.values(), default=0.0)
    end = (info.end_time or 0) / 1000.0 or max([start, *times.values()])
    tags = {k: v for k, v in data.tags.items() if not k.startswith("mlflow.")}
    records: list[Record] = [
        RunStart(
            run_id=run_id,
            project=project,
            name=(data.tags.get("mlflow.runName") or info.run_name or info.run_id)[:128],
            start_time=start,
            tags=["mlflow", *(f"{k}={v}"[:64] for k, v in sorted(tags.items()))],
            notes=data.tags.get("mlflow.note.content"),
            config={k: param_value(v) for k, v in data.params.items()},
            user=data.tags.get("mlflow.user", ""),
        )
    ]
    records += [Metrics(step, times[step], values) for step, values in sorted(rows.items())]
    files: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="trackline-mlflow-") as scratch:
        for name, local in _artifacts(client, info.run_id, Path(scratch)).items():
            files[name] = local
            records.append(
                FileSaved(name, "now", local.stat().st_size, sha256_file(local), end, None)
            )
        state = _STATES.get(info.status, "crashed")
        reason = "imported" if state != "crashed" else f"imported; MLflow status {info.status}"
        records.append(Finish(time=end, state=state, reason=reason))
        write_run(runs_dir, run_id, records, files)
    result.points_read = len(points)
    result.points_written = verify(runs_dir / run_id, len(points))
    return result
