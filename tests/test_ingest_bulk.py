"""The batch writes of ingest (``server/chunkwrite.py``), on SQLite and on PostgreSQL.

A batch's chunks, compacted chunks, block times and series counters go to the
database in one statement per table (COPY and ``unnest`` on PostgreSQL). These
tests ship wide rows in ranges small enough to make each key's batch a small chunk
that is compacted later, with odd values and odd key names, a key first seen
mid-run and a rewind, and compare what the server answers with the records.
"""

from __future__ import annotations

import itertools
import math
import zlib
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from _server import (  # noqa: F401 - fixtures
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    frames_bytes,
    log_bytes,
    post_log,
)
from trackline import _wire_types as wt
from trackline import runlog
from trackline._client import _rows
from trackline.records import Metrics, Record, Rewind, RunStart
from trackline.server import auth, chunks, chunkwrite, ingest, schema, series, serieswrite
from trackline.server.db import Database

#: Key names a text array literal must quote right, beside ordinary ones.
ODD_KEYS = ['a"quote', "back\\slash", "com,ma", "{brace}", "NULL", "ünï cödé", " space ", "x" * 300]


def canon(value: Any) -> Any:
    if isinstance(value, float):
        return ("f", repr(value))
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canon(v) for v in value]
    return value


def history(client: Any, run_id: str, keys: list[str]) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/runs/{run_id}/history", params={"keys": keys})
    assert answer.status_code == 200, answer.text
    return _rows(wt.decode(answer.content, wt.Columns))


def ship(client: Any, run_id: str, data: bytes, cuts: list[int]) -> None:
    for lo, hi in itertools.pairwise(cuts):
        response = post_log(client, run_id, data[lo:hi], lo)
        assert response.status_code == 200, response.text
        assert post_log(client, run_id, data[lo:hi], lo).json()["applied"] == 0  # a retry


def value(step: int, j: int) -> float:
    """Odd values among ordinary ones: NaN, both infinities, -0.0, the extremes."""
    special = (math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308)
    if (step + j) % 23 == 0:
        return special[(step + j) // 23 % len(special)]
    return step + j / 7


def count_compactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that each flush that compacts tails appends to: how many series it compacts."""
    compacted: list[int] = []
    read_tails = chunkwrite.read_tails

    def counting(conn: Any, wanted: list[tuple[int, int]]) -> Any:
        compacted.append(len(wanted))
        return read_tails(conn, wanted)

    monkeypatch.setattr(chunkwrite, "read_tails", counting)
    return compacted


def test_wide_rows_in_small_ranges_are_compacted_and_read_back_exactly(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranges of a few rows of many keys: each range makes a small chunk per key; the keys
    take turns compacting them (no request compacts more than a few of the 7 in 7 keys);
    a key first seen mid-run starts late; every key's tail is what its counters say; the
    stored chunks are those ``chunks.encode`` writes for the same points."""
    keys = [f"layer{j // 40:02d}/k{j % 40}" for j in range(400)] + ODD_KEYS
    late = "late/key"
    records: list[Record] = [RunStart(run_id="bulk", project="p", name="n", start_time=1.0)]
    for step in range(60):
        values: dict[str, Any] = {k: value(step, j) for j, k in enumerate(keys)}
        if step >= 25:
            values[late] = float(step)
        records.append(Metrics(step, 1000.0 + step, values))
    data = log_bytes(records)
    view = memoryview(data)[runlog.HEADER_SIZE :]
    ends = [f.end for f in runlog.iter_frames(view, runlog.HEADER_SIZE)]
    compacted = count_compactions(monkeypatch)
    # Ranges of steps 0-9, 10, 11-23, 24-29, then 5 steps at a time: 10 ranges.
    cuts = [0, ends[10], ends[11], ends[24], *(ends[i] for i in range(30, 60, 5)), len(data)]
    ship(app_client, "bulk", data, cuts)
    assert sum(compacted) > len(keys) and max(compacted) < len(keys) / 4

    wanted = [*keys[:3], *ODD_KEYS, late]
    got = history(app_client, "bulk", wanted)
    want = [
        {"_step": r.step, **{k: v for k, v in r.values.items() if k in wanted}}
        for r in records[1:]
        if isinstance(r, Metrics)
    ]
    got = [{k: v for k, v in row.items() if k in {"_step", *wanted}} for row in got]
    assert canon(got) == canon(want)
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["bulk"]}).json()["points"]
    assert all(counts[k] == 60 for k in keys) and counts[late] == 35

    db: Database = app_client.app.state.ctx.db
    with db.read() as conn:
        infos = {r.key: r for r in conn.execute(sa.select(schema.series))}
        stored: dict[int, list[Any]] = {}
        for row in conn.execute(sa.select(schema.chunks).order_by(schema.chunks.c.seq)):
            stored.setdefault(row.series_id, []).append(row)
        timed = conn.execute(sa.select(sa.func.count()).select_from(schema.block_times)).scalar()
    assert timed == 0  # every chunk is in its key's tail: no block times stored
    for key in [*keys, late]:
        info, rows = infos[key], stored[infos[key].id]
        first = 25 if key == late else 0
        assert info.chunks == (7 if key == late else 10) and info.tail == len(rows)
        assert info.tail_seq == rows[0].seq and info.tail_n == sum(r.n for r in rows) == 60 - first
        fresh = [r for r in rows if r.seq >= info.fresh_seq] if info.fresh else []
        assert len(fresh) == info.fresh and sum(r.n for r in fresh) == info.fresh_n
        assert len(rows) - len(fresh) < chunks.TAIL_CHUNKS and len(fresh) < chunks.TAIL_CHUNKS
        assert [r.step_min for r in rows] == sorted(r.step_min for r in rows)
        assert rows[0].step_min == first and rows[-1].step_max == 59
        if key not in wanted[2:] and key != keys[5]:
            continue
        j = [*keys, late].index(key)
        for row in rows:
            steps = np.arange(row.step_min, row.step_max + 1, dtype=np.int64)
            points = chunks.Points(
                steps,
                1000.0 + steps.astype(np.float64),
                np.array([float(s) if key == late else value(s, j) for s in steps]),
                None,
                None,
            )
            expected = chunks.encode(points)
            assert bytes(row.vals) == expected.vals and bytes(row.blocks) == expected.blocks
            assert bytes(row.times) == expected.times and row.n == expected.n
    # Keys took turns: their tails differ.
    assert len({(infos[k].tail, infos[k].fresh) for k in keys}) > 3
    with db.read() as conn:
        [info] = series.list_series(conn, [infos[keys[5]].run_pk], ("m",), [keys[5]])
        blocks = series.read_blocks(conn, [info], with_times=True)
    assert blocks.times is not None and blocks.spans == {info.id: (0, len(stored[info.id]))}
    assert blocks.times.tobytes() == b"".join(
        chunks.block_time_bounds(1000.0 + np.arange(r.step_min, r.step_max + 1.0)).tobytes()
        for r in stored[info.id]
    )


