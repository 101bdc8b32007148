"""Server storage and ingest, on SQLite and on a real PostgreSQL.

The server's view of a run must equal what ``open_run`` reads from the same
files, whatever way the bytes arrive: in pieces, twice, interleaved between
the two streams.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import sqlalchemy as sa
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    canon,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    frame_ends,
    frames_bytes,
    log_bytes,
    post_log,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from trackline import _wire_types as wt
from trackline import runlog
from trackline._client import _numbers, _rows
from trackline.records import (
    ConfigUpdate,
    DefineMetric,
    Environment,
    Finish,
    GitInfo,
    Metrics,
    Record,
    RunStart,
    SummaryUpdate,
    SystemSample,
)
from trackline.server import chunks, migrations, schema
from trackline.server.db import Database


def server_view(client: Any, run_id: str) -> Any:
    run = client.get(f"/api/v1/runs/{run_id}").json()
    history = _rows(wt.decode(client.get(f"/api/v1/runs/{run_id}/history").content, wt.Columns))
    system = _rows(
        wt.decode(client.get(f"/api/v1/runs/{run_id}/system").content, wt.Columns), with_step=False
    )
    return canon(
        {
            "name": run["name"],
            "state": run["state"],
            "tags": run["tags"],
            "notes": run["notes"],
            "config": _numbers(run["config"]),
            "summary": _numbers(run["summary"]),
            "history": history,
            "system": system,
            "git": (run["git"] or {}).get("commit"),
            "exit_code": run["exit_code"],
        }
    )


def local_view(run_dir: Path) -> Any:
    local = trackline.open_run(run_dir)
    return canon(
        {
            "name": local.name,
            "state": local.state,
            "tags": local.tags,
            "notes": local.notes,
            "config": local.config,
            "summary": local.summary,
            "history": local.history(),
            "system": local.system(),
            "git": local.git.commit if local.git else None,
            "exit_code": local.exit_code,
        }
    )


def write_run(run_dir: Path, main: list[Record], system: list[Record] = ()) -> None:  # type: ignore[assignment]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "main.tlog").write_bytes(log_bytes(main))
    if system:
        (run_dir / "system.tlog").write_bytes(log_bytes(list(system)))


def start(run_id: str, **kwargs: Any) -> RunStart:
    return RunStart(
        run_id=run_id,
        project=kwargs.pop("project", "p"),
        name=kwargs.pop("name", "n"),
        start_time=kwargs.pop("start_time", 1000.0),
        **kwargs,
    )


def ship_in_pieces(client: Any, run_id: str, path: Path, stream: str, rng: random.Random) -> None:
    """Send a run log as random runs of whole frames, some of them twice."""
    frames = runlog.read_log(path)
    data = path.read_bytes()
    bounds = [0, runlog.HEADER_SIZE] + [f.end for f in frames]
    cuts = sorted(set([0, len(bounds) - 1, *rng.sample(range(len(bounds)), min(5, len(bounds)))]))
    for a, b in itertools.pairwise(cuts):
        lo, hi = bounds[a], bounds[b]
        response = post_log(client, run_id, data[lo:hi], lo, stream)
        assert response.status_code == 200, response.text
        assert response.json()["committed"] == hi
        if rng.random() < 0.5:  # a retry whose answer was lost: acknowledged, not applied
            again = post_log(client, run_id, data[lo:hi], lo, stream)
            assert again.status_code == 200 and again.json()["applied"] == 0


def test_ingest_equals_reader(
    app_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    run = trackline.init(
        project="store",
        config={"lr": 0.5, "layers": [1, 2], "opt": {"b": 0.9}},
        tags=["a", "b"],
        notes="first",
        mode="offline",
    )
    run.define_metric("val/*", summary="max")
    run.define_metric("loss", summary="min")
    for step in range(300):
        run.log(
            {
                "loss": 1 / (step + 1),
                "i": step,
                "mix": step if step % 2 else step + 0.5,
                "text": f"s{step}",
                "val/acc": math.sin(step),
            }
        )
    run.log({"loss": float("nan"), "weird": float("inf")}, step=10)  # merges into step 10
    run.log({"loss": 7.0, "neg": float("-inf")}, step=3)  # a lower step, kept
    run.log({"big": 2**62, "huge": 2**64 - 1})
    run.config.update({"late": True})
    run.summary["best"] = "yes"
    run.name = "renamed"
    run.tags = ["c"]
    run.notes = ""
    run.finish()
    run_dir = run.dir
    system = [
        Environment("3.11", "linux", "h", "u", ["x"], "python", "/", cpu_count=2),
        GitInfo(commit="abc", branch="main"),
        SystemSample(1000.0, {"cpu": 1.5, "mem": 2.0}),
        SystemSample(1001.0, {"cpu": 2.5}),
        Finish(1002.0, "crashed"),  # the run's own finish wins
    ]
    (run_dir / "system.tlog").write_bytes(log_bytes(system))
    rng = random.Random(7)
    ship_in_pieces(app_client, run.id, run_dir / "system.tlog", "system", rng)
    ship_in_pieces(app_client, run.id, run_dir / "main.tlog", "main", rng)
    assert server_view(app_client, run.id) == local_view(run_dir)
    assert server_view(app_client, run.id)["state"] == "finished"
    detail = app_client.get(f"/api/v1/runs/{run.id}").json()
    assert detail["project"] == "admin/store" and detail["last_step"] == 300


@pytest.mark.parametrize("seed", range(3))
def test_streams_interleaved_in_any_order(app_client: Any, tmp_path: Path, seed: int) -> None:
    """Resume, the agent's verdict and the run's finish: any arrival order gives the reader's state."""
    rng = random.Random(seed)
    run_id = f"inter{seed}"
    main: list[Record] = [start(run_id), ConfigUpdate({"a": 1})]
    main += [Metrics(s, 1000.0 + s, {"m": float(s)}) for s in range(20)]
    main += [Finish(1030.0, "failed", exit_code=3, traceback="boom")]
    main += [start(run_id, resumed=True, config={"b": 2}), DefineMetric("m", "mean")]
    main += [Metrics(s, 1040.0 + s, {"m": float(-s)}) for s in range(20, 30)]
    if seed == 1:
        main.append(Finish(1100.0, "finished", exit_code=0))
    system = [SystemSample(1000.0 + i, {"cpu": float(i)}) for i in range(10)]
    system.append(Finish(1200.0, "crashed"))
    run_dir = tmp_path / run_id
    write_run(run_dir, main, system)
    main_path, system_path = run_dir / "main.tlog", run_dir / "system.tlog"
    pieces: list[tuple[str, int, int]] = []
    for stream, path in (("main", main_path), ("system", system_path)):
        bounds = [0, runlog.HEADER_SIZE] + [f.end for f in runlog.read_log(path)]
        cuts = sorted(set([0, len(bounds) - 1, *rng.sample(range(len(bounds)), 4)]))
        pieces += [(stream, bounds[a], bounds[b]) for a, b in itertools.pairwise(cuts)]
    # Interleave the two streams randomly, keeping each stream's own order.
    queues = {
        "main": [p for p in pieces if p[0] == "main"],
        "system": [p for p in pieces if p[0] == "system"],
    }
    for _ in range(len(pieces)):
        stream = rng.choice([s for s in queues if queues[s]])
        _, lo, hi = queues[stream].pop(0)
        path = main_path if stream == "main" else system_path
        response = post_log(app_client, run_id, path.read_bytes()[lo:hi], lo, stream)
        assert response.status_code == 200, response.text
        if not any(queues.values()):
            break
    assert server_view(app_client, run_id) == local_view(run_dir)


