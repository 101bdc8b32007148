"""Metric rows into per-key columns, quickly.

Rows of one run almost always repeat the same keys, so rows are grouped by
their key tuple and each group is transposed at C speed (``zip(*rows)``)
instead of appending point by point. Where a key appears in rows of several
shapes, its points are put back into log order, which "a later value wins"
depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from . import chunks as ch


class _Shape:
    __slots__ = ("index", "steps", "times", "values")

    def __init__(self) -> None:
        self.index: list[int] = []
        self.steps: list[int] = []
        self.times: list[float] = []
        self.values: list[tuple[Any, ...]] = []


class Columnizer:
    """Collects rows ``(step, time, {key: value})``; ``columns()`` gives points per key."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self.steps: list[int] = []
        self.times: list[float] = []

    def add(self, step: int, time: float, values: dict[str, Any]) -> None:
        position = len(self.steps)
        self.steps.append(step)
        self.times.append(time)
        if not values:
            return
        keys = tuple(values)
        shape = self._shapes.get(keys)
        if shape is None:
            shape = self._shapes[keys] = _Shape()
        shape.index.append(position)
        shape.steps.append(step)
        shape.times.append(time)
        shape.values.append(tuple(values.values()))

    def __len__(self) -> int:
        return len(self.steps)

    def columns(self) -> Iterator[tuple[str, ch.Points]]:
        """Each key with its points in log order."""
        parts: dict[str, list[tuple[list[int], ch.Points]]] = {}
        for keys, shape in self._shapes.items():
            transposed = list(zip(*shape.values, strict=True))
            for key, column in zip(keys, transposed, strict=True):
                points = ch.from_lists(shape.steps, shape.times, list(column))
                parts.setdefault(key, []).append((shape.index, points))
        for key, pieces in parts.items():
            if len(pieces) == 1:
                yield key, pieces[0][1]
                continue
            index = np.concatenate([np.asarray(i, dtype=np.int64) for i, _ in pieces])
            merged = ch.concat([p for _, p in pieces])
            yield key, merged.take(np.argsort(index, kind="stable"))
