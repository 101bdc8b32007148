"""Packing a series' points into chunks of arrays, and reading them back.

A chunk holds ``n`` points of one (run, key) in log order: steps (int64, or
nothing when they are consecutive), values and times (float64). Values keep
their Python type: a chunk of floats is float64 (``f``), of integers int64
(``i``), of both float64 plus a byte per point flagging the integers (``x``);
anything with text is a msgpack list (``o``). NaN and infinities are kept.
"""

from __future__ import annotations

import array
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

#: Small chunks at the end of a series are compacted into one once they hold this many
#: points (or number ``TAIL_CHUNKS``), so a slowly logged metric still ends up in chunks
#: of about this size, not in a row per point (``series.SeriesWriter``).
MERGE_BELOW = 2048
#: A batch this big or bigger is a good chunk of its own, never compacted: compacting a
#: wide row's batches (thousands of keys, hundreds of points each per ingest request)
#: would cost more than it saves. A smaller one joins the series' tail of small chunks.
MERGE_BATCH_BELOW = 256
#: A series' tail of small chunks is compacted when it has this many fresh ones, or this
#: many compacted from them (``serieswrite._due``): each point is rewritten a few times at
#: most, and a reader finds at most twice this many small chunks.
TAIL_CHUNKS = 8
#: The most points in one chunk.
CHUNK_MAX = 65_536
#: Points per block of the precomputed summary that downsampling reads instead of the points.
BLOCK = 64
BLOCK_DTYPE = np.dtype(
    [
        ("first", "<i8"),
        ("last", "<i8"),
        ("min", "<f8"),
        ("max", "<f8"),
        ("sum", "<f8"),
        ("finite", "<i4"),
        ("n", "<i4"),
    ]
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class Points:
    """Points of one series: parallel arrays; ``values`` numeric or ``objects`` not."""

    steps: Int64Array
    times: Float64Array
    values: Float64Array | None  # float64 view of numeric values
    ints: BoolArray | None  # which values are integers (None: none are)
    objects: list[Any] | None  # values of a text or mixed series
    int_values: Int64Array | None = None  # exact int64 values of an all-int chunk

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def numeric(self) -> bool:
        return self.objects is None

    def python_values(self) -> list[Any]:
        """The values as Python objects, with their original types."""
        if self.objects is not None:
            return self.objects
        assert self.values is not None
        if self.int_values is not None:
            return self.int_values.tolist()  # type: ignore[no-any-return]
        out: list[Any] = self.values.tolist()
        if self.ints is not None and self.ints.any():
            for i in np.flatnonzero(self.ints).tolist():
                out[i] = int(out[i])
        return out

    def take(self, index: npt.NDArray[np.intp]) -> Points:
        return Points(
            self.steps[index],
            self.times[index],
            None if self.values is None else self.values[index],
            None if self.ints is None else self.ints[index],
            None if self.objects is None else [self.objects[i] for i in index.tolist()],
            None if self.int_values is None else self.int_values[index],
        )


@dataclass
class Encoded:
    """One chunk ready for the ``chunks`` table."""

    n: int
    step_min: int
    step_max: int
    v_min: float | None
    v_max: float | None
    dtype: str
    dense: bool
    sorted: bool
    blocks: bytes
    steps: bytes
    vals: bytes
    flags: bytes
    times: bytes
    #: Per block: its first and last point's time (``block_times``); empty without blocks.
    block_times: bytes = b""

    def row(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "step_min": self.step_min,
            "step_max": self.step_max,
            "v_min": self.v_min,
            "v_max": self.v_max,
            "dtype": self.dtype,
            "dense": self.dense,
            "sorted": self.sorted,
            "blocks": self.blocks,
            "steps": self.steps,
            "vals": self.vals,
            "flags": self.flags,
            "times": self.times,
        }


def f64(values: list[Any]) -> Float64Array:
    """A float64 array from a list of numbers (``array`` converts faster than numpy)."""
    return np.frombuffer(array.array("d", values), dtype=np.float64)


def i64(values: list[int]) -> Int64Array:
    """An int64 array from a list of ints; ``OverflowError`` beyond int64."""
    return np.frombuffer(array.array("q", values), dtype=np.int64)


def from_lists(steps: list[int], times: list[float], values: list[Any]) -> Points:
    """Points from the lists ingest builds (values of any scalar type)."""
    step_array = i64(steps)
    time_array = f64(times)
    types = set(map(type, values))
    if types == {float}:
        return Points(step_array, time_array, f64(values), None, None)
    if types == {int}:
        try:
            exact = i64(values)
        except OverflowError:  # beyond int64: kept exactly as objects
            return Points(step_array, time_array, None, None, list(values))
        return Points(
            step_array,
            time_array,
            exact.astype(np.float64),
            np.ones(len(values), np.bool_),
            None,
            exact,
        )
    if types == {int, float}:
        ints = np.fromiter((type(v) is int for v in values), dtype=np.bool_, count=len(values))
        if all(_INT64_MIN <= v <= _INT64_MAX for v in values if type(v) is int):
            return Points(step_array, time_array, f64(values), ints, None)
    return Points(step_array, time_array, None, None, list(values))


def rows_points(steps: list[int], times: list[float]) -> Points:
    """Points without values: one per metrics row (or system sample), for rows and their times."""
    return Points(i64(steps), f64(times), None, None, None)


def concat_empty() -> Points:
    return Points(
        np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64), None, None
    )


