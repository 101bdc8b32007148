"""Metric rows into per-key columns, quickly.

Rows of one run almost always repeat the same keys, so rows are grouped by
their key tuple and each group is transposed at C speed (``zip(*rows)``)
instead of appending point by point. Where a key appears in rows of several
shapes, its points are put back into log order, which "a later value wins"
depends on.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from . import chunks as ch


class _Shape:
    __slots__ = ("blocks", "index", "steps", "times", "values")

    def __init__(self) -> None:
        self.index: list[int] = []
        self.steps: list[int] = []
        self.times: list[float] = []
        self.values: list[tuple[Any, ...]] = []
        #: The first rows' values as float matrices (row by row), made by ``compact``.
        self.blocks: list[npt.NDArray[np.float64]] = []

    def float_matrix(self) -> npt.NDArray[np.float64] | None:
        """Every row's values as one matrix (rows x keys) if all are floats, else ``None``."""
        if self.values and not _all_floats(self.values):
            return None
        if self.values or not self.blocks:
            self.blocks.append(np.array(self.values, dtype=np.float64))
            self.values = []
        if len(self.blocks) > 1:
            self.blocks = [np.concatenate(self.blocks)]
        return self.blocks[0]

    def python_rows(self) -> list[tuple[Any, ...]]:
        """Every row's values as Python objects (a shape whose later rows are not floats)."""
        earlier = [tuple(row) for block in self.blocks for row in block.tolist()]
        self.blocks = []
        self.values = earlier + self.values
        return self.values


class Columnizer:
    """Collects rows ``(step, time, {key: value})``; ``columns()`` gives points per key."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self.steps: list[int] = []
        self.times: list[float] = []
        #: Points (values) added.
        self.points = 0
        #: The keys of the last wide row and their shape (``add_wide``).
        self._last_wide: tuple[tuple[str, ...], _Shape] | None = None

    def add(self, step: int, time: float, values: dict[str, Any]) -> None:
        if not values:
            self.steps.append(step)
            self.times.append(time)
            return
        keys = tuple(values)
        shape = self._shapes.get(keys)
        if shape is None:
            shape = self._shapes[keys] = _Shape()
        self._join(shape, step, time, len(keys))
        shape.values.append(tuple(values.values()))

    def add_wide(
        self, step: int, time: float, keys: tuple[str, ...], values: npt.NDArray[np.float64]
    ) -> None:
        """``add`` of a row of float ``values`` (one per key): kept as a matrix row, with
        no Python object per value. Rows of one layout share their ``keys`` tuple."""
        last = self._last_wide
        if last is not None and last[0] is keys:
            shape = last[1]
        else:
            shape = self._shapes.setdefault(keys, _Shape())
            self._last_wide = (keys, shape)
        self._join(shape, step, time, len(keys))
        if shape.values:  # later rows than the matrices': they stay rows, in order
            shape.values.append(tuple(values.tolist()))
        else:
            shape.blocks.append(values.reshape(1, -1))

    def _join(self, shape: _Shape, step: int, time: float, width: int) -> None:
        """A row of ``width`` values at ``step`` joins ``shape`` (its values added after)."""
        shape.index.append(len(self.steps))
        self.steps.append(step)
        self.times.append(time)
        shape.steps.append(step)
        shape.times.append(time)
        self.points += width

    def __len__(self) -> int:
        return len(self.steps)

    def compact(self) -> int:
        """Hold the float values of wide rows added so far as matrices (8 bytes a point,
        not a Python float and a pointer): what a range's bodies carry to its end.
        Returns how many values are still Python objects (ints, text, one-key rows)."""
        loose = 0
        for keys, shape in self._shapes.items():
            if len(keys) > 1 and shape.values:
                shape.float_matrix()
            loose += len(keys) * len(shape.values)
        return loose

    def columns(self) -> tuple[list[Matrix], list[tuple[str, ch.Points]]]:
        """The rows' points per key, in log order: as matrices, and key by key.

        A group of rows of the same keys whose values are all floats (the usual wide
        row: thousands of per-layer metrics) is one ``Matrix`` of its keys' points, which
        are encoded and written together (``serieswrite.SeriesWriter.append_matrix``).
        The rest, and a key that is also in rows of another shape, comes key by key.
        """
        matrices: list[Matrix] = []
        parts: dict[str, list[tuple[list[int], ch.Points]]] = {}
        shapes = self._shapes
        shared = _shared_keys(shapes) if len(shapes) > 1 else set()
        for keys, shape in shapes.items():
            rows = len(shape.steps)
            by_rows = shape.float_matrix() if len(keys) > 1 and rows <= ch.CHUNK_MAX else None
            if by_rows is not None:
                steps = ch.i64(shape.steps)
                times = ch.f64(shape.times)
                matrix = np.ascontiguousarray(by_rows.T)
                own = [j for j, key in enumerate(keys) if key not in shared] if shared else None
                if own is None or len(own) == len(keys):
                    matrices.append(Matrix(keys, steps, times, matrix))
                    continue
                if own:
                    mine = tuple(keys[j] for j in own)
                    matrices.append(Matrix(mine, steps, times, matrix[own]))
                for j, key in enumerate(keys):
                    if key in shared:
                        points = ch.Points(steps, times, matrix[j], None, None)
                        parts.setdefault(key, []).append((shape.index, points))
                continue
            transposed = list(zip(*shape.python_rows(), strict=True))
            for key, column in zip(keys, transposed, strict=True):
                points = ch.from_lists(shape.steps, shape.times, list(column))
                parts.setdefault(key, []).append((shape.index, points))
        singles = []
        for key, pieces in parts.items():
            if len(pieces) == 1:
                singles.append((key, pieces[0][1]))
                continue
            index = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in pieces])
            merged = ch.concat([p for _, p in pieces])
            singles.append((key, merged.take(np.argsort(index, kind="stable"))))
        return matrices, singles


class Matrix(NamedTuple):
    """Float points of several keys at the same steps and times: ``values[j]`` are those
    of ``keys[j]``."""

    keys: tuple[str, ...]
    steps: ch.Int64Array
    times: ch.Float64Array
    values: npt.NDArray[np.float64]


def _shared_keys(shapes: dict[tuple[str, ...], _Shape]) -> set[str]:
    """The keys in rows of more than one shape."""
    seen: set[str] = set()
    shared: set[str] = set()
    for keys in shapes:
        shared.update(seen.intersection(keys))
        seen.update(keys)
    return shared


def _all_floats(rows: list[tuple[Any, ...]]) -> bool:
    """Whether every value of these rows is a float (not an int, bool or text)."""
    return set(map(type, itertools.chain.from_iterable(rows))) == {float}