def test_offsets_retry_gap_and_overlap(app_client: Any) -> None:
    records: list[Record] = [start("offs")] + [
        Metrics(s, 1.0 + s, {"x": float(s)}) for s in range(10)
    ]
    data = log_bytes(records)
    bounds = frame_ends(data)
    first = post_log(app_client, "offs", data[: bounds[3]])
    assert first.json() == {"committed": bounds[3], "applied": 4, "missing": []}
    gap = post_log(app_client, "offs", data[bounds[5] : bounds[6]], bounds[5])
    assert gap.status_code == 409 and gap.json()["expected"] == bounds[3]
    overlap = post_log(app_client, "offs", data[bounds[1] : bounds[6]], bounds[1])
    assert overlap.status_code == 200 and overlap.json() == {
        "committed": bounds[6],
        "applied": 3,
        "missing": [],
    }
    # A range starting inside a frame: its bytes up to the next whole frame are skipped by
    # the resync rule (as a reader skips a torn middle); what follows applies, once.
    misaligned = post_log(app_client, "offs", data[bounds[5] + 4 : bounds[8]], bounds[5] + 4)
    assert misaligned.status_code == 200 and misaligned.json() == {
        "committed": bounds[8],
        "applied": 2,
        "missing": [],
    }
    behind = post_log(app_client, "offs", data[: bounds[6]])
    assert behind.status_code == 200 and behind.json()["applied"] == 0
    rest = post_log(app_client, "offs", data[bounds[6] :], bounds[6])
    assert rest.json()["committed"] == len(data)
    offsets = app_client.get("/api/v1/runs/offs/streams").json()["offsets"]
    assert offsets == {"main": len(data), "system": 0, "console": 0}
    rows = _rows(wt.decode(app_client.get("/api/v1/runs/offs/history").content, wt.Columns))
    assert [r["x"] for r in rows] == [float(s) for s in range(10)]