def concat(parts: list[Points]) -> Points:
    """The points of several chunks, in order."""
    if len(parts) == 1:
        return parts[0]
    steps = np.concatenate([p.steps for p in parts]) if parts else np.empty(0, np.int64)
    times = np.concatenate([p.times for p in parts]) if parts else np.empty(0, np.float64)
    if all(p.values is None and p.objects is None for p in parts):
        return Points(steps, times, None, None, None)
    if all(p.numeric for p in parts):
        values = (
            np.concatenate([p.values for p in parts if p.values is not None])
            if parts
            else np.empty(0, np.float64)
        )
        any_ints = any(p.ints is not None for p in parts)
        ints = (
            np.concatenate(
                [p.ints if p.ints is not None else np.zeros(len(p), np.bool_) for p in parts]
            )
            if any_ints
            else None
        )
        int_values = None
        if parts and all(p.int_values is not None for p in parts):
            int_values = np.concatenate([p.int_values for p in parts if p.int_values is not None])
        return Points(steps, times, values, ints, None, int_values)
    objects: list[Any] = []
    for p in parts:
        objects.extend(p.python_values())
    return Points(steps, times, None, None, objects)


def encode(points: Points) -> Encoded:
    """Pack points into one chunk."""
    steps = points.steps
    n = len(steps)
    step_min = int(steps.min())
    step_max = int(steps.max())
    diffs = np.diff(steps)
    is_sorted = bool(n < 2 or (diffs > 0).all())
    dense = bool(is_sorted and step_max - step_min == n - 1)
    v_min: float | None = None
    v_max: float | None = None
    flags = b""
    values = np.empty(0, np.float64)
    if points.objects is None and points.values is None:
        dtype = "n"
        vals = b""
    elif points.objects is not None:
        dtype = "o"
        vals = msgspec.msgpack.encode(points.objects)
    else:
        assert points.values is not None
        values = points.values
        if points.int_values is not None:
            dtype = "i"
            vals = points.int_values.tobytes()
        elif points.ints is not None and points.ints.any():
            dtype = "x"
            vals = values.tobytes()
            flags = points.ints.astype(np.uint8).tobytes()
        else:
            dtype = "f"
            vals = values.tobytes()
        finite = values[~np.isnan(values)]
        if len(finite):
            # ``+ 0.0``: -0.0 becomes 0.0, so that the sign of a zero bound does not
            # depend on the order a reduction visits 0.0 and -0.0 (``encode_columns``).
            v_min, v_max = float(finite.min()) + 0.0, float(finite.max()) + 0.0
            # JSON-safe bounds in the table: infinities are clamped for the index only.
            v_min = v_min if math.isfinite(v_min) else math.copysign(1e308, v_min)
            v_max = v_max if math.isfinite(v_max) else math.copysign(1e308, v_max)
    summarized = is_sorted and dtype in ("f", "i", "x")
    return Encoded(
        n=n,
        step_min=step_min,
        step_max=step_max,
        v_min=v_min,
        v_max=v_max,
        dtype=dtype,
        dense=dense,
        sorted=is_sorted,
        blocks=block_summary(steps, values).tobytes() if summarized else b"",
        block_times=block_time_bounds(points.times).tobytes() if summarized else b"",
        steps=b"" if dense else steps.tobytes(),
        vals=vals,
        flags=flags,
        times=points.times.astype(np.float64).tobytes(),
    )