def test_a_rewind_between_small_ranges_of_wide_rows(app_client: Any) -> None:
    """Rows after a rewind start new chunks (never merged into the old epoch's), and
    the history shows the rewound steps' new values."""
    keys = [f"w{j}" for j in range(300)]
    head: list[Record] = [RunStart(run_id="rw", project="p", name="n", start_time=1.0)]
    head += [Metrics(s, 10.0 + s, {k: s + j / 3 for j, k in enumerate(keys)}) for s in range(20)]
    data = log_bytes(head)
    ship(app_client, "rw", data, [0, len(data)])
    more = [Rewind(step=9, time=40.0)]
    more += [
        Metrics(s, 50.0 + s, {k: -s - j / 3 for j, k in enumerate(keys)}) for s in range(10, 14)
    ]
    tail = frames_bytes(more)
    assert post_log(app_client, "rw", tail, len(data)).status_code == 200
    final = frames_bytes([Metrics(s, 60.0 + s, {keys[0]: 0.25}) for s in range(14, 16)])
    assert post_log(app_client, "rw", final, len(data) + len(tail)).status_code == 200
    rows = history(app_client, "rw", keys[:2])
    assert [r["_step"] for r in rows] == list(range(16))
    assert [r.get(keys[0]) for r in rows] == [float(s) for s in range(10)] + [
        -10.0,
        -11.0,
        -12.0,
        -13.0,
        0.25,
        0.25,
    ]
    assert [r.get(keys[1]) for r in rows][8:14] == pytest.approx(
        [8 + 1 / 3, 9 + 1 / 3, -10 - 1 / 3, -11 - 1 / 3, -12 - 1 / 3, -13 - 1 / 3]
    )
    db: Database = app_client.app.state.ctx.db
    with db.read() as conn:
        epochs = conn.execute(
            sa.select(schema.chunks.c.epoch, schema.chunks.c.n)
            .join(schema.series, schema.series.c.id == schema.chunks.c.series_id)
            .where(schema.series.c.key == keys[0])
            .order_by(schema.chunks.c.seq)
        ).all()
    # Never compacted across the rewind: the old epoch's chunk is not in the new tail.
    assert [tuple(e) for e in epochs] == [(0, 20), (1, 4), (1, 2)]


