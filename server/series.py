"""Columnar series in the database: reading points back.

Ingest appends each batch of a series' points as a chunk row (``serieswrite``).
Reading concatenates chunks in seq order (seqs may have gaps) and, where the
series is not strictly increasing in step, keeps the latest point per step.
"""

from __future__ import annotations

import itertools
import json
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from . import chunks as ch
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
    unsorted) is left out. ``with_times``: the block times stored, and those of chunks
    stored without (a series' tail, small chunks soon compacted; chunks written before
    schema 12) from their points' times.
    """
    listed = _chunk_list(conn, [i.id for i in infos]) if infos else []
    versions = {row[0]: (row[1], row[4], row[2], row[3]) for row in listed}  # blockcache
    found = {} if cache is None else cache.get_many(versions)
    missing = [chunk_id for chunk_id in versions if chunk_id not in found]
    if missing:
        fetched = {chunk_id: bytes(blob) for chunk_id, blob in _block_blobs(conn, missing)}
        found.update(fetched)
        if cache is not None:
            cache.put_many((i, versions[i], blob) for i, blob in fetched.items())
    bounds = _block_times(conn, [i.id for i in infos]) if with_times and infos else {}
    if with_times:
        untimed = [row[0] for row in listed if (row[1], row[4]) not in bounds and found.get(row[0])]
        bounds.update(_bounds_from_points(conn, untimed))
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
    return {(sid, seq): bytes(times) for sid, seq, times in _in_parts(conn, query, series_ids)}


def _bounds_from_points(conn: sa.Connection, chunk_ids: list[int]) -> dict[tuple[int, int], bytes]:
    """(series id, seq) -> the block times of these chunks, from their points' times."""
    query = sa.select(chunks.c.series_id, chunks.c.seq, chunks.c.times).where(
        chunks.c.id.in_(sa.bindparam("ids", expanding=True))
    )
    return {
        (sid, seq): ch.block_time_bounds(np.frombuffer(times, dtype=np.float64)).tobytes()
        for sid, seq, times in _in_parts(conn, query, chunk_ids)
    }


def _in_parts(conn: sa.Connection, query: Any, ids: list[int]) -> Iterable[Any]:
    """The rows of ``query`` (with an expanding ``ids`` parameter) for these ids."""
    for i in range(0, len(ids), _IDS_PER_QUERY):
        yield from conn.execute(query, {"ids": ids[i : i + _IDS_PER_QUERY]})


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
