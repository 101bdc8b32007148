"""TensorBoard event files -> trackline runs, read with TensorBoard's own event reader.

Every directory holding ``events.out.tfevents.*`` files becomes a run: scalars (old
``simple_value`` summaries and TF2 scalar tensors) as metric rows with their steps and
wall times, histograms as histogram records, hparams (the HParams plugin) as config and
its metric values as summary, text as summary strings (the latest per tag). Images are
counted and named in the report, not imported.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..records import Finish, Histogram, Metrics, Record, RunStart, SummaryUpdate
from . import Imported, already_imported, clean_key, plain, stable_run_id, verify, write_run


def event_dirs(logdir: Path) -> list[Path]:
    """The directories under ``logdir`` (itself included) that hold event files."""
    found = {p.parent for p in logdir.rglob("events.out.tfevents.*") if p.is_file()}
    return sorted(found)


def _accumulator(path: Path) -> Any:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as exc:
        raise RuntimeError(
            "reading TensorBoard event files needs tensorboard: "
            "pip install 'trackline[import-tensorboard]'"
        ) from exc
    guidance = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0, "compressedHistograms": 0}
    acc = EventAccumulator(str(path), size_guidance=guidance)
    acc.Reload()
    return acc


def _tensor_value(event: Any) -> Any:
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(event.tensor_proto)


def _hparams(acc: Any) -> tuple[dict[str, Any], list[str]]:
    """(config, metric tags) from the HParams plugin's session start info."""
    try:
        from tensorboard.plugins.hparams import plugin_data_pb2
    except ImportError:
        return {}, []
    config: dict[str, Any] = {}
    metrics: list[str] = []
    try:
        content = acc.PluginTagToContent("hparams")
    except KeyError:  # no hparams in this run
        content = {}
    for raw in content.values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                config[name] = plain(getattr(value, kind)) if kind else None
        if data.HasField("experiment"):
            metrics += [m.name.tag for m in data.experiment.metric_infos]
    return config, metrics


def read_run(
    path: Path,
) -> tuple[list[Metrics], list[Histogram], dict[str, Any], dict[str, Any], list[str], int]:
    """(rows, histograms, config, summary, notes, points) of one event-file directory."""
    acc = _accumulator(path)
    tags = acc.Tags()
    points: dict[tuple[int, str], tuple[float, float]] = {}  # (step, key) -> (time, value)
    for tag in tags.get("scalars", []):
        for e in acc.Scalars(tag):
            points[(e.step, clean_key(tag))] = (e.wall_time, float(e.value))
    histograms: list[Histogram] = []
    summary: dict[str, Any] = {}
    notes: list[str] = []
    for tag in tags.get("histograms", []):
        for e in acc.Histograms(tag):
            hv = e.histogram_value
            limits = list(hv.bucket_limit)
            counts = [float(c) for c in hv.bucket]
            if not counts:
                continue
            edges = [float(hv.min)] + [min(float(x), float(hv.max)) for x in limits]
            for i in range(1, len(edges)):  # TensorBoard's last limit is a huge sentinel
                edges[i] = max(edges[i], edges[i - 1])
            histograms.append(Histogram(e.step, e.wall_time, clean_key(tag), edges, counts))
    for tag in tags.get("tensors", []):
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        events = acc.Tensors(tag)
        if plugin == "scalars":
            for e in events:
                points[(e.step, clean_key(tag))] = (e.wall_time, float(_tensor_value(e).item()))
        elif plugin == "histograms":
            for e in events:
                buckets = _tensor_value(e)
                if getattr(buckets, "ndim", 0) != 2 or not len(buckets):
                    continue
                edges = [float(buckets[0][0])] + [float(b[1]) for b in buckets]
                counts = [float(b[2]) for b in buckets]
                histograms.append(Histogram(e.step, e.wall_time, clean_key(tag), edges, counts))
        elif plugin == "text" and events:
            value = _tensor_value(events[-1])
            text = value.item() if getattr(value, "size", 0) == 1 else value.ravel()[0]
            summary[clean_key(tag)] = text.decode() if isinstance(text, bytes) else str(text)
    images = len(tags.get("images", []))
    if images:
        notes.append(f"{images} image tag(s) not imported")
    config, _metric_tags = _hparams(acc)
    by_step: dict[int, dict[str, float | int | str]] = {}
    times: dict[int, float] = {}
    for (step, key), (wall, value) in sorted(points.items()):
        by_step.setdefault(step, {})[key] = value
        times[step] = max(times.get(step, wall), wall)
    rows = [Metrics(step, times[step], values) for step, values in sorted(by_step.items())]
    return rows, histograms, config, summary, notes, len(points)


def import_logdir(logdir: Path, runs_dir: Path, project: str) -> Iterator[Imported]:
    """Import every event-file directory under ``logdir``; yields each as it is done."""
    logdir = logdir.resolve()
    for path in event_dirs(logdir):
        relative = path.relative_to(logdir).as_posix()
        name = relative if relative != "." else logdir.name
        run_id = stable_run_id("tb", f"{logdir.name}/{relative}")
        result = Imported(str(path), run_id, runs_dir / run_id)
        if already_imported(runs_dir, run_id):
            result.skipped = True
            yield result
            continue
        rows, histograms, config, summary, notes, points = read_run(path)
        result.points_read = points
        result.notes = notes
        times = [r.time for r in rows] + [h.time for h in histograms]
        start = min(times) if times else path.stat().st_mtime
        end = max(times) if times else start
        records: list[Record] = [
            RunStart(
                run_id=run_id,
                project=project,
                name=name[:128],
                start_time=start,
                tags=["tensorboard"],
                notes=f"Imported from TensorBoard: {path}",
                config=config,
                host=socket.gethostname(),
                user=getpass.getuser(),
            )
        ]
        timeline: list[Metrics | Histogram] = [*rows, *histograms]
        timeline.sort(key=lambda r: (r.step, r.time))
        records += timeline
        if summary:
            records.append(SummaryUpdate(summary))
        records.append(Finish(time=end, state="finished", exit_code=0, reason="imported"))
        write_run(runs_dir, run_id, records)
        result.points_written = verify(runs_dir / run_id, points)
        yield result