def test_small_batches_are_compacted_into_chunks(app_client: Any) -> None:
    """A slowly logged metric becomes a few chunks, not a row per point: each batch is a
    small chunk of its own until the series' tail of them is compacted."""
    records: list[Record] = [start("slow")]
    data = log_bytes(records)
    assert post_log(app_client, "slow", data).status_code == 200
    offset = len(data)
    for step in range(200):
        piece = frames_bytes([Metrics(step, float(step), {"a": float(step), "b": step})])
        assert post_log(app_client, "slow", piece, offset).status_code == 200
        offset += len(piece)
    db: Database = app_client.app.state.ctx.db
    with db.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.chunks)).scalar_one()
    # Per series ("a", "b" and the rows): its one-point chunks compacted 7 at a time, and
    # those compacted again 8 at a time: fewer than 8 of each kind at the end.
    assert 3 * 2 <= count <= 3 * (2 * chunks.TAIL_CHUNKS - 2)
    rows = _rows(wt.decode(app_client.get("/api/v1/runs/slow/history").content, wt.Columns))
    assert [(r["_step"], r["a"], r["b"]) for r in rows] == [(s, float(s), s) for s in range(200)]


def test_big_batches_split_into_bounded_chunks(app_client: Any) -> None:
    n = chunks.CHUNK_MAX + 10
    records: list[Record] = [start("big")] + [
        Metrics(s, float(s), {"v": float(s)}) for s in range(n)
    ]
    assert post_log(app_client, "big", log_bytes(records)).status_code == 200
    series = app_client.post(
        "/api/v1/metrics/series", json={"runs": ["big"], "keys": ["v"], "samples": 10}
    ).json()["series"]
    assert series[0]["total"] == n
    assert series[0]["min"][0] == 0.0 and series[0]["max"][-1] == float(n - 1)