def assert_tails(db: Database, run_pk: int) -> dict[str, Any]:
    """Every series of the run agrees with its chunks: its counters, its tail of at most
    ``TAIL_CHUNKS`` compacted and as many fresh chunks, none of them with block times,
    fresh ones under ``MERGE_BATCH_BELOW`` points, compacted ones under ``MERGE_BELOW``.
    Returns the series rows by key."""
    with db.read() as conn:
        rows = {
            r.key: r
            for r in conn.execute(sa.select(schema.series).where(schema.series.c.run_pk == run_pk))
        }
        stored: dict[int, list[Any]] = {}
        for row in conn.execute(
            sa.select(schema.chunks.c.series_id, schema.chunks.c.seq, schema.chunks.c.n)
            .join(schema.series, schema.series.c.id == schema.chunks.c.series_id)
            .where(schema.series.c.run_pk == run_pk)
            .order_by(schema.chunks.c.seq)
        ):
            stored.setdefault(row.series_id, []).append(row)
        timed = set(
            conn.execute(sa.select(schema.block_times.c.series_id, schema.block_times.c.seq))
        )
    for key, info in rows.items():
        chunk_rows = stored.get(info.id, [])
        assert sum(r.n for r in chunk_rows) == info.count, key
        assert chunk_rows[-1].seq == info.chunks - 1 and info.last_n == chunk_rows[-1].n, key
        tail = [r for r in chunk_rows if r.seq >= info.tail_seq] if info.tail else []
        fresh = [r for r in tail if r.seq >= info.fresh_seq] if info.fresh else []
        assert (len(tail), sum(r.n for r in tail)) == (info.tail, info.tail_n), key
        assert (len(fresh), sum(r.n for r in fresh)) == (info.fresh, info.fresh_n), key
        assert all(r.n < chunks.MERGE_BATCH_BELOW for r in fresh), key
        assert all(r.n < chunks.MERGE_BELOW for r in tail[: len(tail) - len(fresh)]), key
        assert len(tail) - len(fresh) < chunks.TAIL_CHUNKS > len(fresh), key
        assert not timed & {(info.id, r.seq) for r in tail}, key
    return rows


def test_series_writer_with_thousands_of_keys_in_one_flush(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SeriesWriter`` directly: 5,000 new series in one flush, flushes of small batches
    to all of them and to a few; the keys take turns compacting their tails (a seventh of
    them per flush, give or take); the counters and points stored are right."""
    compacted = count_compactions(monkeypatch)
    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:
            admin = auth.create_entity(conn, "admin", "user", is_admin=True)
            user = auth.User(admin, "admin", True, frozenset(), frozenset())
            run_pk = ingest.get_or_create_run(conn, "many", user).id
        keys = [f"k{j}" for j in range(5000)] + ODD_KEYS
        some = keys[::1000]
        index = {key: j for j, key in enumerate(keys)}
        batches = [(0, 30, keys), (30, 30, keys), (60, 5, some)]
        batches += [(65 + 10 * i, 10, keys) for i in range(14)]
        for flush, (start, n, these) in enumerate(batches):
            steps = np.arange(start, start + n, dtype=np.int64)
            with db.write() as conn:
                store = serieswrite.SeriesWriter(conn, run_pk)
                store.ensure("m", these)
                for key in these:
                    values = np.full(n, float(index[key])) + steps
                    store.append("m", key, chunks.Points(steps, steps * 1.0, values, None, None))
                store.flush()
            if flush % 4 == 1:
                assert_tails(db, run_pk)
        assert len(compacted) >= 14 and max(compacted) < len(keys) / 4
        assert sum(compacted) > 2 * len(keys)  # every key compacted twice at least
        rows = assert_tails(db, run_pk)
        assert all(rows[k].count == (205 if k in some else 200) for k in keys)
        with db.read() as conn:
            infos = series.list_series(conn, [run_pk], ("m",), [keys[1000], ODD_KEYS[1]])
            points = series.read_points(conn, infos)
        by_key = {i.key: points[i.id] for i in infos}
        steps = np.arange(205)
        assert by_key[keys[1000]].values.tolist() == (steps + 1000.0).tolist()  # type: ignore[union-attr]
        steps = np.concatenate([np.arange(60), np.arange(65, 205)])
        assert by_key[ODD_KEYS[1]].steps.tolist() == steps.tolist()
        assert by_key[ODD_KEYS[1]].values.tolist() == (steps + 5001.0).tolist()  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_postgres_compresses_new_chunks_with_lz4(database_url: str) -> None:
    """Version 15: fresh and upgraded databases write chunk points with lz4."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL storage setting")
    db = Database(database_url)
    try:
        db.migrate()
        query = sa.text(
            "SELECT attname, attcompression FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attname IN ('steps', 'vals', 'times')"
        )
        with db.write() as conn:
            assert {r[1] for r in conn.execute(query, {"t": "chunks"})} == {"l"}
            assert {r[1] for r in conn.execute(query, {"t": "block_times"})} == {"l"}
            # As a version-13 server left them: PostgreSQL's default (pglz).
            for table, column in (
                ("chunks", "vals"),
                ("chunks", "times"),
                ("block_times", "times"),
            ):
                conn.execute(
                    sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION pglz")
                )
            conn.execute(sa.update(schema.schema_version).values(version=13))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            assert {r[1] for r in conn.execute(query, {"t": "chunks"})} == {"l"}
            assert {r[1] for r in conn.execute(query, {"t": "block_times"})} == {"l"}
    finally:
        db.dispose()


