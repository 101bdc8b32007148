"""Appending an ingest batch's points to their series as chunks (``SeriesWriter``).

A batch of points of one series becomes one chunk row; the small chunks at the end
of a series are compacted into one now and then, so slowly logged metrics do not
make a row per point. A wide row's keys (thousands of float series at the same
steps) go in as one group (``append_matrix``): encoded together, counted key by key
in a short loop, and written with the rest of the batch in one statement per table
(``chunkwrite``), with no Python object per chunk.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from . import chunks as ch
from . import chunkwrite
from .chunkwrite import StoredChunk


class _Group:
    """New chunks of one batch that share their steps, times and encoding: a wide row's
    keys, one chunk each, or a single chunk. ``points`` keeps the points of small ones,
    which a compaction in the same batch takes back: a list (one ``Points`` per chunk),
    or the (steps, times, matrix) the chunks' values are rows of.

    ``timed``: whether the chunks' block times are stored. A chunk that joins its series'
    tail has none: it is small and soon compacted, and readers take its times from its
    points (``series.read_blocks``), so a live wide row writes no block-times row per key
    and request, nor deletes it at compaction.
    """

    __slots__ = ("encoded", "ids", "points", "seqs", "timed")

    def __init__(
        self,
        ids: list[int],
        seqs: list[int],
        encoded: ch.EncodedColumns,
        points: list[ch.Points] | tuple[Any, Any, npt.NDArray[np.float64]] | None,
        tail: bool,
    ) -> None:
        self.ids = ids
        self.seqs = seqs
        self.encoded = encoded
        self.points = points
        self.timed = not tail and bool(encoded.block_times)

    def piece(self, j: int) -> ch.Points:
        """The points of chunk ``j`` (a small one: see ``points``)."""
        points = self.points
        assert points is not None
        if isinstance(points, list):
            return points[j]
        steps, times, matrix = points
        return ch.Points(steps, times, matrix[j], None, None)

    def only(self, keep: list[int]) -> None:
        """Keep the chunks at these positions only (the others were compacted)."""
        self.ids = [self.ids[j] for j in keep]
        self.seqs = [self.seqs[j] for j in keep]
        self.encoded.only(keep)
        if isinstance(self.points, list):
            self.points = [self.points[j] for j in keep]
        elif self.points is not None:
            steps, times, matrix = self.points
            self.points = (steps, times, matrix[keep])

    def rows(self, epoch: int) -> Iterator[tuple[Any, ...]]:
        """The chunk rows, in ``chunkwrite.CHUNK_COLUMNS`` order."""
        e = self.encoded
        same = itertools.repeat
        return zip(
            self.ids,
            self.seqs,
            same(epoch),
            same(e.n),
            same(e.step_min),
            same(e.step_max),
            e.v_min,
            e.v_max,
            same(e.dtype),
            same(e.dense),
            same(e.sorted),
            e.blocks,
            same(e.steps),
            e.vals,
            same(e.flags),
            same(e.times),
            strict=False,  # the repeats are endless
        )


class SeriesWriter:
    """Buffers the chunk writes of one ingest batch of one run.

    Each batch of a series becomes a chunk of its own: nothing stored is read back to
    take it. A batch smaller than ``chunks.MERGE_BATCH_BELOW`` (a slowly logged metric,
    a live run's second of points, a wide row's few dozen points per key and request)
    joins the series' *tail*: its trailing small chunks. At ``flush``, the tails that
    are due are compacted, in two levels (``_due``), so each point is rewritten a few
    times at most (merging every batch into the last chunk rewrote it once per batch:
    ~50 times for a wide row's key, ~200 times for a live run's), and a reader finds a
    few small chunks at most at the end of a series.
    """

    def __init__(self, conn: sa.Connection, run_pk: int, epoch: int = 0) -> None:
        self.conn = conn
        self.run_pk = run_pk
        #: The run's rewinds so far: the chunks written belong to that epoch (``lineage.py``).
        self.epoch = epoch
        #: The series rows read so far: (kind, key) -> row, or None where there is none.
        self._known: dict[tuple[str, str], dict[str, Any] | None] = {}
        #: The chunks to insert, in groups (``_Group``).
        self._groups: list[_Group] = []
        #: The series rows whose counters changed, by id.
        self._dirty: dict[int, dict[str, Any]] = {}

    def read(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Read the rows of the series ``wanted`` (kind, key) not read yet, in a query.

        A batch reads only the series it writes, however many: a run of 16 ranks has
        thousands of series, and each rank's request touches its own hundred, or its own
        2,000 of per-layer metrics (reading the run's every series for those took three
        times as long).
        """
        known = self._known
        missing = [pair for pair in dict.fromkeys(wanted) if pair not in known]
        if not missing:
            return
        kinds = sorted({kind for kind, _ in missing})
        keys = list(dict.fromkeys(key for _, key in missing))
        names, rows = chunkwrite.read_series(self.conn, self.run_pk, kinds, keys)
        kind_at, key_at = names.index("kind"), names.index("key")
        for row in rows:  # this batch's own rows are kept
            known.setdefault((row[kind_at], row[key_at]), dict(zip(names, row, strict=True)))
        for pair in missing:
            known.setdefault(pair, None)

    def count(self, kind: str, key: str) -> int:
        self.read([(kind, key)])
        found = self._known[(kind, key)]
        return 0 if found is None else int(found["count"])

    def ensure(self, kind: str, keys: Iterable[str]) -> None:
        """Create the series of ``keys`` that do not exist yet, in one statement.

        ``append`` creates a missing series itself; a wide row (thousands of new keys)
        calls this first, so that they cost one insert instead of one each.
        """
        keys_once = list(dict.fromkeys(keys))
        self.read([(kind, key) for key in keys_once])
        known = self._known
        new = [key for key in keys_once if known[(kind, key)] is None]
        if not new:
            return
        for series_id, key in chunkwrite.insert_series(self.conn, self.run_pk, kind, new):
            known[(kind, key)] = {"id": series_id, **chunkwrite.EMPTY_SERIES}

    def append(self, kind: str, key: str, points: ch.Points) -> None:
        """Add a batch of points to a series."""
        if not len(points):
            return
        info = self._info(kind, key)
        steps = points.steps
        first, low, high = int(steps[0]), int(steps.min()), int(steps.max())
        increasing = bool(len(steps) < 2 or (np.diff(steps) > 0).all())
        pieces = ch.split(points)
        small = len(points) < ch.MERGE_BATCH_BELOW
        for piece in pieces:
            self._groups.append(
                _Group(
                    [info["id"]],
                    [info["chunks"]],
                    ch.EncodedColumns.of(ch.encode(piece)),
                    [piece] if small else None,
                    small,
                )
            )
            info["chunks"] += 1
        self._count(info, len(points), len(pieces[-1]), first, low, high, increasing, small)

    def append_matrix(
        self,
        kind: str,
        keys: tuple[str, ...] | list[str],
        steps: ch.Int64Array,
        times: ch.Float64Array,
        matrix: npt.NDArray[np.float64],
    ) -> None:
        """``append`` of float points of many series at the same steps and times:
        ``matrix[j]`` holds the values of ``keys[j]`` (a wide row's keys)."""
        n = len(steps)
        if not n or not len(keys):
            return
        if n > ch.CHUNK_MAX:
            for key, values in zip(keys, matrix, strict=True):
                self.append(kind, key, ch.Points(steps, times, values, None, None))
            return
        encoded = ch.encode_columns(steps, times, matrix)
        first, low, high = int(steps[0]), encoded.step_min, encoded.step_max
        small = n < ch.MERGE_BATCH_BELOW
        ids: list[int] = []
        seqs: list[int] = []
        count = self._count
        for key in keys:
            info = self._info(kind, key)
            ids.append(info["id"])
            seqs.append(info["chunks"])
            info["chunks"] += 1
            count(info, n, n, first, low, high, encoded.sorted, small)
        self._groups.append(
            _Group(ids, seqs, encoded, (steps, times, matrix) if small else None, small)
        )

    def _info(self, kind: str, key: str) -> dict[str, Any]:
        """The row of a series, created if it does not exist yet."""
        info = self._known.get((kind, key))
        if info is None:
            self.ensure(kind, [key])
            info = self._known[(kind, key)]
            assert info is not None
        return info

    def _count(
        self,
        info: dict[str, Any],
        n: int,
        last_n: int,
        first: int,
        low: int,
        high: int,
        increasing: bool,
        small: bool,
    ) -> None:
        """Move a series' counters by a batch of ``n`` points (chunks already counted;
        ``small``: it joins the tail)."""
        if small:
            if not info["tail"]:
                info["tail_seq"] = info["chunks"] - 1
            if not info["fresh"]:
                info["fresh_seq"] = info["chunks"] - 1
            info["tail"] += 1
            info["tail_n"] += n
            info["fresh"] += 1
            info["fresh_n"] += n
        else:  # a good chunk of its own ends the tail; the small chunks before it stay
            info["tail"] = info["tail_n"] = info["fresh"] = info["fresh_n"] = 0
        info["last_n"] = last_n
        step_max = info["step_max"]
        info["ordered"] = bool(
            info["ordered"] and increasing and (step_max is None or first > step_max)
        )
        info["count"] += n
        step_min = info["step_min"]
        info["step_min"] = low if step_min is None or low < step_min else step_min
        info["step_max"] = high if step_max is None or high > step_max else step_max
        self._dirty[info["id"]] = info

    def _compact(self) -> list[int]:
        """Compact the tails that are due (``_due``), each into one chunk at the last seq
        of the part compacted (seqs are ordered, not contiguous).

        Returns the ids of the stored chunks it replaces (a tail's chunks have no block
        times to delete: see ``_Group.timed``). The stored parts are read in one query;
        those of a wide row's keys (float series with the same steps and times) are
        encoded as one matrix (``chunks.encode_columns``).
        """
        due: dict[int, tuple[dict[str, Any], int]] = {}
        for info in self._dirty.values():
            start = _due(info)
            if start is not None:
                due[info["id"]] = (info, start)
        if not due:
            return []
        #: series id -> (seq, a stored chunk or the points of a chunk of this batch)
        parts: dict[int, list[tuple[int, StoredChunk | ch.Points]]] = {s: [] for s in due}
        replaced: list[int] = []
        wanted = [(series_id, start) for series_id, (_, start) in due.items()]
        for stored in chunkwrite.read_tails(self.conn, wanted):
            parts[stored.series_id].append((stored.seq, stored))
            replaced.append(stored.id)
        # The batch's own chunks of these tails: they are compacted, not inserted.
        for group in self._groups:
            keep = []
            for j, (series_id, seq) in enumerate(zip(group.ids, group.seqs, strict=True)):
                compacted = due.get(series_id)
                if compacted is None or seq < compacted[1]:
                    keep.append(j)
                else:
                    parts[series_id].append((seq, group.piece(j)))
            if len(keep) < len(group.ids):
                group.only(keep)
        self._groups = [group for group in self._groups if group.ids]
        matrices: dict[tuple[Any, ...], list[tuple[int, list[Any]]]] = {}
        for series_id, found in parts.items():
            ordered = [part for _, part in sorted(found, key=_seq)]
            shape = _float_shape(ordered)
            if shape is None:
                merged = ch.concat([_points(part) for part in ordered])
                self._compacted([due[series_id]], ch.split(merged))
            else:
                matrices.setdefault(shape, []).append((series_id, ordered))
        for members in matrices.values():
            first = [_points(part) for part in members[0][1]]
            steps = np.concatenate([p.steps for p in first])
            times = np.concatenate([p.times for p in first])
            values = b"".join(b"".join(map(_float_bytes, ordered)) for _, ordered in members)
            matrix = np.frombuffer(values, np.float64).reshape(len(members), len(steps))
            piece = ch.Points(steps, times, matrix[0], None, None)
            self._compacted([due[series_id] for series_id, _ in members], [piece], matrix)
        return replaced

    def _compacted(
        self,
        due: list[tuple[dict[str, Any], int]],
        pieces: list[ch.Points],
        matrix: npt.NDArray[np.float64] | None = None,
    ) -> None:
        """Insert compacted parts of tails (from ``start``: ``_due``) as chunks at their
        last seqs; set the tails. One series' ``pieces``, or, with a ``matrix``, those of
        several series that share the steps and times of the one piece (``matrix[j]`` the
        values of ``due[j]``'s series). A last piece under ``chunks.MERGE_BELOW`` points
        stays in the tail: the whole tail compacted, it is the tail; its fresh chunks, it
        takes their place in the tail."""
        last = len(pieces[-1])
        for at, piece in enumerate(pieces, start=-len(pieces)):
            encoded = (
                ch.encode_columns(piece.steps, piece.times, matrix)
                if matrix is not None
                else ch.EncodedColumns.of(ch.encode(piece))
            )
            seqs = [info["chunks"] + at for info, _ in due]
            tail = at == -1 and last < ch.MERGE_BELOW
            ids = [info["id"] for info, _ in due]
            self._groups.append(_Group(ids, seqs, encoded, None, tail))
        for info, start in due:
            info["last_n"] = last
            if start != info["tail_seq"]:  # the fresh part: the tail keeps its points
                info["tail"] -= info["fresh"] - 1
            elif last < ch.MERGE_BELOW:
                info["tail"], info["tail_seq"], info["tail_n"] = 1, info["chunks"] - 1, last
            else:
                info["tail"] = info["tail_n"] = 0
            info["fresh"] = info["fresh_n"] = 0

    def flush(self) -> None:
        """Write what was appended: one statement per table (``chunkwrite``)."""
        replaced = self._compact()
        groups, epoch = self._groups, self.epoch
        chunkwrite.delete_chunks(self.conn, replaced)
        chunkwrite.insert_chunks(
            self.conn, itertools.chain.from_iterable(group.rows(epoch) for group in groups)
        )
        times = [
            zip(group.ids, group.seqs, itertools.repeat(group.encoded.block_times))
            for group in groups
            if group.timed
        ]
        chunkwrite.insert_block_times(self.conn, list(itertools.chain(*times)))
        chunkwrite.update_series(self.conn, list(self._dirty.values()))
        self._groups, self._dirty = [], {}