values_strategy = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=2**63, max_value=2**64 - 1),
        st.text(max_size=5),
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=200, deadline=None)
@given(values=values_strategy, data=st.data())
def test_chunks_round_trip(values: list[Any], data: st.DataObject) -> None:
    steps = data.draw(st.lists(st.integers(0, 2**40), min_size=len(values), max_size=len(values)))
    times = [float(i) for i in range(len(values))]
    points = chunks.from_lists(steps, times, values)
    encoded = chunks.encode(points)
    decoded = chunks.decode(
        encoded.n,
        encoded.step_min,
        encoded.dtype,
        encoded.dense,
        encoded.steps,
        encoded.vals,
        encoded.flags,
        encoded.times,
    )
    assert decoded.steps.tolist() == steps
    assert decoded.times.tolist() == times
    got = decoded.python_values()
    mixed_numbers = {type(v) for v in values} == {int, float}
    if mixed_numbers and any(abs(v) > 2**53 for v in values if type(v) is int):
        return  # documented: in a series of ints and floats, ints beyond 2**53 round
    assert canon(got) == canon(values)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_chunks_of_many_columns_equal_one_by_one(data: st.DataObject) -> None:
    """``encode_columns`` (a wide row's keys at once) writes the bytes ``encode`` writes."""
    n = data.draw(st.integers(1, 200))
    width = data.draw(st.integers(1, 6))
    steps = data.draw(
        st.one_of(
            st.just(list(range(7, 7 + n))),
            st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
        )
    )
    floats = st.floats(allow_nan=True, allow_infinity=True)
    matrix = [data.draw(st.lists(floats, min_size=n, max_size=n)) for _ in range(width)]
    times = [1000.0 + i / 3 for i in range(n)]
    step_array, time_array = chunks.i64(steps), chunks.f64(times)
    together = chunks.encode_columns(step_array, time_array, np.array(matrix, dtype=np.float64))
    for column, encoded in zip(matrix, together, strict=True):
        alone = chunks.encode(chunks.from_lists(steps, times, column))
        assert canon(encoded.row()) == canon(alone.row())
        assert encoded.block_times == alone.block_times


def test_zero_bounds_do_not_depend_on_the_sign_order() -> None:
    """A column holding 0.0 and -0.0: ``encode`` and ``encode_columns`` reduce in
    different orders, and both store the zero bounds as 0.0 (hypothesis found them
    disagreeing on the sign)."""
    for column in ([0.0, -0.0], [-0.0, 0.0], [-0.0, -0.0, math.nan]):
        n = len(column)
        steps, times = list(range(n)), [1.0 + i for i in range(n)]
        (together,) = chunks.encode_columns(
            chunks.i64(steps), chunks.f64(times), np.array([column], dtype=np.float64)
        )
        alone = chunks.encode(chunks.from_lists(steps, times, column))
        for encoded in (together, alone):
            assert math.copysign(1.0, encoded.v_min) == math.copysign(1.0, encoded.v_max) == 1.0
        assert together.blocks == alone.blocks and canon(together.row()) == canon(alone.row())


def test_wide_rows_are_stored_exactly(app_client: Any) -> None:
    """Rows of thousands of keys (the columnar path), with rows of other shapes and types
    mixed in, read back exactly, in ranges of any size, retried; each key gets a chunk
    per range (small ones are compacted later)."""
    keys = [f"layer{j // 50:02d}/w{j % 50}" for j in range(300)]
    records: list[Record] = [start("wide")]
    for step in range(700):
        if step % 97 == 5:  # another shape: fewer keys, an int and a text among them
            values: dict[str, Any] = {keys[0]: step, keys[1]: f"t{step}", keys[2]: 0.5}
        else:
            values = {k: step + j / 7 for j, k in enumerate(keys)}
            if step == 40:
                values[keys[3]] = float("nan")
                values[keys[4]] = float("-inf")
        records.append(Metrics(step, 1000.0 + step, values))
    data = log_bytes(records)
    ends = frame_ends(data)
    cuts = [0, ends[150], ends[151], ends[152], len(data)]  # a big range, two small, a big
    for lo, hi in itertools.pairwise(cuts):
        assert post_log(app_client, "wide", data[lo:hi], lo).status_code == 200
        assert post_log(app_client, "wide", data[lo:hi], lo).json()["applied"] == 0
    answer = app_client.get("/api/v1/runs/wide/history", params={"keys": keys[:6]})
    rows = _rows(wt.decode(answer.content, wt.Columns))
    want = [
        {"_step": r.step, **{k: v for k, v in r.values.items() if k in keys[:6]}}
        for r in records[1:]
        if isinstance(r, Metrics)
    ]
    got = [{k: v for k, v in row.items() if k in {"_step", *keys[:6]}} for row in rows]
    assert canon(got) == canon(want)
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["wide"]}).json()["points"]
    assert counts[keys[-1]] == 700 - 8 and counts[keys[0]] == 700
    db: Database = app_client.app.state.ctx.db
    with db.read() as conn:
        per_series = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.chunks.join(schema.series))
            .where(schema.series.c.key == keys[-1])
        ).scalar_one()
    # The first range (148 points of this key) and the two one-row ranges: a tail of three
    # small chunks (some compacted into one if the key's turn came: ``serieswrite._due``);
    # the last range, decoded as bodies of 512 and 36 rows, one chunk (the first body's
    # rows are carried to the range's end).
    assert 2 <= per_series <= 4