def _writer_run(db: Database, name: str) -> int:
    with db.write() as conn:
        admin = auth.create_entity(conn, f"admin-{name}", "user", is_admin=True)
        user = auth.User(admin, f"admin-{name}", True, frozenset(), frozenset())
        return int(ingest.get_or_create_run(conn, name, user).id)


def _append(db: Database, run_pk: int, key: str, steps: np.ndarray) -> None:
    with db.write() as conn:
        store = serieswrite.SeriesWriter(conn, run_pk)
        points = chunks.Points(steps, steps * 0.5, steps * 2.0, None, None)
        store.append("m", key, points)
        store.flush()


def test_a_slowly_logged_series_ends_in_full_chunks_and_a_short_tail(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 batches of 5 points (a live run's key, or a slow metric): every chunk but the
    tail's holds at least ``MERGE_BELOW`` points, the tail is shorter than twice
    ``TAIL_CHUNKS``, and each point was encoded far fewer times than merging every batch into the last
    chunk did (which encoded the growing chunk once per batch: ~200 times per point)."""
    encoded = [0]
    real = chunks.encode

    def counting(points: chunks.Points) -> chunks.Encoded:
        encoded[0] += len(points)
        return real(points)

    monkeypatch.setattr(chunks, "encode", counting)
    db = Database(database_url)
    try:
        db.migrate()
        run_pk = _writer_run(db, "slow")
        for start in range(0, 3000, 5):
            _append(db, run_pk, "x", np.arange(start, start + 5, dtype=np.int64))
        with db.read() as conn:
            row = conn.execute(sa.select(schema.series).where(schema.series.c.key == "x")).one()
            stored = conn.execute(
                sa.select(schema.chunks.c.seq, schema.chunks.c.n)
                .where(schema.chunks.c.series_id == row.id)
                .order_by(schema.chunks.c.seq)
            ).all()
            [info] = series.list_series(conn, [run_pk], ("m",))
            points = series.read_points(conn, [info])[info.id]
        assert sum(n for _, n in stored) == 3000 == row.count
        tail = [n for seq, n in stored if row.tail and seq >= row.tail_seq]
        assert len(tail) == row.tail < 2 * chunks.TAIL_CHUNKS and sum(tail) == row.tail_n
        assert_tails(db, run_pk)
        assert all(n >= chunks.MERGE_BELOW for _, n in stored[: len(stored) - len(tail)])
        assert len(stored) - len(tail) == 1
        assert points.steps.tolist() == list(range(3000))
        assert points.values.tolist() == [2.0 * s for s in range(3000)]  # type: ignore[union-attr]
        assert points.times.tolist() == [0.5 * s for s in range(3000)]
        assert encoded[0] < 40 * 3000
    finally:
        db.dispose()


def test_version_15_series_keep_their_small_last_chunk_as_a_tail(database_url: str) -> None:
    """Version 16 (tails): a series whose last chunk took merges before has it as a tail of
    one, compacted with the next small batches; one with a full last chunk has none."""
    db = Database(database_url)
    try:
        db.migrate()
        run_pk = _writer_run(db, "old")
        _append(db, run_pk, "small", np.arange(0, 100, dtype=np.int64))
        _append(db, run_pk, "full", np.arange(0, 3000, dtype=np.int64))
        with db.write() as conn:  # as version 15 left them (it had no tail columns)
            conn.execute(sa.update(schema.series).values(tail=0, tail_seq=0, tail_n=0))
            conn.execute(sa.update(schema.schema_version).values(version=15))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            tails = {
                r.key: (r.tail, r.tail_seq, r.tail_n)
                for r in conn.execute(sa.select(schema.series))
            }
        assert tails == {"small": (1, 0, 100), "full": (0, 0, 0)}
        for start in range(100, 135, 5):  # 7 more small chunks: compacted with it
            _append(db, run_pk, "small", np.arange(start, start + 5, dtype=np.int64))
        with db.read() as conn:
            [info] = series.list_series(conn, [run_pk], ("m",), ["small"])
            stored = conn.execute(
                sa.select(schema.chunks.c.seq, schema.chunks.c.n).where(
                    schema.chunks.c.series_id == info.id
                )
            ).all()
            points = series.read_points(conn, [info])[info.id]
        assert stored[0].seq > 0 and stored[0].n > 100 and sum(r.n for r in stored) == 135
        assert_tails(db, run_pk)
        assert points.steps.tolist() == list(range(135))
    finally:
        db.dispose()


def test_a_range_of_many_bodies_is_written_once_per_key(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range decoded as many bodies carries its metric rows to its end (as float
    matrices): one chunk per key, not one per body; a rewind inside the range writes the
    rows before it in their epoch; a wide shape that turns out to hold an int later
    falls back to Python values exactly; a retry overlapping the range applies nothing."""
    decoded = []
    real = ingest.decode_stream

    def small_bodies(pieces: Any, offset: int) -> Any:
        small = (piece[i : i + 1024] for piece in pieces for i in range(0, len(piece), 1024))
        for body in real(small, offset, batch=4096):
            decoded.append(len(body.records))
            yield body

    monkeypatch.setattr(ingest, "decode_stream", small_bodies)
    monkeypatch.setattr(ingest, "ROWS_PER_BATCH", 4)
    keys = [f"layer{j // 10}/k{j % 10}" for j in range(120)]
    records: list[Record] = [RunStart(run_id="carry", project="p", name="n", start_time=1.0)]
    records += [Metrics(s, 10.0 + s, {k: s + j / 8 for j, k in enumerate(keys)}) for s in range(40)]
    records[31] = Metrics(30, 40.0, {k: (7 if j == 5 else 30 + j / 8) for j, k in enumerate(keys)})
    records.append(Rewind(step=35, time=60.0))
    records += [
        Metrics(s, 70.0 + s, {k: -s - j / 8 for j, k in enumerate(keys)}) for s in range(36, 46)
    ]
    data = log_bytes(records)
    ship(app_client, "carry", data, [0, len(data)])
    assert len([n for n in decoded if n]) > 10  # many bodies, applied as they are decoded

    got = history(app_client, "carry", keys[4:7])
    want = [
        {"_step": r.step, "_time": r.time, **{k: r.values[k] for k in keys[4:7]}}
        for r in records[1:]
        if isinstance(r, Metrics) and (r.step <= 35 or r.time >= 70.0)
    ]
    assert canon(got) == canon(want)
    assert type(got[30][keys[5]]) is int and got[30][keys[5]] == 7
    db: Database = app_client.app.state.ctx.db
    with db.read() as conn:
        stored = conn.execute(
            sa.select(schema.chunks.c.epoch, schema.chunks.c.n)
            .join(schema.series, schema.series.c.id == schema.chunks.c.series_id)
            .where(schema.series.c.key.in_([keys[5], keys[6]]))
            .order_by(schema.series.c.key, schema.chunks.c.seq)
        ).all()
    assert [tuple(r) for r in stored] == [(0, 40), (1, 10)] * 2
    # Again, from the middle of the range: the committed part is skipped, nothing twice.
    middle = frame_end_after(data, 20)
    assert post_log(app_client, "carry", data[middle:], middle).json()["applied"] == 0
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["carry"]}).json()["points"]
    assert counts[keys[0]] == 50