_seq = operator.itemgetter(0)


def _due(info: dict[str, Any]) -> int | None:
    """The first seq of the part of a series' tail to compact now, or ``None``.

    A tail has two levels: its *fresh* chunks (batches under ``MERGE_BATCH_BELOW``
    points) at the end, and before them chunks compacted from fresh ones. The fresh
    chunks are compacted on the series' turn, every ``TAIL_CHUNKS - 1`` chunks at a
    phase set by its id, and at ``TAIL_CHUNKS`` in any case; the whole tail once it
    holds ``TAIL_CHUNKS`` compacted chunks, or ``MERGE_BELOW`` points on its turn (twice
    that in any case). So a point is rewritten a few times (compacting the whole tail
    each time rewrote a live wide row's point ~15 times), a reader finds at most
    ``2 * TAIL_CHUNKS`` chunks in a tail, and a wide row's keys take turns: each request
    compacts a seventh of them, where all at once made every seventh request take
    several times the others' time.
    """
    tail, fresh, points = info["tail"], info["fresh"], info["tail_n"]
    turn = (info["chunks"] + info["id"]) % (ch.TAIL_CHUNKS - 1) == 0
    if tail >= 2 and (
        tail - fresh >= ch.TAIL_CHUNKS or points >= (1 if turn else 2) * ch.MERGE_BELOW
    ):
        return int(info["tail_seq"])
    if fresh >= 2 and (turn or fresh >= ch.TAIL_CHUNKS):
        return int(info["fresh_seq"])
    return None