def test_wide_rows_with_hostile_key_names_are_stored_and_read(app_client: Any) -> None:
    """A wide row's keys go in as one group; keys that the database cannot hold as they
    are (a NUL, longer than 1,024 characters) are cleaned, and two keys of one row that
    clean to the same name are one series, the later key's value winning at each step,
    as for any step logged twice. Nothing is refused and nothing else is lost."""
    nul, twin = "a\x00", "a\ufffd"  # ``twin`` is what ``nul`` cleans to
    long_a, long_b = "x" * 1100 + "a", "x" * 1100 + "b"  # both cut to the same 1,024
    plain = [f"k{j}" for j in range(40)]
    records: list[Record] = [start("hostile")]
    for step in range(30):
        values = {nul: 1.0 * step, twin: 2.0 * step, long_a: 3.0 * step, long_b: 4.0 * step}
        values.update({k: step + j / 8 for j, k in enumerate(plain)})
        records.append(Metrics(step, 1000.0 + step, values))
    data = log_bytes(records)
    assert post_log(app_client, "hostile", data, 0).status_code == 200
    counts = app_client.post("/api/v1/metrics/keys", json={"runs": ["hostile"]}).json()["points"]
    # Points logged (both of each step of the twins, as for a step logged twice); a read
    # gives one per step.
    assert counts[twin] == counts["x" * 1024] == 60 and counts["k39"] == 30
    assert nul not in counts and long_a not in counts
    answer = app_client.get(
        "/api/v1/runs/hostile/history", params={"keys": [twin, "x" * 1024, "k0", "k39"]}
    )
    rows = _rows(wt.decode(answer.content, wt.Columns))
    assert [r[twin] for r in rows] == [2.0 * s for s in range(30)]
    assert [r["x" * 1024] for r in rows] == [4.0 * s for s in range(30)]
    assert [r["k39"] for r in rows] == [s + 39 / 8 for s in range(30)]


def test_latest_per_step_keeps_the_last_value() -> None:
    points = chunks.from_lists(
        [5, 3, 5, 1, 3], [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]
    )
    latest = chunks.latest_per_step(points, ordered=False)
    assert latest.steps.tolist() == [1, 3, 5]
    assert latest.python_values() == [4.0, 5.0, 3.0]
    assert latest.times.tolist() == [4.0, 5.0, 3.0]
    assert np.array_equal(chunks.latest_per_step(points, ordered=True).steps, points.steps)


def test_migrations_create_upgrade_and_refuse_newer(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url)
    try:
        assert db.migrate() == schema.SCHEMA_VERSION
        assert db.migrate() == schema.SCHEMA_VERSION  # again: nothing to do
        added: list[int] = []
        nxt = schema.SCHEMA_VERSION + 1

        def to_next(conn: sa.Connection) -> None:
            conn.execute(sa.text("CREATE TABLE extra_next (id INTEGER PRIMARY KEY)"))
            added.append(nxt)

        monkeypatch.setattr(migrations, "MIGRATIONS", [(nxt, to_next)])
        with db.write() as conn:
            assert migrations.upgrade(conn, target=nxt) == nxt
        assert added == [nxt]
        with db.read() as conn:
            assert migrations.current_version(conn) == nxt
            assert sa.inspect(conn).has_table("extra_next")
        with pytest.raises(migrations.SchemaTooNewError), db.write() as conn:
            migrations.upgrade(conn, target=nxt - 1)
    finally:
        db.dispose()