def frame_end_after(data: bytes, frames: int) -> int:
    view = memoryview(data)[runlog.HEADER_SIZE :]
    return [f.end for f in runlog.iter_frames(view, runlog.HEADER_SIZE)][frames]


def test_columns_of_compacted_rows_equal_those_of_rows_kept_as_they_came() -> None:
    """``Columnizer.compact`` (what a range carries between bodies) changes nothing that
    ``columns`` gives: float matrices, a shape with an int and a text later, a key in two
    shapes, a one-key shape."""
    from trackline.server.columnize import Columnizer

    rows: list[tuple[int, float, dict[str, Any]]] = []
    for s in range(30):
        rows.append((s, 1.0 + s, {"a": s / 3, "b": -s / 7, "c": 1e300}))
        if s % 7 == 0:
            rows.append((s, 1.5 + s, {"a": float(s), "only": 2.5}))
    rows.append((30, 31.0, {"a": 1, "b": "text", "c": math.nan}))
    rows.append((31, 32.0, {"a": 0.5, "b": 0.25, "c": -math.inf}))
    plain, carried = Columnizer(), Columnizer()
    for i, (step, time, values) in enumerate(rows):
        plain.add(step, time, values)
        carried.add(step, time, values)
        if i % 6 == 5:
            carried.compact()
    assert carried.points == plain.points == sum(len(v) for _, _, v in rows)

    def as_lists(columnizer: Columnizer) -> dict[str, Any]:
        matrices, singles = columnizer.columns()
        out = {
            key: (points.steps.tolist(), points.times.tolist(), canon(points.python_values()))
            for key, points in singles
        }
        for m in matrices:
            for key, values in zip(m.keys, m.values, strict=True):
                assert key not in out
                out[key] = (m.steps.tolist(), m.times.tolist(), canon(values.tolist()))
        return out

    assert as_lists(carried) == as_lists(plain)