def _points(part: StoredChunk | ch.Points) -> ch.Points:
    """The points of a tail's part: a stored chunk, or points of this batch."""
    if isinstance(part, ch.Points):
        return part
    return ch.decode(
        part.n, part.step_min, part.dtype, part.dense, part.steps, part.vals, part.flags, part.times
    )


def _float_bytes(part: StoredChunk | ch.Points) -> bytes:
    """The float64 values of a tail's part (one of a float shape: ``_float_shape``)."""
    if isinstance(part, ch.Points):
        assert part.values is not None
        return part.values.tobytes()
    return bytes(part.vals)


def _float_shape(parts: list[StoredChunk | ch.Points]) -> tuple[Any, ...] | None:
    """What a tail of float points shares with the tails of other keys of the same wide
    rows (their steps and times, part by part), or ``None`` if it is not all floats or
    too long for one chunk. A part of this batch is known by its arrays: a wide row's
    keys share them (``columnize``)."""
    shape: list[Any] = []
    total = 0
    for part in parts:
        if isinstance(part, ch.Points):
            if part.values is None or part.ints is not None or part.int_values is not None:
                return None
            shape.append((id(part.steps), id(part.times)))
            total += len(part)
        else:
            if part.dtype != "f":
                return None
            shape.append((part.n, part.step_min, part.dense, bytes(part.steps), bytes(part.times)))
            total += part.n
    return tuple(shape) if total <= ch.CHUNK_MAX else None
