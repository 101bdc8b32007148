"""A per-process cache of downsampled series, checked against the series row on every read.

A dashboard polls the same chart query again and again, and most of its series
do not change between two polls: reducing 50 M points' block summaries to
1,000 buckets per series each time is the query's main cost once the summaries
are cached (``blockcache.py``). So the buckets of a series made from its block
summaries are kept here, under the series row's state as read in the query's
own transaction: ``(run_pk, run id, run start time, key, count, step_min,
step_max, ordered)``. Every write to a series raises its ``count`` (points are
only appended), so an entry is used only while the series still holds exactly
the points it was made from. Forks and rewound runs are read over their lineage
and never come here.

Who may read is decided before: a series id only reaches the cache for a run
the caller may read, and an entry holds nothing but that series's buckets.
Deleting runs clears it (SQLite may hand their ids to new rows); in another
worker process, which is not told, the run's id and start time in the version
tell a new run on reused ids apart (a purged run's id cannot be uploaded again).
Bounded by bytes (``TRACKLINE_SAMPLE_CACHE_MB``, default 64, per process); least
recently used out first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .lru import VersionedLRU

DEFAULT_MB = 64
#: The bytes an entry costs beyond its arrays (the key, the tuple, the objects).
_OVERHEAD = 512

#: (series id, x axis ("step" or "time"), samples)
Key = tuple[int, str, int]
#: The series row's state the entry was made from (see the module docstring).
Version = tuple[Any, ...]


@dataclass(frozen=True)
class Sampled:
    """The buckets of one series: ``x``, mean ``y``, ``min``, ``max``, ``count`` and the
    points they cover; ``None`` arrays: the series cannot be read from its blocks."""

    total: int
    arrays: tuple[npt.NDArray[Any], ...] | None

    @property
    def nbytes(self) -> int:
        return _OVERHEAD + sum(a.nbytes for a in self.arrays or ())


class SampleCache(VersionedLRU[Key, Sampled]):
    """``(series id, axis, samples) -> (version, Sampled)``, at most ``max_bytes``."""

    def __init__(self, max_bytes: int = 0) -> None:
        super().__init__(max_bytes, _nbytes)

    def put(self, key: Key, version: Version, sampled: Sampled) -> None:
        """Keep ``sampled`` (its arrays made read-only: answers share them)."""
        for array in sampled.arrays or ():
            array.setflags(write=False)
        super().put(key, version, sampled)

    @classmethod
    def from_environment(cls) -> SampleCache:
        """The cache a server gets (``TRACKLINE_SAMPLE_CACHE_MB``; 0: none)."""
        configured = os.environ.get("TRACKLINE_SAMPLE_CACHE_MB")
        mb = float(configured) if configured else DEFAULT_MB
        return cls(int(mb * 2**20))


def _nbytes(sampled: Sampled) -> int:
    return sampled.nbytes


def owned(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``array`` as an array of its own: a view would keep its whole base alive."""
    return array if array.base is None else np.array(array)