@dataclass
class EncodedColumns:
    """Chunks of series that share their steps and times (a wide row's keys): what they
    share, once, and per series its bounds, block summary and values. ``of`` makes one
    chunk (``encode``) a group of one, so a batch's chunks are written one way."""

    n: int
    step_min: int
    step_max: int
    dtype: str
    dense: bool
    sorted: bool
    steps: bytes
    flags: bytes
    times: bytes
    block_times: bytes
    v_min: list[float | None]
    v_max: list[float | None]
    blocks: list[bytes]
    vals: list[bytes]

    @classmethod
    def of(cls, one: Encoded) -> EncodedColumns:
        return cls(
            one.n,
            one.step_min,
            one.step_max,
            one.dtype,
            one.dense,
            one.sorted,
            one.steps,
            one.flags,
            one.times,
            one.block_times,
            [one.v_min],
            [one.v_max],
            [one.blocks],
            [one.vals],
        )

    def __len__(self) -> int:
        return len(self.vals)

    def __getitem__(self, j: int) -> Encoded:
        return Encoded(
            self.n,
            self.step_min,
            self.step_max,
            self.v_min[j],
            self.v_max[j],
            self.dtype,
            self.dense,
            self.sorted,
            self.blocks[j],
            self.steps,
            self.vals[j],
            self.flags,
            self.times,
            self.block_times,
        )

    def __iter__(self) -> Iterator[Encoded]:
        return (self[j] for j in range(len(self)))

    def only(self, keep: list[int]) -> None:
        """Keep the chunks at these positions only."""
        self.v_min = [self.v_min[j] for j in keep]
        self.v_max = [self.v_max[j] for j in keep]
        self.blocks = [self.blocks[j] for j in keep]
        self.vals = [self.vals[j] for j in keep]


def encode_columns(steps: Int64Array, times: Float64Array, matrix: Float64Array) -> EncodedColumns:
    """``encode`` of many float series that share their steps and times, at once.

    ``matrix`` holds one series per row (``matrix[j]`` the values of series ``j`` at
    ``steps``). What depends only on the steps and times is computed once, the rest
    (bounds, block summaries) for all rows in a few numpy calls, and each series'
    bytes are slices of one buffer: a wide metrics row (thousands of keys) costs well
    under a microsecond per key, with no Python object per chunk. ``result[j]`` is
    byte for byte the chunk ``encode`` writes (dtype ``f``).
    """
    n = len(steps)
    width = matrix.shape[0]
    step_min = int(steps.min())
    step_max = int(steps.max())
    is_sorted = bool(n < 2 or (np.diff(steps) > 0).all())
    dense = bool(is_sorted and step_max - step_min == n - 1)
    step_bytes = b"" if dense else steps.tobytes()
    time_bytes = times.astype(np.float64).tobytes()
    blocks: list[bytes] = [b""] * width
    bounds = b""
    lows: list[float | None] = []
    highs: list[float | None] = []
    if width:
        low_array = np.fmin.reduce(matrix, axis=1) + 0.0  # -0.0 as 0.0, as in ``encode``
        high_array = np.fmax.reduce(matrix, axis=1) + 0.0
        # JSON-safe bounds, as ``encode`` clamps them: infinities only.
        lows = _clamp_infinities(low_array).tolist()
        highs = _clamp_infinities(high_array).tolist()
        missing = np.isnan(low_array)
        if missing.any():
            for j in np.flatnonzero(missing).tolist():
                lows[j] = highs[j] = None
        if is_sorted:
            table = block_table(steps, matrix)
            blocks = _slices(table.tobytes(), width)
            bounds = block_time_bounds(times).tobytes()
    return EncodedColumns(
        n=n,
        step_min=step_min,
        step_max=step_max,
        dtype="f",
        dense=dense,
        sorted=is_sorted,
        steps=step_bytes,
        flags=b"",
        times=time_bytes,
        block_times=bounds,
        v_min=lows,
        v_max=highs,
        blocks=blocks,
        vals=_slices(np.ascontiguousarray(matrix, dtype=np.float64).tobytes(), width),
    )


def _slices(data: bytes, parts: int) -> list[bytes]:
    """``data`` cut into ``parts`` equal pieces."""
    if not parts:
        return []
    size = len(data) // parts
    return [data[i : i + size] for i in range(0, len(data), size)]


def _clamp_infinities(values: Float64Array) -> Float64Array:
    out = values.copy()
    infinite = np.isinf(out)
    out[infinite] = np.copysign(1e308, out[infinite])
    return out


def block_time_bounds(times: Float64Array) -> Float64Array:
    """Per block of ``BLOCK`` points: the times of its first and last point, as pairs."""
    n = len(times)
    starts = np.arange(0, n, BLOCK)
    bounds = np.empty((len(starts), 2), dtype=np.float64)
    bounds[:, 0] = times[starts]
    bounds[:, 1] = times[np.minimum(starts + BLOCK, n) - 1]
    return bounds.reshape(-1)