def test_a_range_of_another_log_is_refused_by_its_head(app_client: Any) -> None:
    """Version 17: a stream remembers the head its first range came with; a range sent
    with another head is refused (409, nothing applied); ranges without one (older
    clients) and streams begun without one are not checked."""
    records: list[Record] = [RunStart(run_id="heads", project="p", name="n", start_time=1.0)]
    records += [Metrics(s, 1.0 + s, {"v": float(s)}) for s in range(10)]
    data = log_bytes(records)
    cut = frame_end_after(data, 5)
    mine, other = "ab" * 16, "cd" * 16

    def post(lo: int, hi: int, **params: str) -> Any:
        return app_client.post(
            "/api/v1/runs/heads/streams/main",
            params={"offset": lo, **params},
            content=zlib.compress(data[lo:hi]),
            headers={"content-encoding": "deflate"},
        )

    assert post(0, cut, head=mine).status_code == 200
    refused = post(cut, len(data), head=other)
    assert refused.status_code == 409 and refused.json()["other_log"] is True
    assert "begun by another run log" in refused.json()["detail"]
    assert post(0, cut, head=other).status_code == 409  # a retry of it too
    assert post(cut, len(data), head="xyz").status_code == 422  # not a digest
    assert post(cut, len(data), head=mine).json()["committed"] == len(data)
    assert post(0, len(data)).json()["applied"] == 0  # no head: an older client, unchecked
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["heads"]}).json()["points"]
    assert counts == {"v": 10}
    db: Database = app_client.app.state.ctx.db
    with db.write() as conn:  # as a stream begun before version 17 (or without a head)
        conn.execute(sa.update(schema.streams).values(head=None))
    assert post(0, len(data), head=other).json()["applied"] == 0  # not checked


