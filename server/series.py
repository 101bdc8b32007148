"""Columnar series in the database: appending ingest batches, reading points back.

A batch of points of one series becomes one chunk row, or is merged into the
series' last chunk while that one is small (so slowly logged metrics do not
make a row per point). Reading concatenates chunks in order and, where the
series is not strictly increasing in step, keeps the latest point per step.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from . import chunks as ch
from . import chunkwrite
from .blockcache import BlockCache
from .schema import block_times, chunks, series

#: The columns a chunk's points are decoded from (``chunks.decode_row``).
POINT_COLUMNS = (
    chunks.c.n,
    chunks.c.step_min,
    chunks.c.dtype,
    chunks.c.dense,
    chunks.c.steps,
    chunks.c.vals,
    chunks.c.flags,
)
_CHUNK_COLUMNS = (chunks.c.series_id, chunks.c.seq, *POINT_COLUMNS)


class SeriesWriter:
    """Buffers the chunk writes of one ingest batch of one run."""

    def __init__(self, conn: sa.Connection, run_pk: int, epoch: int = 0) -> None:
        self.conn = conn
        self.run_pk = run_pk
        #: The run's rewinds so far: the chunks written belong to that epoch (``lineage.py``).
        self.epoch = epoch
        self._known: dict[tuple[str, str], dict[str, Any]] | None = None
        self._inserts: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        #: (series id, seq) -> the block times of a chunk written in this batch
        self._times: dict[tuple[int, int], bytes] = {}
        self._dirty: dict[int, dict[str, Any]] = {}
        #: (series id, seq) of a stored last chunk -> points to merge into it at ``flush``:
        #: one query reads all those chunks (a wide row touches thousands of series).
        self._merges: dict[tuple[int, int], list[ch.Points]] = {}
        #: (series id, seq) of the chunks inserted in this batch: no block times to replace.
        self._fresh: set[tuple[int, int]] = set()

    def _series(self) -> dict[tuple[str, str], dict[str, Any]]:
        if self._known is None:
            rows = self.conn.execute(sa.select(series).where(series.c.run_pk == self.run_pk))
            self._known = {(r.kind, r.key): dict(r._mapping) for r in rows}
        return self._known

    def count(self, kind: str, key: str) -> int:
        found = self._series().get((kind, key))
        return 0 if found is None else int(found["count"])

    def ensure(self, kind: str, keys: Iterable[str]) -> None:
        """Create the series of ``keys`` that do not exist yet, in one statement.

        ``append`` creates a missing series itself; a wide row (thousands of new keys)
        calls this first, so that they cost one insert instead of one each.
        """
        known = self._series()
        new = [key for key in dict.fromkeys(keys) if (kind, key) not in known]
        if not new:
            return
        for series_id, key in chunkwrite.insert_series(self.conn, self.run_pk, kind, new):
            known[(kind, key)] = {"id": series_id, **chunkwrite.EMPTY_SERIES}

    def append(
        self, kind: str, key: str, points: ch.Points, encoded: ch.Encoded | None = None
    ) -> None:
        """Add a batch of points to a series; ``encoded``: the batch already packed as one
        chunk (``chunks.encode_columns``), used when it becomes a chunk of its own."""
        if not len(points):
            return
        known = self._series()
        info = known.get((kind, key))
        if info is None:
            self.ensure(kind, [key])
            info = known[(kind, key)]
        if encoded is not None:
            first = int(points.steps[0])
            low, high, increasing = encoded.step_min, encoded.step_max, encoded.sorted
        else:
            steps = points.steps
            first, low, high = int(steps[0]), int(steps.min()), int(steps.max())
            increasing = bool(len(steps) < 2 or (np.diff(steps) > 0).all())
        ordered = bool(
            info["ordered"]
            and increasing
            and (info["step_max"] is None or first > info["step_max"])
        )
        last_n = int(info["last_n"])
        if (
            info["chunks"]
            and last_n < ch.MERGE_BELOW
            and len(points) < ch.MERGE_BATCH_BELOW
            and last_n + len(points) <= ch.CHUNK_MAX
        ):
            self._merge_into_last(info, points)
            info["last_n"] = last_n + len(points)
        else:
            if encoded is not None:
                pairs = [(points, encoded)]
            else:
                pairs = [(piece, ch.encode(piece)) for piece in ch.split(points)]
            for _, packed in pairs:
                self._inserts.append(
                    {
                        "series_id": info["id"],
                        "seq": info["chunks"],
                        "epoch": self.epoch,
                        **packed.row(),
                    }
                )
                self._times[(info["id"], info["chunks"])] = packed.block_times
                self._fresh.add((info["id"], info["chunks"]))
                info["chunks"] += 1
            info["last_n"] = len(pairs[-1][0])
        info["count"] += len(points)
        info["step_min"] = low if info["step_min"] is None else min(low, info["step_min"])
        info["step_max"] = high if info["step_max"] is None else max(high, info["step_max"])
        info["ordered"] = ordered
        self._dirty[info["id"]] = info

    def _merge_into_last(self, info: dict[str, Any], points: ch.Points) -> None:
        seq = info["chunks"] - 1
        pending = next(
            (
                row
                for row in reversed(self._inserts)
                if row["series_id"] == info["id"] and row["seq"] == seq
            ),
            None,
        )
        if pending is not None:  # merged again within this batch
            previous = _decode_row(pending, with_times=True)
            encoded = ch.encode(ch.concat([previous, points]))
            pending.update(encoded.row())
            self._times[(info["id"], seq)] = encoded.block_times
            return
        self._merges.setdefault((info["id"], seq), []).append(points)

    def _apply_merges(self) -> None:
        """Merge the points waiting for stored last chunks: read them in one query.

        The chunks of a wide row's keys (thousands of float series with the same steps
        and times, stored and new) are merged as one matrix (``chunks.encode_columns``)
        instead of one ``encode`` each.
        """
        groups: dict[tuple[Any, ...], list[tuple[dict[str, Any], ch.Points]]] = {}
        for row in chunkwrite.read_chunks(self.conn, list(self._merges)):
            news = self._merges[(row["series_id"], row["seq"])]
            new = news[0]
            if row["dtype"] == "f" and len(news) == 1 and _plain_floats(new):
                shape = (row["n"], row["step_min"], row["dense"], bytes(row["steps"]))
                key = (*shape, bytes(row["times"]), id(new.steps), id(new.times))
                groups.setdefault(key, []).append((row, new))
                continue
            previous = _decode_row(row, with_times=True)
            self._rewritten(row, ch.encode(ch.concat([previous, *news])))
        for members in groups.values():
            if len(members) == 1:
                row, new = members[0]
                previous = _decode_row(row, with_times=True)
                self._rewritten(row, ch.encode(ch.concat([previous, new])))
                continue
            first, new = members[0]
            stored = _decode_row(first, with_times=True)
            matrix = np.empty((len(members), len(stored) + len(new)), np.float64)
            matrix[:, : len(stored)] = [
                np.frombuffer(row["vals"], np.float64) for row, _ in members
            ]
            matrix[:, len(stored) :] = [points.values for _, points in members]
            encoded = ch.encode_columns(
                np.concatenate([stored.steps, new.steps]),
                np.concatenate([stored.times, new.times]),
                matrix,
            )
            for (row, _), packed in zip(members, encoded, strict=True):
                self._rewritten(row, packed)
        self._merges = {}

    def _rewritten(self, row: Mapping[str, Any], encoded: ch.Encoded) -> None:
        """``row``, a stored chunk, is to be replaced by ``encoded``."""
        self._updates.append(
            {
                "id": row["id"],
                "series_id": row["series_id"],
                "seq": row["seq"],
                "epoch": row["epoch"],
                **encoded.row(),
            }
        )
        self._times[(row["series_id"], row["seq"])] = encoded.block_times

    def flush(self) -> None:
        """Write what was appended: one statement per table (``chunkwrite``)."""
        if self._merges:
            self._apply_merges()
        chunkwrite.insert_chunks(self.conn, self._inserts)
        chunkwrite.replace_chunks(self.conn, self._updates)
        if self._times:
            # The block times of the chunks written (none for a chunk without blocks);
            # those of a chunk rewritten by a merge replace its old ones.
            chunkwrite.replace_block_times(
                self.conn,
                [key for key in self._times if key not in self._fresh],
                [(s, q, times) for (s, q), times in self._times.items() if times],
            )
        chunkwrite.update_series(self.conn, list(self._dirty.values()))
        self._inserts, self._updates, self._dirty = [], [], {}
        self._times, self._fresh = {}, set()


def _plain_floats(points: ch.Points) -> bool:
    """Whether these points are floats only (a chunk of dtype ``f``)."""
    return points.values is not None and points.ints is None and points.int_values is None


def _decode_row(row: Any, with_times: bool) -> ch.Points:
    return ch.decode(
        row["n"],
        row["step_min"],
        row["dtype"],
        row["dense"],
        row["steps"],
        row["vals"],
        row["flags"],
        row["times"] if with_times else None,
    )


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    run_pk: int
    kind: str
    key: str
    count: int
    ordered: bool
    step_min: int | None
    step_max: int | None


def list_series(
    conn: sa.Connection, run_pks: list[int], kinds: tuple[str, ...], keys: list[str] | None = None
) -> list[SeriesInfo]:
    """Series of some runs, of the given kinds (and keys), ordered by run and key."""
    if not run_pks:
        return []
    query = sa.select(
        series.c.id,
        series.c.run_pk,
        series.c.kind,
        series.c.key,
        series.c["count"].label("points"),
        series.c.ordered,
        series.c.step_min,
        series.c.step_max,
    ).where(series.c.run_pk.in_(run_pks), series.c.kind.in_(kinds))
    if keys is not None:
        if not keys:
            return []
        query = query.where(series.c.key.in_(keys))
    rows = conn.execute(query.order_by(series.c.run_pk, series.c.key)).all()
    return [
        SeriesInfo(
            r.id, r.run_pk, r.kind, r.key, int(r.points), bool(r.ordered), r.step_min, r.step_max
        )
        for r in rows
    ]


def read_points(
    conn: sa.Connection,
    infos: list[SeriesInfo],
    with_times: bool = True,
    step_range: tuple[float | None, float | None] = (None, None),
) -> dict[int, ch.Points]:
    """The points of each series (latest per step, sorted by step), by series id."""
    if not infos:
        return {}
    columns: list[Any] = list(_CHUNK_COLUMNS)
    if with_times:
        columns.append(chunks.c.times)
    query = sa.select(*columns).where(chunks.c.series_id.in_([i.id for i in infos]))
    low, high = step_range
    if low is not None:
        query = query.where(chunks.c.step_max >= int(np.floor(low)))
    if high is not None:
        query = query.where(chunks.c.step_min <= int(np.ceil(high)))
    parts: dict[int, list[ch.Points]] = {}
    for row in conn.execute(query.order_by(chunks.c.series_id, chunks.c.seq)):
        mapping = row._mapping
        parts.setdefault(row.series_id, []).append(
            _decode_row(mapping, with_times)
            if with_times
            else _decode_row({**mapping, "times": None}, False)
        )
    out: dict[int, ch.Points] = {}
    for info in infos:
        pieces = parts.get(info.id)
        if not pieces:
            out[info.id] = ch.concat_empty()
            continue
        out[info.id] = ch.latest_per_step(ch.concat(pieces), info.ordered)
    return out


@dataclass(frozen=True)
class Blocks:
    """Block summaries of several series end to end (see ``chunks.block_summary``).

    ``array[start:stop]`` with ``(start, stop) = spans[series_id]`` are one series's
    blocks in step order; spans follow each other in the array's order.
    """

    array: npt.NDArray[Any]
    spans: dict[int, tuple[int, int]]
    #: With ``with_times``: per block its first and last point's time, shape (blocks, 2).
    times: npt.NDArray[np.float64] | None = None


def read_blocks(
    conn: sa.Connection,
    infos: list[SeriesInfo],
    cache: BlockCache | None = None,
    with_times: bool = False,
) -> Blocks:
    """The block summaries of these series, in one array read straight from the blobs.

    The chunks are listed first (small rows); only blobs ``cache`` does not hold at
    the listed version are fetched. A series with a chunk that has none (text,
    unsorted) is left out; ``with_times``, also one with a chunk without block times
    (written before schema 12).
    """
    listed = _chunk_list(conn, [i.id for i in infos]) if infos else []
    versions = {chunk_id: (n, step_max) for chunk_id, _, n, step_max, _ in listed}
    found = {} if cache is None else cache.get_many(versions)
    missing = [chunk_id for chunk_id in versions if chunk_id not in found]
    if missing:
        fetched = {chunk_id: bytes(blob) for chunk_id, blob in _block_blobs(conn, missing)}
        found.update(fetched)
        if cache is not None:
            cache.put_many((i, versions[i], blob) for i, blob in fetched.items())
    bounds = _block_times(conn, [i.id for i in infos]) if with_times and infos else {}
    pieces: list[bytes] = []
    time_pieces: list[bytes] = []
    spans: dict[int, tuple[int, int]] = {}
    at = 0
    for series_id, group in itertools.groupby(listed, key=operator.itemgetter(1)):
        rows = list(group)
        blobs = [found.get(row[0], b"") for row in rows]
        if not all(blobs):
            continue
        count = sum(map(len, blobs)) // ch.BLOCK_DTYPE.itemsize
        if with_times:
            times = [bounds.get((series_id, row[4]), b"") for row in rows]
            if sum(map(len, times)) != count * 16:
                continue
            time_pieces.extend(times)
        pieces.extend(blobs)
        spans[series_id] = (at, at + count)
        at += count
    array = np.frombuffer(b"".join(pieces), dtype=ch.BLOCK_DTYPE)
    if not with_times:
        return Blocks(array, spans)
    times_array = np.frombuffer(b"".join(time_pieces), dtype=np.float64).reshape(-1, 2)
    return Blocks(array, spans, times_array)


def _block_times(conn: sa.Connection, series_ids: list[int]) -> dict[tuple[int, int], bytes]:
    """(series id, seq) -> the block times of that chunk."""
    query = sa.select(block_times.c.series_id, block_times.c.seq, block_times.c.times).where(
        block_times.c.series_id.in_(sa.bindparam("ids", expanding=True))
    )
    out: dict[tuple[int, int], bytes] = {}
    for i in range(0, len(series_ids), _IDS_PER_QUERY):
        for series_id, seq, times in conn.execute(
            query, {"ids": series_ids[i : i + _IDS_PER_QUERY]}
        ):
            out[(series_id, seq)] = bytes(times)
    return out


_IDS_PER_QUERY = 10_000


def _chunk_list(conn: sa.Connection, series_ids: list[int]) -> list[tuple[int, int, int, int, int]]:
    """(chunk id, series id, n, step_max, seq) of these series' chunks, in series and step order.

    Thousands of small rows: read as plain tuples through the driver's cursor, which
    takes a fifth of the time SQLAlchemy's rows take.
    """
    query = (
        sa.select(chunks.c.id, chunks.c.series_id, chunks.c.n, chunks.c.step_max, chunks.c.seq)
        .where(chunks.c.series_id.in_(sa.bindparam("ids", expanding=True)))
        .order_by(chunks.c.series_id, chunks.c.seq)
    )
    rows: list[tuple[int, int, int, int, int]] = []
    for i in range(0, len(series_ids), _IDS_PER_QUERY):
        result = conn.execute(query, {"ids": series_ids[i : i + _IDS_PER_QUERY]})
        rows.extend(result.cursor.fetchall() if result.cursor is not None else [])
    rows.sort(key=operator.itemgetter(1))  # stable: each series keeps its seq order
    return rows


def _block_blobs(conn: sa.Connection, chunk_ids: list[int]) -> Iterable[Any]:
    """(chunk id, blocks) of these chunks.

    On PostgreSQL (psycopg 3) the rows are fetched in binary format: bytea then
    arrives as the bytes themselves instead of hex text that both ends encode and
    decode, which takes the fetch of a chart's worth of summaries from ~190 to ~120 ms.
    """
    if conn.dialect.name == "sqlite":
        # The ids as one JSON array: binding 7,000 parameters (compiled by SQLAlchemy one
        # by one) took 15 ms of a chart's 140 ms read; the rows as plain tuples.
        in_json = sa.text(
            "SELECT id, blocks FROM chunks WHERE id IN (SELECT value FROM json_each(:ids))"
        )
        found: list[Any] = []
        for i in range(0, len(chunk_ids), _IDS_PER_QUERY):
            part = json.dumps(chunk_ids[i : i + _IDS_PER_QUERY])
            result = conn.execute(in_json, {"ids": part})
            found.extend(result.cursor.fetchall() if result.cursor is not None else [])
        return found
    if conn.dialect.driver != "psycopg":
        return itertools.chain.from_iterable(
            conn.execute(
                sa.select(chunks.c.id, chunks.c.blocks).where(
                    chunks.c.id.in_(chunk_ids[i : i + _IDS_PER_QUERY])
                )
            )
            for i in range(0, len(chunk_ids), _IDS_PER_QUERY)
        )
    driver = conn.connection.driver_connection
    assert driver is not None
    # The ids as one array literal: psycopg's dumping of a list of 7,000 ints (a type check
    # per element) took 18 ms of a chart's 100 ms fetch.
    ids = "{" + ",".join(map(str, sorted(chunk_ids))) + "}"
    with driver.cursor(binary=True) as cursor:
        cursor.execute("SELECT id, blocks FROM chunks WHERE id = ANY(%s::bigint[])", [ids])
        rows: list[Any] = cursor.fetchall()
    return rows
