"""TensorBoard event files -> trackline runs, read with TensorBoard's own event reader.

Every directory holding ``events.out.tfevents.*`` files becomes a run: scalars (old
``simple_value`` summaries and TF2 scalar tensors) as metric rows with their steps and
wall times, histograms as histogram records, hparams (the HParams plugin) as config and
its metric values as summary, text as summary strings (the latest per tag), images
(``add_image``, ``tf.summary.image``) as image media at their steps.
"""

from __future__ import annotations

import getpass
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..records import Finish, Histogram, MediaRecord, Metrics, Record, RunStart, SummaryUpdate
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


def _image_media(
    tag: str, step: int, when: float, encoded: list[bytes], media_dir: Path
) -> MediaRecord | None:
    """Encoded images (PNG, JPEG, GIF) of one tag at one step as an image media record."""
    from ..media import Image

    items = []
    for data in encoded:
        with tempfile.NamedTemporaryFile(suffix=".img") as file:
            file.write(data)
            file.flush()
            try:
                items.append(Image(file.name).write(media_dir))
            except Exception:  # not an image Pillow reads: left out, as TensorBoard shows none
                continue
    return MediaRecord(step, when, clean_key(tag), "image", items) if items else None


def read_images(acc: Any, media_dir: Path) -> list[MediaRecord]:
    """Images: old-style image summaries (``add_image``) and TF2 image tensors."""
    tags = acc.Tags()
    found: list[MediaRecord | None] = []
    for tag in tags.get("images", []):
        for e in acc.Images(tag):
            found.append(
                _image_media(tag, e.step, e.wall_time, [e.encoded_image_string], media_dir)
            )
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "images":
            continue
        for e in acc.Tensors(tag):
            value = _tensor_value(e).ravel().tolist()  # width, height, then the images
            found.append(_image_media(tag, e.step, e.wall_time, list(value[2:]), media_dir))
    return [m for m in found if m is not None]


def read_run(
    path: Path, media_dir: Path | None = None
) -> tuple[
    list[Metrics], list[Histogram | MediaRecord], dict[str, Any], dict[str, Any], list[str], int
]:
    """(rows, histograms and images, config, summary, notes, points) of one event-file
    directory; images are stored in ``media_dir`` (without one, counted in the notes)."""
    acc = _accumulator(path)
    tags = acc.Tags()
    points: dict[tuple[int, str], tuple[float, float]] = {}  # (step, key) -> (time, value)
    for tag in tags.get("scalars", []):
        for e in acc.Scalars(tag):
            points[(e.step, clean_key(tag))] = (e.wall_time, float(e.value))
    histograms: list[Histogram | MediaRecord] = []
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
    if media_dir is not None:
        histograms += read_images(acc, media_dir)
    elif tags.get("images"):
        notes.append(f"{len(tags['images'])} image tag(s) not imported")
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
        scratch = tempfile.TemporaryDirectory(prefix="trackline-tb-")
        media_dir = Path(scratch.name) / "media"
        rows, histograms, config, summary, notes, points = read_run(path, media_dir)
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
        timeline: list[Metrics | Histogram | MediaRecord] = [*rows, *histograms]
        timeline.sort(key=lambda r: (r.step, r.time))
        records += timeline
        if summary:
            records.append(SummaryUpdate(summary))
        records.append(Finish(time=end, state="finished", exit_code=0, reason="imported"))
        copies = {f"media/{p.name}": p for p in media_dir.glob("*") if p.is_file()}
        with scratch:
            write_run(runs_dir, run_id, records, copies=copies)
        result.points_written = verify(runs_dir / run_id, points)
        yield result