def block_summary(steps: Int64Array, values: Float64Array) -> npt.NDArray[Any]:
    """Per block of ``BLOCK`` points: first and last step, min, max, sum and count of non-NaN
    values, and the number of points. NaN is left out, infinities are kept."""
    table: npt.NDArray[Any] = block_table(steps, values.reshape(1, -1))[0]
    return table


def block_table(steps: Int64Array, matrix: Float64Array) -> npt.NDArray[Any]:
    """``block_summary`` of each row of ``matrix`` (series at the same ``steps``), at once.

    The whole blocks are a strided view (series, block, point in block), reduced along
    its last axis, and the last, shorter block along the rows: at C speed however many
    series there are (``reduceat`` along rows was a fifth of a wide row's ingest), with
    no copy of the points but where NaN must be left out of a sum, and a series' sums
    are the same whether it is reduced alone or with others (the same loops add them).
    """
    n = len(steps)
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    width = matrix.shape[0]
    whole, rest = divmod(n, BLOCK)
    row_stride, item = matrix.strides
    cube = np.lib.stride_tricks.as_strided(
        matrix, (width, whole, BLOCK), (row_stride, BLOCK * item, item), writeable=False
    )
    parts = [cube, matrix[:, whole * BLOCK :].reshape(width, 1, rest)] if rest else [cube]
    starts = np.arange(0, n, BLOCK)
    table = np.empty((width, len(starts)), dtype=BLOCK_DTYPE)
    table["first"] = steps[starts]
    table["last"] = steps[np.minimum(starts + BLOCK, n) - 1]
    # ``+ 0.0``: -0.0 as 0.0, whatever order the reduction took (see ``encode``).
    table["min"] = np.concatenate([np.fmin.reduce(p, axis=2) for p in parts], axis=1) + 0.0
    table["max"] = np.concatenate([np.fmax.reduce(p, axis=2) for p in parts], axis=1) + 0.0
    sums, finite = [], []
    with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf: NaN; overflow: inf
        for part in parts:
            nan = np.isnan(part)
            counts = nan.sum(axis=2, dtype=np.int32)
            sums.append(np.where(nan, 0.0, part).sum(axis=2) if counts.any() else part.sum(axis=2))
            finite.append(part.shape[2] - counts)
    table["sum"] = np.concatenate(sums, axis=1)
    table["finite"] = np.concatenate(finite, axis=1)
    table["n"] = np.diff(np.append(starts, n))
    return table


def decode(
    n: int,
    step_min: int,
    dtype: str,
    dense: bool,
    steps: bytes,
    vals: bytes,
    flags: bytes,
    times: bytes | None,
) -> Points:
    """Unpack one chunk; ``times`` may be ``None`` when the caller does not need them."""
    step_array = (
        np.arange(step_min, step_min + n, dtype=np.int64)
        if dense
        else np.frombuffer(steps, dtype=np.int64)
    )
    time_array = (
        np.frombuffer(times, dtype=np.float64) if times is not None else np.zeros(n, np.float64)
    )
    if dtype == "n":
        return Points(step_array, time_array, None, None, None)
    if dtype == "o":
        objects = msgspec.msgpack.decode(vals)
        return Points(step_array, time_array, None, None, list(objects))
    if dtype == "i":
        exact = np.frombuffer(vals, dtype=np.int64)
        return Points(
            step_array, time_array, exact.astype(np.float64), np.ones(n, np.bool_), None, exact
        )
    values = np.frombuffer(vals, dtype=np.float64)
    ints = np.frombuffer(flags, dtype=np.uint8).astype(np.bool_) if dtype == "x" else None
    return Points(step_array, time_array, values, ints, None)


def split(points: Points, size: int = CHUNK_MAX) -> list[Points]:
    """Points cut into pieces of at most ``size``."""
    if len(points) <= size:
        return [points]
    return [
        points.take(np.arange(i, min(i + size, len(points)))) for i in range(0, len(points), size)
    ]


def latest_per_step(points: Points, ordered: bool) -> Points:
    """One point per step, sorted by step: for a step logged twice, the later value wins.

    ``ordered`` says the steps are already strictly increasing (the usual case).
    """
    if ordered or len(points) < 2:
        return points
    order = np.argsort(points.steps, kind="stable")
    steps = points.steps[order]
    keep = np.ones(len(steps), dtype=np.bool_)
    keep[:-1] = steps[1:] != steps[:-1]
    return points.take(order[keep])
