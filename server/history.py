"""Metric history: rows as the reader returns them, downsampled series, exports.

Rows (``history``) follow ``LocalRun.history``: ordered by step, one per step,
later values winning per key; ``_time`` is the time of the step's last row.

Series (``sample``) are what charts need: per (run, key), the points over an
x-axis (step, wall time, time relative to the run's start, or another metric
joined on step) cut into ``samples`` equal buckets of x; each bucket gives
its first x, the mean of its values and their min and max, so a spike is never
hidden. NaN values are left out of the mean, min and max. A series with no more
points than ``samples`` comes back whole. ``x_range`` zooms.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from . import chunks as ch
from . import lineage
from .blockcache import BlockCache
from .samplecache import SampleCache, Sampled, owned
from .series import Blocks, SeriesInfo, list_series, read_blocks, read_points
from .wire import sanitize

X_AXES = ("step", "time", "relative")
MAX_SAMPLES = 100_000


@dataclass
class Columns:
    """History as columns: parallel steps and times, and per key a value or ``None`` per row."""

    steps: list[int]
    times: list[float]
    values: dict[str, list[Any]]
    kinds: dict[str, str]  # "number" | "text"

    def rows(self) -> list[dict[str, Any]]:
        keys = list(self.values)
        out = []
        for i, (step, when) in enumerate(zip(self.steps, self.times, strict=True)):
            row: dict[str, Any] = {"_step": step, "_time": when}
            for key in keys:
                value = self.values[key][i]
                if value is not None:
                    row[key] = value
            out.append(row)
        return out

    def json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "times": sanitize(self.times),
            "values": {k: sanitize(v) for k, v in self.values.items()},
            "kinds": self.kinds,
        }


def _kind(points: ch.Points) -> str:
    if points.numeric:
        return "number"
    return "text" if all(isinstance(v, str) for v in points.objects or []) else "mixed"


def history(
    conn: sa.Connection,
    run_pk: int,
    keys: list[str] | None,
    samples: int | None = None,
    system: bool = False,
    views: list[lineage.View] | None = None,
) -> Columns:
    """The rows of a run (metrics, or system samples) as columns.

    ``views`` (``lineage.views_of``): a fork's inherited rows and rewound rows hidden.
    """
    value_kind, row_kind = ("s", "S") if system else ("m", "r")
    row_points: ch.Points | None = None
    if views is not None and not system and not lineage.plain(views):
        got = lineage.read(conn, views, (value_kind,), keys)
        infos, points = got.infos, got.visible
        if keys is None:
            rows = lineage.read(conn, views, (row_kind,), None)
            if rows.infos:
                row_points = rows.visible[rows.infos[0].id]
    else:
        infos = list_series(conn, [run_pk], (value_kind,), keys)
        points = read_points(conn, infos)
    if row_points is None and (system or keys is None):
        rows_info = list_series(conn, [run_pk], (row_kind,))
        if rows_info:
            row_points = read_points(conn, rows_info)[rows_info[0].id]
    if row_points is not None and len(row_points):
        all_steps = row_points.steps
        all_times = row_points.times
    else:
        per_key = [p for p in points.values() if len(p)]
        if not per_key:
            return Columns([], [], {i.key: [] for i in infos}, {})
        first = per_key[0].steps
        if all(np.array_equal(p.steps, first) for p in per_key[1:]):  # logged together
            all_steps, all_times = first, np.maximum.reduce([p.times for p in per_key])
        else:
            all_steps = np.unique(np.concatenate([p.steps for p in per_key]))
            all_times = np.full(len(all_steps), -np.inf)
            for p in per_key:
                where = np.searchsorted(all_steps, p.steps)
                np.maximum.at(all_times, where, p.times)
    index = np.arange(len(all_steps))
    if samples is not None and len(all_steps) > samples:
        index = np.unique(np.linspace(0, len(all_steps) - 1, samples).round().astype(np.intp))
    steps = all_steps[index]
    values: dict[str, list[Any]] = {}
    kinds: dict[str, str] = {}
    for info in infos:
        p = points[info.id]
        column: list[Any] = [None] * len(steps)
        if len(p):
            where = np.searchsorted(steps, p.steps)
            where = np.minimum(where, len(steps) - 1) if len(steps) else where
            hit = steps[where] == p.steps if len(steps) else np.zeros(0, np.bool_)
            picked = p.take(np.flatnonzero(hit)).python_values()  # only the rows returned
            for target, value in zip(where[hit].tolist(), picked, strict=True):
                column[target] = value
        values[info.key] = column
        kinds[info.key] = _kind(p)
    return Columns(steps.tolist(), all_times[index].tolist(), values, kinds)


def history_rows_csv(columns: Columns) -> Iterator[str]:
    """CSV text, header first; values as Python writes them (``nan``, ``inf``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(columns.values)
    writer.writerow(["_step", "_time", *keys])
    for i, (step, when) in enumerate(zip(columns.steps, columns.times, strict=True)):
        writer.writerow(
            [step, repr(when)]
            + [
                ""
                if (v := columns.values[k][i]) is None
                else (repr(v) if isinstance(v, float) else v)
                for k in keys
            ]
        )
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def history_parquet(columns: Columns) -> bytes:
    """Parquet bytes (pyarrow): ``_step``, ``_time`` and a column per key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays: dict[str, Any] = {
        "_step": pa.array(columns.steps, pa.int64()),
        "_time": pa.array(columns.times, pa.float64()),
    }
    for key, values in columns.values.items():
        kind = columns.kinds.get(key)
        if kind == "number":
            present = [v for v in values if v is not None]
            if present and all(type(v) is int for v in present):
                arrays[key] = pa.array(values, pa.int64())
            else:
                arrays[key] = pa.array(
                    [None if v is None else float(v) for v in values], pa.float64()
                )
        elif kind == "boolean":
            arrays[key] = pa.array(values, pa.bool_())
        else:
            arrays[key] = pa.array([None if v is None else str(v) for v in values], pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table(arrays), sink)
    return sink.getvalue()


# -- downsampled series ----------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    pk: int
    run_id: str
    start_time: float | None


def sample(
    conn: sa.Connection,
    runs: list[RunRef],
    keys: list[str],
    samples: int,
    x_axis: str = "step",
    x_range: tuple[float | None, float | None] = (None, None),
    cache: BlockCache | None = None,
    views: dict[int, list[lineage.View]] | None = None,
    rewound: bool = False,
    sampled: SampleCache | None = None,
) -> list[dict[str, Any]]:
    """Downsampled series for every (run, key) that has points; see the module docstring.

    ``views`` (per run pk, ``lineage.views_of``): a fork's series begin with its parent's
    points up to the fork step (the entry then says ``fork_step``), a rewound run's hide
    the rewound points; with ``rewound``, those come as entries of their own marked
    ``"rewound": true``. ``sampled``: the buckets of series made from their block
    summaries, kept for the next query (``samplecache.py``).
    """
    special = {pk: v for pk, v in (views or {}).items() if pk in {r.pk for r in runs}}
    special = {pk: v for pk, v in special.items() if not lineage.plain(v)}
    plain = [r for r in runs if r.pk not in special]
    out = _sample_plain(conn, plain, keys, samples, x_axis, x_range, cache, sampled)
    for pk, run_views in special.items():
        run = next(r for r in runs if r.pk == pk)
        out += _sample_lineage(conn, run, run_views, keys, samples, x_axis, x_range, rewound)
    return out


def _sample_lineage(
    conn: sa.Connection,
    run: RunRef,
    views: list[lineage.View],
    keys: list[str],
    samples: int,
    x_axis: str,
    x_range: tuple[float | None, float | None],
    rewound: bool,
) -> list[dict[str, Any]]:
    """``sample`` of one fork or rewound run, from its points over its lineage."""
    with_times = x_axis in ("time", "relative")
    got = lineage.read(conn, views, ("m",), keys, with_times=with_times, rewound=rewound)
    x_source: ch.Points | None = None
    if x_axis not in X_AXES:
        x_read = lineage.read(conn, views, ("m",), [x_axis], with_times=False)
        x_source = x_read.visible[x_read.infos[0].id] if x_read.infos else None
    fork_step = int(views[1].limit) if len(views) > 1 else None
    out = []
    for info in got.infos:
        entry = _series(got.visible[info.id], info, run, x_axis, x_source, samples, x_range)
        if entry is not None:
            if fork_step is not None and info.key in got.inherited:
                entry["fork_step"] = fork_step
            out.append(entry)
        hidden = got.hidden.get(info.id)
        if hidden is not None and len(hidden):
            entry = _series(hidden, info, run, x_axis, x_source, samples, x_range)
            if entry is not None:
                entry["rewound"] = True
                out.append(entry)
    return out


def _sample_plain(
    conn: sa.Connection,
    runs: list[RunRef],
    keys: list[str],
    samples: int,
    x_axis: str,
    x_range: tuple[float | None, float | None],
    cache: BlockCache | None,
    sampled: SampleCache | None = None,
) -> list[dict[str, Any]]:
    by_pk = {r.pk: r for r in runs}
    infos = list_series(conn, list(by_pk), ("m",), keys)
    metric_x = x_axis not in X_AXES
    with_times = x_axis in ("time", "relative")
    step_range = x_range if x_axis == "step" else (None, None)
    # Long, ordered series over steps or time: the precomputed block summaries are enough.
    whole = x_range == (None, None) and x_axis in X_AXES
    long = [i for i in infos if whole and i.ordered and i.count > samples * ch.BLOCK]
    bucketed = _bucketed(conn, long, by_pk, samples, with_times, cache, sampled)
    rest = [i for i in infos if i.id not in bucketed]
    points = read_points(conn, rest, with_times=with_times, step_range=step_range)
    x_points: dict[int, ch.Points] = {}
    if metric_x:
        x_infos = list_series(conn, list(by_pk), ("m",), [x_axis])
        read = read_points(conn, x_infos, with_times=False)
        x_points = {info.run_pk: read[info.id] for info in x_infos}
    out = []
    for info in infos:
        run = by_pk[info.run_pk]
        done = bucketed.get(info.id)
        if done is not None:
            out.append(_from_buckets(done, info, run, x_axis))
            continue
        p = points[info.id]
        entry = _series(p, info, run, x_axis, x_points.get(info.run_pk), samples, x_range)
        if entry is not None:
            out.append(entry)
    return out


def _bucketed(
    conn: sa.Connection,
    infos: list[SeriesInfo],
    runs: dict[int, RunRef],
    samples: int,
    with_times: bool,
    cache: BlockCache | None,
    sampled: SampleCache | None,
) -> dict[int, Sampled]:
    """The buckets of the series that their block summaries give, by series id: from
    ``sampled`` where it holds them at the series's present state, else made from the
    summaries (and kept there). A series they cannot give is left out."""
    axis = "time" if with_times else "step"
    out: dict[int, Sampled] = {}
    todo = []
    for info in infos:
        hit = (
            None
            if sampled is None
            else sampled.get(_cache_key(info, axis, samples), _version(info, runs))
        )
        if hit is None:
            todo.append(info)
        elif hit.arrays is not None:
            out[info.id] = hit
    if not todo:
        return out
    summarized = read_blocks(conn, todo, cache, with_times=with_times)
    if with_times:
        made = _series_over_time(summarized, samples)
    else:
        made = _series_from_blocks(summarized, samples)
    for info in todo:
        found = made.get(info.id)
        if found is not None:
            out[info.id] = found
        if sampled is not None:
            kept = found or Sampled(0, None)  # None: read its points, not its blocks again
            sampled.put(_cache_key(info, axis, samples), _version(info, runs), kept)
    return out


def _cache_key(info: SeriesInfo, axis: str, samples: int) -> tuple[int, str, int]:
    return (info.id, axis, samples)


def _version(info: SeriesInfo, runs: dict[int, RunRef]) -> tuple[Any, ...]:
    """The series row's state (``samplecache.py``): any new point changes ``count``; the
    run's id and start time tell a run apart from a later one given the same row ids."""
    run = runs[info.run_pk]
    return (
        info.run_pk,
        run.run_id,
        run.start_time,
        info.key,
        info.count,
        info.step_min,
        info.step_max,
        info.ordered,
    )


def _from_buckets(done: Sampled, info: SeriesInfo, run: RunRef, x_axis: str) -> dict[str, Any]:
    """The answer's entry of a series bucketed from its blocks (arrays shared, read-only)."""
    assert done.arrays is not None
    x, y, lows, highs, counts = done.arrays
    if x_axis == "relative":  # buckets over wall time; the first one starts at the first point
        x = x - (run.start_time if run.start_time is not None else float(x[0]))
    return {
        "run": run.run_id,
        "key": info.key,
        "x_axis": x_axis,
        "kind": "number",
        "total": done.total,
        "sampled": True,
        "x": x,
        "y": y,
        "min": lows,
        "max": highs,
        "count": counts,
    }


def _reduce_blocks(
    blocks: npt.NDArray[Any], starts: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Mean (of the finite values), min, max and count of the buckets of whole blocks that
    begin at ``starts`` (each runs to the next start)."""
    finite = np.add.reduceat(blocks["finite"], starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(
            finite > 0, np.add.reduceat(blocks["sum"], starts) / np.maximum(finite, 1), np.nan
        )
    lows = np.fmin.reduceat(blocks["min"], starts)
    highs = np.fmax.reduceat(blocks["max"], starts)
    return means, lows, highs, np.add.reduceat(blocks["n"], starts)


def _series_from_blocks(summarized: Blocks, samples: int) -> dict[int, Sampled]:
    """Buckets of whole blocks: exact min, max and mean of their points, no point read.

    All series are bucketed in one pass over the blocks of all: each series's
    buckets start at its own first block, so no bucket spans two series.
    """
    if not summarized.spans:
        return {}
    firsts = [  # each series's bucket starts, in the array's order
        np.arange(start, stop, -(-(stop - start) // samples))
        for start, stop in summarized.spans.values()
    ]
    starts = np.concatenate(firsts)
    blocks = summarized.array
    means, lows, highs, counts = _reduce_blocks(blocks, starts)
    xs = blocks["first"][starts]
    bucket_offsets = np.cumsum([0] + [len(f) for f in firsts[:-1]])
    totals = np.add.reduceat(counts.astype(np.int64), bucket_offsets).tolist()
    out: dict[int, Sampled] = {}
    at = 0
    for series_id, first, total in zip(summarized.spans, firsts, totals, strict=True):
        cut = slice(at, at + len(first))
        at += len(first)
        arrays = (xs[cut], means[cut], lows[cut], highs[cut], counts[cut])
        out[series_id] = Sampled(int(total), tuple(owned(a) for a in arrays))
    return out


def _series_over_time(summarized: Blocks, samples: int) -> dict[int, Sampled]:
    """Buckets of whole blocks over wall time, from the blocks' time bounds: equal widths
    of time, each bucket from its first block's first point (x: that point's time). A
    series whose times go back (a clock set back) is left to its points."""
    times = summarized.times
    if times is None or not summarized.spans:
        return {}
    firsts, lasts = times[:, 0], times[:, 1]
    chosen: list[tuple[int, int, npt.NDArray[np.intp]]] = []
    for series_id, (start, stop) in summarized.spans.items():
        t_first, t_last = firsts[start:stop], lasts[start:stop]
        if not ((np.diff(t_first) >= 0).all() and (t_first[1:] >= t_last[:-1]).all()):
            continue
        lo, hi = float(t_first[0]), float(t_last[-1])
        width = (hi - lo) / samples or 1.0
        bucket = np.minimum(((t_first - lo) / width).astype(np.int64), samples - 1)
        starts = start + np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        chosen.append((series_id, stop, starts))
    if not chosen:
        return {}
    # Each series's buckets, then its end (a bucket thrown away), so that no bucket runs
    # into the blocks of a series left out.
    blocks = summarized.array
    pieces, marks = [], []
    for _, stop, own in chosen:
        pieces.append(own)
        marks.append(np.ones(len(own), np.bool_))
        if stop < len(blocks):
            pieces.append(np.array([stop]))
            marks.append(np.zeros(1, np.bool_))
    starts, kept = np.concatenate(pieces), np.concatenate(marks)
    means, lows, highs, counts = _reduce_blocks(blocks, starts)
    xs = firsts[np.minimum(starts, len(blocks) - 1)]
    means, lows, highs, counts, xs = (a[kept] for a in (means, lows, highs, counts, xs))
    out: dict[int, Sampled] = {}
    at = 0
    for series_id, _stop, own in chosen:
        cut = slice(at, at + len(own))
        at += len(own)
        arrays = (xs[cut], means[cut], lows[cut], highs[cut], counts[cut])
        out[series_id] = Sampled(int(counts[cut].sum()), tuple(owned(a) for a in arrays))
    return out


def _series(
    p: ch.Points,
    info: SeriesInfo,
    run: RunRef,
    x_axis: str,
    x_source: ch.Points | None,
    samples: int,
    x_range: tuple[float | None, float | None],
) -> dict[str, Any] | None:
    base: dict[str, Any] = {"run": run.run_id, "key": info.key, "x_axis": x_axis}
    if not p.numeric or p.values is None:
        # Text: the raw points, thinned to ``samples``.
        values = p.python_values()
        index = np.arange(len(values))
        if len(index) > samples:
            index = np.unique(np.linspace(0, len(values) - 1, samples).round().astype(np.intp))
        base.update(
            kind="text",
            total=len(values),
            sampled=len(index) < len(values),
            x=p.steps[index].tolist(),
            y=sanitize([values[i] for i in index.tolist()]),
        )
        return base
    y = p.values
    if x_axis == "step":
        x: npt.NDArray[Any] = p.steps
    elif x_axis == "time":
        x = p.times
    elif x_axis == "relative":
        origin = run.start_time
        if origin is None:
            origin = float(p.times.min()) if len(p.times) else 0.0
        x = p.times - origin
    else:
        if x_source is None or x_source.values is None:
            return None
        _, mine, theirs = np.intersect1d(
            p.steps, x_source.steps, assume_unique=True, return_indices=True
        )
        x = x_source.values[theirs]
        y = y[mine]
    if x_axis != "step" and len(x) > 1 and not (np.diff(x) >= 0).all():
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    low, high = x_range
    if low is not None or high is not None:
        start = 0 if low is None else int(np.searchsorted(x, low, "left"))
        stop = len(x) if high is None else int(np.searchsorted(x, high, "right"))
        x, y = x[start:stop], y[start:stop]
    total = len(x)
    base.update(kind="number", total=total)
    # numpy arrays, as the block summaries give: ``wire.Json`` writes them (non-finite
    # floats by name) and ``series_wire`` copies their memory.
    if total <= samples:
        ys = y.astype(np.float64)
        base.update(sampled=False, x=x, y=ys, min=ys, max=ys, count=np.ones(total, np.int64))
        return base
    lo = float(x[0]) if low is None else float(low)
    hi = float(x[-1]) if high is None else float(high)
    width = (hi - lo) / samples or 1.0
    bucket = np.minimum(((x - lo) / width).astype(np.int64), samples - 1)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, total])
    nan = np.isnan(y)
    mins = np.fmin.reduceat(y, starts)
    maxs = np.fmax.reduceat(y, starts)
    finite_counts = np.add.reduceat((~nan).astype(np.int64), starts)
    sums = np.add.reduceat(np.where(nan, 0.0, y), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(finite_counts > 0, sums / np.maximum(finite_counts, 1), np.nan)
    base.update(sampled=True, x=x[starts], y=means, min=mins, max=maxs, count=counts)
    return base
