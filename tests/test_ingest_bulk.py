"""The batch writes of ingest (``server/chunkwrite.py``), on SQLite and on PostgreSQL.

A batch's chunks, rewritten chunks, block times and series counters go to the
database in one statement per table (COPY and ``unnest`` on PostgreSQL); wide rows
merged into stored chunks are encoded as one matrix. These tests ship wide rows in
ranges small enough to be merged, with odd values and odd key names, a key first
seen mid-run and a rewind, and compare what the server answers with the records.
"""

from __future__ import annotations

import itertools
import math
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
from trackline.server import auth, chunks, ingest, schema, series
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


def test_wide_rows_merged_in_small_ranges_read_back_exactly(app_client: Any) -> None:
    """Ranges of a few rows of many keys: every range after the first merges into each
    key's stored last chunk (the matrix path); a key first seen mid-run starts late;
    the stored chunks are those ``chunks.encode`` writes for the same points."""
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
    cuts = [0, ends[10], ends[11], ends[24], ends[30], ends[45], len(data)]
    ship(app_client, "bulk", data, cuts)

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
        stored = conn.execute(
            sa.select(schema.series.c.key, schema.chunks)
            .join(schema.chunks, schema.chunks.c.series_id == schema.series.c.id)
            .where(schema.series.c.key.in_([keys[5], ODD_KEYS[0], late]))
            .order_by(schema.series.c.key, schema.chunks.c.seq)
        ).all()
        infos = {
            r.key: r
            for r in conn.execute(sa.select(schema.series).where(schema.series.c.key.in_(keys)))
        }
    assert all(info.chunks == 1 and info.last_n == 60 for info in infos.values())
    by_key = {row.key: row for row in stored}
    assert len(stored) == 3  # one chunk each: every small range merged into it
    for key, first in ((keys[5], 0), (ODD_KEYS[0], 0), (late, 25)):
        j = [*keys, late].index(key)
        steps = np.arange(first, 60, dtype=np.int64)
        points = chunks.Points(
            steps,
            1000.0 + steps.astype(np.float64),
            np.array([float(s) if key == late else value(s, j) for s in steps]),
            None,
            None,
        )
        expected = chunks.encode(points)
        row = by_key[key]
        assert bytes(row.vals) == expected.vals and bytes(row.blocks) == expected.blocks
        assert bytes(row.times) == expected.times and row.n == expected.n
    with db.read() as conn:
        bounds = conn.execute(
            sa.select(schema.block_times.c.times)
            .join(schema.series, schema.series.c.id == schema.block_times.c.series_id)
            .where(schema.series.c.key == keys[5])
        ).scalars()
        assert [bytes(b) for b in bounds] == [
            chunks.block_time_bounds(1000.0 + np.arange(60, dtype=np.float64)).tobytes()
        ]


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
    assert [tuple(e) for e in epochs] == [(0, 20), (1, 6)]


def test_series_writer_with_thousands_of_keys_in_one_flush(database_url: str) -> None:
    """``SeriesWriter`` directly: 5,000 new series in one flush, then a flush that merges
    into all of them and one that appends to a few; the counters stored are right."""
    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:
            admin = auth.create_entity(conn, "admin", "user", is_admin=True)
            user = auth.User(admin, "admin", True, frozenset(), frozenset())
            run_pk = ingest.get_or_create_run(conn, "many", user).id
        keys = [f"k{j}" for j in range(5000)] + ODD_KEYS
        index = {key: j for j, key in enumerate(keys)}
        for start, n, some in ((0, 30, keys), (30, 30, keys), (60, 5, keys[::1000])):
            steps = np.arange(start, start + n, dtype=np.int64)
            with db.write() as conn:
                store = series.SeriesWriter(conn, run_pk)
                store.ensure("m", some)
                for key in some:
                    values = np.full(n, float(index[key]))
                    store.append("m", key, chunks.Points(steps, steps * 1.0, values, None, None))
                store.flush()
        with db.read() as conn:
            rows = {
                r.key: r
                for r in conn.execute(
                    sa.select(schema.series).where(schema.series.c.run_pk == run_pk)
                )
            }
        assert set(rows) == set(keys)
        for key in keys:
            extra = 5 if key in keys[::1000] else 0
            row = rows[key]
            assert (row.count, row.chunks, row.step_min, row.step_max, row.ordered) == (
                60 + extra,
                1,
                0,
                59 + extra,
                True,
            ), key
        with db.read() as conn:
            infos = series.list_series(conn, [run_pk], ("m",), [keys[1000], ODD_KEYS[1]])
            points = series.read_points(conn, infos)
        by_key = {i.key: points[i.id] for i in infos}
        assert by_key[keys[1000]].values.tolist() == [1000.0] * 65  # type: ignore[union-attr]
        assert len(by_key[ODD_KEYS[1]]) == 60
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