def test_version_1_database_gets_the_artifact_tables(database_url: str) -> None:
    db = Database(database_url)
    try:
        added = {t.name for tables in schema.ADDED_IN.values() for t in tables}
        with db.write() as conn:  # a database as a version-1 server left it
            version_1 = [t for t in schema.metadata.sorted_tables if t.name not in added]
            schema.metadata.create_all(conn, tables=version_1)
            conn.execute(schema.schema_version.insert().values(id=1, version=1, applied_at=0.0))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            assert added <= set(sa.inspect(conn).get_table_names())
    finally:
        db.dispose()


def blocks_storage(conn: sa.Connection) -> str:
    return str(
        conn.execute(
            sa.text(
                "SELECT attstorage FROM pg_attribute "
                "WHERE attrelid = 'chunks'::regclass AND attname = 'blocks'"
            )
        ).scalar_one()
    )


def test_postgres_stores_block_summaries_uncompressed(database_url: str) -> None:
    """Version 3: fresh databases and upgraded ones keep ``chunks.blocks`` out of pglz."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL storage setting")
    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:
            assert blocks_storage(conn) == "e"
            # As a version-2 server left it: compressed (PostgreSQL's default for bytea).
            conn.execute(sa.text("ALTER TABLE chunks ALTER COLUMN blocks SET STORAGE EXTENDED"))
            conn.execute(sa.update(schema.schema_version).values(version=2))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            assert blocks_storage(conn) == "e"
    finally:
        db.dispose()


def test_nul_characters_and_big_numbers_are_stored(app_client: Any) -> None:
    """PostgreSQL refuses NUL in text: names and keys are cleaned, values kept exactly."""
    records: list[Record] = [
        start("nul", name="a\x00b", notes="n\x00"),
        Metrics(0, 1.0, {"k\x00ey": 1.0, "big": 2**63 - 1}),
        SummaryUpdate({"s\x00": "v\x00"}),
    ]
    assert post_log(app_client, "nul", log_bytes(records)).status_code == 200
    run = app_client.get("/api/v1/runs/nul").json()
    assert run["name"] == "a\ufffdb"
    assert run["summary"]["s\x00"] == "v\x00"  # msgpack blobs keep everything
    rows = _rows(wt.decode(app_client.get("/api/v1/runs/nul/history").content, wt.Columns))
    assert rows[0]["big"] == 2**63 - 1 and rows[0]["k\ufffdey"] == 1.0


def test_summary_state_survives_batches(app_client: Any) -> None:
    """define_metric rules and running aggregates carry over from one batch to the next."""
    records: list[Record] = [start("agg"), DefineMetric("m", "mean"), DefineMetric("x", "first")]
    records += [Metrics(s, float(s), {"m": float(s), "x": s}) for s in range(10)]
    data = log_bytes(records)
    bounds = [runlog.HEADER_SIZE, *frame_ends(data)]
    previous = 0
    for cut in bounds[1:]:
        assert post_log(app_client, "agg", data[previous:cut], previous).status_code == 200
        previous = cut
    summary = app_client.get("/api/v1/runs/agg").json()["summary"]
    assert summary == {"m": 4.5, "x": 0}
    assert msgspec.json.decode(msgspec.json.encode(summary)) == summary


def test_series_of_many_runs_are_bucketed_each_on_its_own(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One query over runs x keys, answered from block summaries in one pass, equals the
    series queried one by one and the points themselves; a series with a text chunk
    between (no block summary) is answered from its points."""
    from trackline.server import series

    monkeypatch.setattr(series, "_IDS_PER_QUERY", 2)  # blobs fetched in slices (SQLite)
    rng = np.random.default_rng(7)
    values: dict[tuple[str, str], np.ndarray] = {}
    for number, length in enumerate([700, 3_000, 5_003]):  # 3,000: a chunk of its own
        run_id = f"many{number}"
        a = rng.normal(size=length)
        b = rng.normal(size=length)
        b[::97] = float("nan")
        b[length // 3] = float("-inf")
        values[run_id, "a"], values[run_id, "b"] = a, b
        records: list[Record] = [RunStart(run_id=run_id, project="q", name="n", start_time=1.0)]
        records += [
            Metrics(s, 1.0 + s, {"a": float(a[s]), "b": float(b[s]), "mixed": float(s)})
            for s in range(length)
        ]
        data = log_bytes(records)
        assert post_log(app_client, run_id, data).status_code == 200
        if number == 1:  # a later chunk of "mixed" holds text: its series has no summary
            tail = frames_bytes([Metrics(length, 9.0, {"mixed": "text"})])
            assert post_log(app_client, run_id, tail, len(data)).status_code == 200
    ids = ["many0", "many1", "many2"]
    body = {"runs": ids, "keys": ["a", "b", "mixed"], "samples": 10}
    together = app_client.post("/api/v1/metrics/series", json=body).json()["series"]
    assert len(together) == 9
    for entry in together:
        alone = app_client.post(
            "/api/v1/metrics/series",
            json={**body, "runs": [entry["run"]], "keys": [entry["key"]]},
        ).json()["series"]
        assert alone == [entry]
        if entry["key"] == "mixed":
            assert entry["kind"] == ("text" if entry["run"] == "many1" else "number")
            continue
        points = values[entry["run"], entry["key"]]
        assert entry["total"] == sum(entry["count"]) == len(points)
        start = 0
        for i, count in enumerate(entry["count"]):
            part = points[start : start + count]
            assert entry["x"][i] == start
            assert float(entry["min"][i]) == float(np.nanmin(part))
            assert float(entry["max"][i]) == float(np.nanmax(part))
            start += count


def test_block_cache_is_bounded_and_checks_the_version() -> None:
    from trackline.server.blockcache import BlockCache

    cache = BlockCache(max_bytes=100)
    cache.put(1, (10, 9), b"a" * 40)
    cache.put(2, (10, 9), b"b" * 40)
    assert cache.get(1, (10, 9)) == b"a" * 40  # 1 is now the most recently used
    assert cache.get(1, (11, 12)) is None  # the chunk grew: never a stale answer
    cache.put(3, (5, 4), b"c" * 40)  # over 100 bytes: 2, the least recently used, goes
    assert cache.get(2, (10, 9)) is None and cache.get(3, (5, 4)) == b"c" * 40
    assert cache.size == 80
    cache.put(4, (1, 0), b"d" * 101)  # bigger than the whole cache: not kept
    assert cache.get(4, (1, 0)) is None and cache.size == 80
    assert BlockCache(max_bytes=0).get(1, (1, 1)) is None


def test_block_cache_budget_by_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from trackline.server.blockcache import DEFAULT_MB, BlockCache

    monkeypatch.delenv("TRACKLINE_BLOCK_CACHE_MB", raising=False)
    assert BlockCache.for_database(is_sqlite=True).max_bytes == DEFAULT_MB * 2**20
    assert BlockCache.for_database(is_sqlite=False).max_bytes == DEFAULT_MB * 2**20
    monkeypatch.setenv("TRACKLINE_BLOCK_CACHE_MB", "1.5")
    assert BlockCache.for_database(is_sqlite=True).max_bytes == int(1.5 * 2**20)


def test_chart_queries_reuse_blocks_until_the_chunk_grows(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated query reads no blob again; points merged into the last chunk (a live run)
    are in the next answer."""
    from trackline.server import series
    from trackline.server.blockcache import BlockCache

    fetched: list[int] = []
    real = series._block_blobs

    def counting(conn: Any, chunk_ids: list[int]) -> Any:
        fetched.extend(chunk_ids)
        return real(conn, chunk_ids)

    monkeypatch.setattr(series, "_block_blobs", counting)
    app_client.app.state.ctx.blocks = BlockCache(64 * 2**20)  # SQLite's default is none
    start = RunStart(run_id="live", project="q", name="n", start_time=1.0)
    data = log_bytes([start, *[Metrics(s, 1.0 + s, {"v": float(s)}) for s in range(1000)]])
    assert post_log(app_client, "live", data).status_code == 200
    body = {"runs": ["live"], "keys": ["v"], "samples": 4}

    def query() -> dict[str, Any]:
        [entry] = app_client.post("/api/v1/metrics/series", json=body).json()["series"]
        return dict(entry)

    first = query()
    assert first["total"] == 1000 and first["max"][-1] == 999.0 and len(fetched) == 1
    assert query() == first and len(fetched) == 1  # from the cache
    more = frames_bytes([Metrics(s, 1.0 + s, {"v": float(s)}) for s in range(1000, 1500)])
    assert post_log(app_client, "live", more, len(data)).status_code == 200
    grown = query()
    assert grown["total"] == 1500 and grown["max"][-1] == 1499.0 and len(fetched) == 2
    assert app_client.app.state.ctx.blocks.size > 0


def test_a_name_taken_by_another_server_meanwhile_is_taken_not_an_error(database_url: str) -> None:
    """Two servers on one database create the same team at once: the one that commits
    second is told the name is taken (409), not a unique-index error (500)."""
    import threading

    from trackline.server import auth

    first, second = Database(database_url), Database(database_url)
    first.migrate()
    outcome: list[str] = []

    def other_server() -> None:
        try:
            with second.write() as conn:
                auth.create_named(conn, "race", "team")
            outcome.append("created")
        except auth.NameTaken:
            outcome.append("taken")

    try:
        with first.write() as conn:
            auth.create_named(conn, "race", "team")
            racer = threading.Thread(target=other_server)
            racer.start()  # checks and inserts while this transaction holds the name
            racer.join(0.5)
        racer.join(30)
        assert outcome == ["taken"]
        with first.read() as conn:
            assert auth.entity_by_name(conn, "race") is not None
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.parametrize("start_from", ["fresh", "version 1"])
def test_several_servers_starting_at_once_migrate_once(
    database_url: str, tmp_path: Path, start_from: str
) -> None:
    """Three servers started together on one database: one creates or upgrades the schema
    (an advisory lock on PostgreSQL, the write lock on SQLite), the others wait and find it
    done; all come up and agree."""
    from _server import ServerProcess

    added = {t.name for tables in schema.ADDED_IN.values() for t in tables}
    if start_from == "version 1":
        db = Database(database_url)
        try:
            with db.write() as conn:
                version_1 = [t for t in schema.metadata.sorted_tables if t.name not in added]
                schema.metadata.create_all(conn, tables=version_1)
                conn.execute(schema.schema_version.insert().values(id=1, version=1, applied_at=0.0))
        finally:
            db.dispose()
    servers = [
        ServerProcess(tmp_path / f"s{i}", database_url=database_url).start(wait=False)
        for i in range(3)
    ]
    try:
        for server in servers:
            server.wait_ready(120)
        db = Database(database_url)
        try:
            with db.read() as conn:
                assert migrations.current_version(conn) == schema.SCHEMA_VERSION
                assert added <= set(sa.inspect(conn).get_table_names())
                admins = conn.execute(sa.select(sa.func.count()).select_from(schema.entities))
                assert admins.scalar_one() == 1  # the first admin, created once
        finally:
            db.dispose()
        for server in servers:
            with server.client() as client:
                assert client.get("/projects").status_code == 200
    finally:
        for server in servers:
            server.stop()