def test_rows_of_ints_are_written_before_they_hold_too_much(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values that stay Python objects between bodies (ints here) are bounded apart
    (``CARRY_LOOSE``): past it, a body's rows are written, and everything reads back."""
    real = ingest.decode_stream

    def small_bodies(pieces: Any, offset: int) -> Any:
        small = (piece[i : i + 512] for piece in pieces for i in range(0, len(piece), 512))
        yield from real(small, offset, batch=1024)

    monkeypatch.setattr(ingest, "decode_stream", small_bodies)
    monkeypatch.setattr(ingest, "ROWS_PER_BATCH", 2)
    monkeypatch.setattr(ingest, "CARRY_LOOSE", 200)
    written: list[int] = []
    flush_rows = ingest.Applier._flush_rows

    def counted(self: Any, own_rows: bool = True) -> None:
        written.append(len(self._metrics))
        flush_rows(self, own_rows)

    monkeypatch.setattr(ingest.Applier, "_flush_rows", counted)
    keys = [f"count/{j}" for j in range(50)]
    records: list[Record] = [RunStart(run_id="ints", project="p", name="n", start_time=1.0)]
    records += [
        Metrics(s, 1.0 + s, {k: s * 100 + j for j, k in enumerate(keys)}) for s in range(30)
    ]
    data = log_bytes(records)
    ship(app_client, "ints", data, [0, len(data)])
    got = history(app_client, "ints", keys[:3])
    assert [[r[k] for k in keys[:3]] for r in got] == [
        [s * 100 + j for j in range(3)] for s in range(30)
    ]
    assert all(type(r[keys[0]]) is int for r in got)
    parts = [n for n in written if n]
    assert sum(parts) == 30 and len(parts) > 2  # written in parts of >= 4 rows (200 / 50)
    assert all(n >= 4 for n in parts[:-1])


def _times_of_blocks(db: Database, run_pk: int, key: str) -> tuple[list[int], bytes, bytes]:
    """The seqs of a series' chunks with block-times rows; the times ``read_blocks`` gives;
    those its points give, chunk by chunk."""
    with db.read() as conn:
        [info] = series.list_series(conn, [run_pk], ("m",), [key])
        stored = conn.execute(
            sa.select(schema.block_times.c.seq)
            .where(schema.block_times.c.series_id == info.id)
            .order_by(schema.block_times.c.seq)
        ).scalars()
        blocks = series.read_blocks(conn, [info], with_times=True)
        times = conn.execute(
            sa.select(schema.chunks.c.times)
            .where(schema.chunks.c.series_id == info.id)
            .order_by(schema.chunks.c.seq)
        ).scalars()
        expected = b"".join(
            chunks.block_time_bounds(np.frombuffer(t, dtype=np.float64)).tobytes() for t in times
        )
    assert blocks.times is not None and blocks.spans == {info.id: (0, len(blocks.array))}
    return list(stored), blocks.times.tobytes(), expected


def _small_until_the_tail_leaves(db: Database, run_pk: int, start: int) -> int:
    """Batches of 255 points (small) until the tail is compacted past ``MERGE_BELOW`` into a
    chunk of its own; checks the stored times on the way. Returns the next step."""
    for _ in range(20):
        _append(db, run_pk, "x", np.arange(start, start + 255, dtype=np.int64))
        start += 255
        _, read, expected = _times_of_blocks(db, run_pk, "x")
        assert read == expected
        if not assert_tails(db, run_pk)["x"].tail:
            return start
    raise AssertionError("the tail was never compacted past MERGE_BELOW")


def test_a_tails_chunks_store_no_block_times(database_url: str) -> None:
    """Version 19: a chunk of its own stores its block times; those of a tail (fresh or
    compacted) do not, until the tail is compacted past ``MERGE_BELOW`` into a chunk of
    its own. The times a chart over wall time reads are the points' either way."""
    db = Database(database_url)
    try:
        db.migrate()
        run_pk = _writer_run(db, "times")
        _append(db, run_pk, "x", np.arange(0, 3000, dtype=np.int64))  # a chunk of its own
        assert _times_of_blocks(db, run_pk, "x")[0] == [0]
        end = _small_until_the_tail_leaves(db, run_pk, 3000)
        row = assert_tails(db, run_pk)["x"]
        timed, read, expected = _times_of_blocks(db, run_pk, "x")
        assert timed == [0, row.chunks - 1] and read == expected and row.count == end
    finally:
        db.dispose()


def test_version_18_tails_lose_their_block_times(database_url: str) -> None:
    """The migration to 19 makes a tail stored before all fresh, deletes the block times a
    version-18 server stored for its chunks (so compacting them stores the new chunk's
    without a clash) and keeps the others; charts over wall time read the same times.
    PostgreSQL: series pages keep room for HOT updates, fresh and migrated."""
    db = Database(database_url)
    postgres = db.engine.dialect.name == "postgresql"
    options = "SELECT reloptions FROM pg_class WHERE relname = 'series'"
    try:
        db.migrate()
        run_pk = _writer_run(db, "v18")
        _append(db, run_pk, "x", np.arange(0, 3000, dtype=np.int64))
        for start in range(3000, 3000 + 4 * 255, 255):
            _append(db, run_pk, "x", np.arange(start, start + 255, dtype=np.int64))
        _, before, _ = _times_of_blocks(db, run_pk, "x")
        with db.write() as conn:  # as version 18 left them: block times for every chunk
            [info] = series.list_series(conn, [run_pk], ("m",), ["x"])
            tail = conn.execute(
                sa.select(schema.chunks.c.seq, schema.chunks.c.times).where(
                    schema.chunks.c.series_id == info.id, schema.chunks.c.seq > 0
                )
            ).all()
            times = [np.frombuffer(t, dtype=np.float64) for _, t in tail]
            rows = [
                {"series_id": info.id, "seq": seq, "times": chunks.block_time_bounds(t).tobytes()}
                for (seq, _), t in zip(tail, times, strict=True)
            ]
            conn.execute(schema.block_times.insert(), rows)
            for column in ("fresh", "fresh_seq", "fresh_n"):
                conn.exec_driver_sql(f"ALTER TABLE series DROP COLUMN {column}")
            if postgres:
                assert conn.exec_driver_sql(options).scalar() == ["fillfactor=50"]
                conn.exec_driver_sql("ALTER TABLE series RESET (fillfactor)")
            conn.execute(sa.update(schema.schema_version).values(version=18))
        assert db.migrate() == schema.SCHEMA_VERSION
        if postgres:
            with db.read() as conn:
                assert conn.exec_driver_sql(options).scalar() == ["fillfactor=50"]
        row = assert_tails(db, run_pk)["x"]
        assert (row.fresh, row.fresh_seq, row.fresh_n) == (row.tail, row.tail_seq, row.tail_n)
        timed, after, _ = _times_of_blocks(db, run_pk, "x")
        assert timed == [0] and after == before and row.tail == len(tail) >= 2
        _small_until_the_tail_leaves(db, run_pk, 3000 + 4 * 255)
    finally:
        db.dispose()


def test_chunk_rows_up_to_a_page_stay_in_the_table(database_url: str) -> None:
    """Version 18, PostgreSQL: the chunks table keeps rows up to 8 KB whole (no TOAST for a
    wide row's chunks of a few hundred points), fresh and after the migration from 17;
    chunks stored before and after read back alike. SQLite: nothing changes."""
    db = Database(database_url)
    try:
        db.migrate()
        run_pk = _writer_run(db, "inline")
        options = "SELECT reloptions FROM pg_class WHERE relname = 'chunks'"
        postgres = db.engine.dialect.name == "postgresql"
        _append(db, run_pk, "before", np.arange(0, 300, dtype=np.int64))
        with db.write() as conn:  # as version 17 left it
            if postgres:
                assert conn.exec_driver_sql(options).scalar() == ["toast_tuple_target=8160"]
                conn.exec_driver_sql("ALTER TABLE chunks RESET (toast_tuple_target)")
            conn.execute(sa.update(schema.schema_version).values(version=17))
        assert db.migrate() == schema.SCHEMA_VERSION
        _append(db, run_pk, "after", np.arange(0, 300, dtype=np.int64))
        with db.read() as conn:
            if postgres:
                assert conn.exec_driver_sql(options).scalar() == ["toast_tuple_target=8160"]
            infos = series.list_series(conn, [run_pk], ("m",))
            points = series.read_points(conn, infos)
        for info in infos:
            assert points[info.id].values.tolist() == [2.0 * s for s in range(300)]  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_array_literals_round_trip(database_url: str) -> None:
    """The array literals ``update_series`` sends: ints (int8 range, negative), NULLs among
    them, bools; PostgreSQL reads back what was meant."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL array literals")
    cases = [
        ([0, -5, 2**40, 7], "int8"),
        ([None, 3, None], "int8"),
        ([True, False, True], "bool"),
        ([False], "bool"),
        ([], "int4"),
    ]
    db = Database(database_url)
    try:
        with db.read() as conn:
            for values, kind in cases:
                literal = chunkwrite._array(values)
                got = conn.exec_driver_sql(f"SELECT CAST(%(a)s AS {kind}[])", {"a": literal})
                assert got.scalar() == values, (values, literal)
    finally:
        db.dispose()


def test_a_batch_reads_only_the_series_it_writes(database_url: str) -> None:
    """``SeriesWriter.read`` looks up the series of a batch by key, however many (a rank's
    2,000 per-layer keys among the run's 4,000), of every kind asked, hostile names
    included, and no other key of the run."""
    db = Database(database_url)
    try:
        db.migrate()
        run_pk = _writer_run(db, "read")
        ranks = [[f"rank{k}/layer{j // 50:03d}/w{j % 50}" for j in range(2000)] for k in (1, 2)]
        ranks[0] += [f"rank1/{key}" for key in ODD_KEYS] + ODD_KEYS
        with db.write() as conn:
            store = serieswrite.SeriesWriter(conn, run_pk)
            for keys in ranks:
                store.ensure("m", keys)
            store.ensure("s", ranks[0][:3])
            store.flush()
        with db.read() as conn:
            store = serieswrite.SeriesWriter(conn, run_pk)
            wanted = [("m", key) for key in ranks[0]] + [("s", ranks[0][0]), ("s", "none")]
            store.read(wanted)
            known = store._known
        # The kinds and keys asked, combined: other rank's series are not read.
        assert set(wanted) <= set(known) and {key for _, key in known} == {*ranks[0], "none"}
        assert all(known[pair] is not None for pair in wanted[:-1]) and known[("s", "none")] is None
        assert {info["key"] for info in known.values() if info} == set(ranks[0])
        assert all(info["run_pk"] == run_pk for info in known.values() if info)
    finally:
        db.dispose()
