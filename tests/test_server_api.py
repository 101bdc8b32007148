"""The query API: filters, sort, paging, groups, series, exports, auth, files.

In-process (``TestClient``) on SQLite: the query semantics do not depend on the
database (the storage tests run both).
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from _server import ADMIN_KEY, fixture_app_client, log_bytes, post_log  # noqa: F401
from fastapi.testclient import TestClient
from trackline import _series_binary as series_binary
from trackline._client import _rows
from trackline._wire_types import Columns
from trackline.records import (
    ConfigUpdate,
    DefineMetric,
    FileSaved,
    Finish,
    GitInfo,
    Metrics,
    Record,
    RunStart,
    SummaryUpdate,
)
from trackline.server import chunks, series_wire
from trackline.server.app import create_app
from trackline.server.config import ServerConfig


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'trackline.db'}"


def ship(client: TestClient, records: list[Record], stream: str = "main") -> None:
    run_id = next(r.run_id for r in records if type(r) is RunStart) if stream == "main" else None
    assert run_id is not None
    response = post_log(client, run_id, log_bytes(records), stream=stream)
    assert response.status_code == 200, response.text


def make_run(
    client: TestClient,
    run_id: str,
    project: str = "q",
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    finish: str | None = "finished",
    **kwargs: Any,
) -> None:
    records: list[Record] = [
        RunStart(
            run_id=run_id,
            project=project,
            name=kwargs.pop("name", run_id),
            start_time=time.time(),
            tags=tags or [],
            config=config or {},
            **kwargs,
        )
    ]
    if summary:
        records.append(SummaryUpdate(summary))
    if finish:
        records.append(Finish(time.time(), finish))
    ship(client, records)


def ids(result: dict[str, Any]) -> list[str]:
    return [r["id"] for r in result["runs"]]


@pytest.fixture
def populated(app_client: TestClient) -> TestClient:
    make_run(
        app_client,
        "r1",
        config={"lr": 0.1, "opt": {"name": "adam"}},
        summary={"acc": 0.9},
        tags=["base"],
        notes="resnet baseline",
        group="g1",
    )
    make_run(
        app_client,
        "r2",
        config={"lr": 0.01, "opt": {"name": "sgd"}},
        summary={"acc": 0.95},
        tags=["base", "long"],
        group="g1",
        finish="failed",
    )
    make_run(
        app_client,
        "r3",
        config={"lr": 0.001},
        summary={"acc": float("nan")},
        tags=["long"],
        group="g2",
        finish=None,
    )
    make_run(
        app_client, "r4", config={"lr": 0.1, "opt.name": "flat"}, group="g2", name="Resnet-big"
    )
    return app_client


def query(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/projects/admin/q/runs/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_filters(populated: TestClient) -> None:
    c = populated
    assert sorted(ids(query(c, filters={"state": "finished"}))) == ["r1", "r4"]
    assert sorted(ids(query(c, filters={"state": ["failed", "running"]}))) == ["r2", "r3"]
    assert sorted(ids(query(c, filters={"tags": ["base", "long"]}))) == ["r2"]
    assert sorted(ids(query(c, filters={"tags": "long"}))) == ["r2", "r3"]
    assert sorted(ids(query(c, filters={"search": "RESNET"}))) == ["r1", "r4"]
    assert sorted(ids(query(c, filters={"config.lr": 0.1}))) == ["r1", "r4"]
    assert sorted(ids(query(c, filters={"config.lr": {"lt": 0.05, "gte": 0.01}}))) == ["r2"]
    assert sorted(ids(query(c, filters={"config.opt.name": "sgd"}))) == ["r2"]
    assert sorted(ids(query(c, filters={"config.opt.name": "flat"}))) == ["r4"]  # flat key first
    assert sorted(ids(query(c, filters={"summary.acc": {"gt": 0.91}}))) == ["r2"]
    assert sorted(ids(query(c, filters={"summary.acc": {"exists": False}}))) == ["r4"]
    assert sorted(ids(query(c, filters={"config.lr": {"in": [0.01, 0.001]}}))) == ["r2", "r3"]
    assert sorted(ids(query(c, filters={"summary.acc": "NaN"}))) == ["r3"]
    assert sorted(ids(query(c, filters={"group": "g2", "state": "finished"}))) == ["r4"]
    listed = c.get(
        "/api/v1/projects/admin/q/runs",
        params=[("where", "config.lr>=0.01"), ("tag", "base"), ("state", "finished,failed")],
    ).json()
    assert sorted(ids(listed)) == ["r1", "r2"]
    bad = c.post("/api/v1/projects/admin/q/runs/query", json={"filters": {"nope": 1}})
    assert bad.status_code == 400 and "unknown field" in bad.json()["detail"]
    bad_where = c.get("/api/v1/projects/admin/q/runs", params={"where": "config.lr"})
    assert bad_where.status_code == 400


def test_sort_paging_and_groups(populated: TestClient) -> None:
    c = populated
    assert ids(query(c, sort=["-summary.acc"])) == ["r2", "r1", "r3", "r4"]  # NaN, missing last
    assert ids(query(c, sort=["config.lr", "-created_at"])) == ["r3", "r2", "r4", "r1"]
    page = query(c, sort=["created_at"], limit=2, offset=1)
    assert page["total"] == 4 and ids(page) == ["r2", "r3"]
    grouped = query(c, group_by="group", sort=["created_at"])
    assert [(g["value"], g["runs"]) for g in grouped["groups"]] == [
        ("g1", ["r1", "r2"]),
        ("g2", ["r3", "r4"]),
    ]
    by_lr = query(c, group_by="config.lr", sort=["created_at"])
    assert [(g["value"], g["count"]) for g in by_lr["groups"]] == [(0.1, 2), (0.01, 1), (0.001, 1)]


def test_run_detail_patch_and_projects(populated: TestClient) -> None:
    c = populated
    detail = c.get("/api/v1/runs/r1").json()
    assert detail["config"] == {"lr": 0.1, "opt": {"name": "adam"}}
    assert detail["summary"] == {"acc": 0.9} and detail["tags"] == ["base"]
    patched = c.patch(
        "/api/v1/runs/r1", json={"name": "new", "tags": ["x", "x", "y"], "notes": "n"}
    )
    assert patched.status_code == 200
    again = c.get("/api/v1/runs/r1").json()
    assert (again["name"], again["tags"], again["notes"]) == ("new", ["x", "y"], "n")
    projects = c.get("/api/v1/projects").json()["projects"]
    assert [(p["path"], p["runs"], p["public"]) for p in projects] == [("admin/q", 4, False)]
    assert c.get("/api/v1/runs/r3").json()["state"] == "running"


def test_heartbeat_timeout_reports_crashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run not heard of for longer than the timeout reads as crashed, and as running again
    at its next heartbeat. The clock is moved, not waited on: no verdict depends on how
    fast this machine answers."""
    later = 0.0
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + later)
    config = ServerConfig.build(tmp_path / "srv", admin_key=ADMIN_KEY, heartbeat_timeout=60)
    app = create_app(config, announce=False)
    with TestClient(app, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        ship(client, [RunStart(run_id="hb", project="p", name="n", start_time=time.time())])
        assert client.post("/api/v1/runs/hb/heartbeat").status_code == 200
        assert client.get("/api/v1/runs/hb").json()["state"] == "running"
        later = 61.0  # past the timeout without a heartbeat
        assert client.get("/api/v1/runs/hb").json()["state"] == "crashed"
        found = client.get("/api/v1/projects/admin/p/runs", params={"state": "crashed"}).json()
        assert ids(found) == ["hb"]
        assert client.post("/api/v1/runs/hb/heartbeat").status_code == 200
        assert client.get("/api/v1/runs/hb").json()["state"] == "running"  # alive after all
        found = client.get("/api/v1/projects/admin/p/runs", params={"state": "running"}).json()
        assert ids(found) == ["hb"]
    app.state.ctx.db.dispose()


def brute_force(steps: np.ndarray, values: np.ndarray, samples: int) -> dict[str, list[Any]]:
    lo, hi = float(steps[0]), float(steps[-1])
    width = (hi - lo) / samples
    bucket = np.minimum(((steps - lo) / width).astype(int), samples - 1)
    out: dict[str, list[Any]] = {"x": [], "min": [], "max": [], "count": []}
    for b in np.unique(bucket):
        mask = bucket == b
        out["x"].append(int(steps[mask][0]))
        out["min"].append(float(np.nanmin(values[mask])))
        out["max"].append(float(np.nanmax(values[mask])))
        out["count"].append(int(mask.sum()))
    return out


def _history(answer: Any) -> list[dict[str, Any]]:
    """A history answer as ``trackline.Api`` reads it: decoded as ``Columns``, as rows."""
    return _rows(msgspec.json.decode(answer.content, type=Columns))


def binary_equals_json(client: TestClient, body: dict[str, Any]) -> None:
    """The binary answer (what the dashboard asks for) holds what the JSON one does."""
    as_json = client.post("/api/v1/metrics/series", json=body).json()["series"]
    answer = client.post(
        "/api/v1/metrics/series", json=body, headers={"accept": series_wire.MEDIA_TYPE}
    )
    assert answer.headers["content-type"] == series_wire.MEDIA_TYPE
    as_binary = series_binary.decode(answer.content)
    assert len(as_binary) == len(as_json) > 0
    for got, expected in zip(as_binary, as_json, strict=True):
        if expected["kind"] != "number":
            assert got == expected
            continue
        assert {k: v for k, v in got.items() if k not in series_wire.ARRAYS} == {
            k: v for k, v in expected.items() if k not in series_wire.ARRAYS
        }
        for name in series_wire.ARRAYS:
            wanted = np.array([float(v) for v in expected[name]])
            assert np.array_equal(np.array(got[name]), wanted, equal_nan=True), name


def test_series_downsampling_keeps_min_and_max(app_client: TestClient) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    values = rng.normal(size=n)
    values[1234] = 50.0  # a spike must survive
    records: list[Record] = [RunStart(run_id="ds", project="q", name="n", start_time=1000.0)]
    records += [
        Metrics(s, 1000.0 + s / 10, {"v": float(values[s]), "e": s // 100}) for s in range(n)
    ]
    ship(app_client, records)
    body = {"runs": ["ds"], "keys": ["v"], "samples": 100}
    series = app_client.post("/api/v1/metrics/series", json=body).json()["series"][0]
    expected = brute_force(np.arange(n), values, 100)
    assert series["sampled"] and series["total"] == n
    for name in ("x", "count"):
        assert series[name] == expected[name]
    assert np.allclose(series["min"], expected["min"]) and np.allclose(
        series["max"], expected["max"]
    )
    assert max(series["max"]) == 50.0
    zoom = app_client.post("/api/v1/metrics/series", json={**body, "range": [1000, 1050]}).json()[
        "series"
    ][0]
    assert zoom["sampled"] is False and zoom["x"] == list(range(1000, 1051))
    assert zoom["y"] == [float(v) for v in values[1000:1051]]
    relative = app_client.post("/api/v1/metrics/series", json={**body, "x": "relative"}).json()
    assert relative["series"][0]["x"][0] == 0.0 and relative["series"][0]["max"][-1] > 0
    by_epoch = app_client.post(
        "/api/v1/metrics/series", json={**body, "x": "e", "samples": 30}
    ).json()["series"][0]
    assert by_epoch["x"] == [float(e) for e in range(30)]
    assert by_epoch["count"] == [100] * 30
    for variant in ({}, {"range": [1000, 1050]}, {"x": "relative"}, {"x": "e", "samples": 30}):
        binary_equals_json(app_client, {**body, **variant, "keys": ["v", "e"]})
    keys = app_client.post("/api/v1/metrics/keys", json={"runs": ["ds"]}).json()
    assert keys["keys"] == ["e", "v"] and keys["points"] == {"e": n, "v": n}


def test_series_from_block_summaries_equal_the_points(app_client: TestClient) -> None:
    """Long series are downsampled from per-block summaries: still exact min/max/mean."""
    n = chunks.BLOCK * 40 + 17
    values = np.sin(np.arange(n) / 7.0)
    values[n // 2] = float("nan")
    values[100] = float("inf")
    records: list[Record] = [RunStart(run_id="blk", project="q", name="n", start_time=1000.0)]
    records += [Metrics(s, 1000.0 + s, {"v": float(values[s])}) for s in range(n)]
    ship(app_client, records)
    series = app_client.post(
        "/api/v1/metrics/series", json={"runs": ["blk"], "keys": ["v"], "samples": 10}
    ).json()["series"][0]
    counts = series["count"]
    assert sum(counts) == n and len(counts) <= 10
    start = 0
    for i, count in enumerate(counts):
        part = values[start : start + count]
        assert series["x"][i] == start
        assert series["min"][i] == float(np.nanmin(part))
        assert series["max"][i] == ("Infinity" if np.isinf(part).any() else float(np.nanmax(part)))
        mean = series["y"][i]
        expected = float(np.nanmean(part))
        assert mean == ("Infinity" if math.isinf(expected) else pytest.approx(expected))
        start += count
    ship(
        app_client,
        [
            RunStart(run_id="txt", project="q", name="t", start_time=1.0),
            *(Metrics(s, 1.0 + s, {"phase": f"p{s}", "v": float(s)}) for s in range(30)),
        ],
    )
    binary_equals_json(app_client, {"runs": ["blk", "txt"], "keys": ["v", "phase"], "samples": 10})


def by_block_over_time(
    times: np.ndarray, values: np.ndarray, samples: int, origin: float = 0.0
) -> dict[str, list[float]]:
    """Equal-width buckets of time holding whole 64-point blocks, each bucket from its first
    block's first point: what the server computes from block time bounds, from the points."""
    firsts = times[:: chunks.BLOCK]
    lo, hi = float(times[0]), float(times[-1])
    bucket = np.minimum(((firsts - lo) / ((hi - lo) / samples)).astype(int), samples - 1)
    out: dict[str, list[float]] = {"x": [], "y": [], "min": [], "max": [], "count": []}
    for b in np.unique(bucket):
        blocks = np.flatnonzero(bucket == b)
        part = slice(blocks[0] * chunks.BLOCK, (blocks[-1] + 1) * chunks.BLOCK)
        out["x"].append(float(times[part][0]) - origin)
        out["y"].append(float(np.nanmean(values[part])))
        out["min"].append(float(np.nanmin(values[part])))
        out["max"].append(float(np.nanmax(values[part])))
        out["count"].append(len(values[part]))
    return out


def test_series_over_time_from_block_time_bounds(app_client: TestClient) -> None:
    """Long series over wall time or time since the start come from the blocks' time
    bounds, no point read; a series whose clock went back is bucketed from its points, and
    says the same."""
    n = chunks.BLOCK * 50 + 9
    rng = np.random.default_rng(3)
    values = rng.normal(size=n)
    # Irregular but increasing wall times: a pause in the middle, as a real run has.
    times = 5000.0 + np.cumsum(rng.uniform(0.1, 0.3, n))
    times[n // 2 :] += 120.0
    back = times.copy()
    back[n // 3] = back[0]  # a clock set back once
    for run_id, clock in (("tb", times), ("tback", back)):
        records: list[Record] = [
            RunStart(run_id=run_id, project="q", name=run_id, start_time=4990.0)
        ]
        records += [Metrics(s, float(clock[s]), {"v": float(values[s])}) for s in range(n)]
        ship(app_client, records)
    ask = {"runs": ["tb"], "keys": ["v"], "samples": 20}
    for axis, origin in (("time", 0.0), ("relative", 4990.0)):
        (found,) = app_client.post("/api/v1/metrics/series", json={**ask, "x": axis}).json()[
            "series"
        ]
        expected = by_block_over_time(times, values, 20, origin)
        assert found["sampled"] and found["total"] == n and found["x_axis"] == axis
        assert found["count"] == expected["count"] and sum(found["count"]) == n
        assert all(c % chunks.BLOCK == 0 for c in found["count"][:-1])  # whole blocks
        for name in ("x", "y", "min", "max"):
            assert found[name] == pytest.approx(expected[name]), name
        binary_equals_json(app_client, {**ask, "x": axis, "runs": ["tb", "tback"]})
    # The clock that went back: bucketed from the points (a bucket per 1/20 of the time).
    (points,) = app_client.post(
        "/api/v1/metrics/series", json={**ask, "runs": ["tback"], "x": "time"}
    ).json()["series"]
    assert sum(points["count"]) == n and points["x"] == sorted(points["x"])
    assert points["x"][0] == pytest.approx(float(back.min()))
    # Chunks without block times (a series' tail, an older server's) take them from their
    # points: the same answer.
    from trackline.server.schema import block_times

    timed = app_client.post("/api/v1/metrics/series", json={**ask, "x": "time"}).json()
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.write() as conn:
        conn.execute(block_times.delete())
    ctx.sampled.clear()  # the buckets made from the stored times
    untimed = app_client.post("/api/v1/metrics/series", json={**ask, "x": "time"}).json()
    assert untimed == timed and untimed["series"][0]["sampled"]


def test_history_samples_keys_and_exports(app_client: TestClient) -> None:
    records: list[Record] = [RunStart(run_id="ex", project="q", name="n", start_time=1000.0)]
    records += [Metrics(s, 1000.0 + s, {"a": float(s), "b": s, "t": f"s{s}"}) for s in range(50)]
    records.append(Metrics(50, 1050.0, {"a": float("nan")}))
    ship(app_client, records)
    full = _history(app_client.get("/api/v1/runs/ex/history"))
    assert len(full) == 51 and full[0] == {"_step": 0, "_time": 1000.0, "a": 0.0, "b": 0, "t": "s0"}
    assert math.isnan(full[-1]["a"]) and "b" not in full[-1]
    only_b = _history(app_client.get("/api/v1/runs/ex/history", params={"keys": "b"}))
    assert [r["b"] for r in only_b] == list(range(50))
    sampled = _history(app_client.get("/api/v1/runs/ex/history", params={"samples": 5}))
    assert [r["_step"] for r in sampled] == [0, 12, 25, 38, 50]
    csv_text = app_client.get("/api/v1/runs/ex/history", params={"format": "csv"}).text
    lines = csv_text.splitlines()
    assert lines[0] == "_step,_time,a,b,t" and lines[1] == "0,1000.0,0.0,0,s0"
    assert lines[-1] == "50,1050.0,nan,,"
    pd = pytest.importorskip("pandas")
    parquet = app_client.get("/api/v1/runs/ex/history", params={"format": "parquet"}).content
    frame = pd.read_parquet(io.BytesIO(parquet))
    assert list(frame.columns) == ["_step", "_time", "a", "b", "t"]
    assert (
        frame["b"].iloc[3] == 3 and frame["t"].iloc[49] == "s49" and math.isnan(frame["a"].iloc[50])
    )


def test_history_of_chosen_keys_sampled(app_client: TestClient) -> None:
    """With ``keys``, rows are the union of those keys' steps; ``_time`` is the latest of
    them; sampled rows keep each value's type (int, float, text)."""
    records: list[Record] = [RunStart(run_id="ck", project="q", name="n", start_time=0.0)]
    records += [Metrics(s, 10.0 + s, {"a": s, "b": s / 2, "t": f"s{s}"}) for s in range(40)]
    records += [Metrics(s, 100.0 + s, {"odd": float(s)}) for s in range(1, 60, 2)]
    ship(app_client, records)

    def rows(**params: Any) -> list[dict[str, Any]]:
        return _history(app_client.get("/api/v1/runs/ck/history", params=params))

    together = rows(keys=["a", "b", "t"], samples=4)  # the same steps for all three
    assert together == [
        {"_step": s, "_time": 10.0 + s, "a": s, "b": s / 2, "t": f"s{s}"} for s in (0, 13, 26, 39)
    ]
    assert type(together[1]["a"]) is int and type(together[1]["b"]) is float
    apart = rows(keys=["a", "odd"])  # steps 0..39 and 1, 3, ..., 59
    assert [r["_step"] for r in apart] == sorted(set(range(40)) | set(range(1, 60, 2)))
    by_step = {r["_step"]: r for r in apart}
    assert by_step[3] == {"_step": 3, "_time": 103.0, "a": 3, "odd": 3.0}
    assert by_step[4] == {"_step": 4, "_time": 14.0, "a": 4}
    assert by_step[59] == {"_step": 59, "_time": 159.0, "odd": 59.0}
    # 50 steps in all; the middle row is index 24 of them
    assert [r["_step"] for r in rows(keys=["a", "odd"], samples=3)] == [0, 24, 59]


def auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {"authorization": ""}


def test_users_teams_and_privacy(app_client: TestClient) -> None:
    c = app_client
    alice = c.post("/api/v1/users", json={"name": "alice"}).json()["api_key"]
    bob = c.post("/api/v1/users", json={"name": "bob"}).json()["api_key"]
    assert c.post("/api/v1/users", json={"name": "alice"}).status_code == 409
    assert c.post("/api/v1/users", json={"name": "eve"}, headers=auth(bob)).status_code == 403
    start = RunStart(run_id="priv", project="secret", name="n", start_time=1.0)
    assert post_log(c, "priv", log_bytes([start]), headers=auth(alice)).status_code == 200
    assert c.get("/api/v1/runs/priv", headers=auth(alice)).status_code == 200
    # Private: to Bob as if missing (404), to a caller without a key 401.
    assert c.get("/api/v1/runs/priv", headers=auth(bob)).status_code == 404
    assert c.get("/api/v1/runs/priv", headers={"authorization": ""}).status_code == 401
    assert c.get("/api/v1/projects/alice/secret/runs", headers=auth(bob)).status_code == 404
    assert c.get("/api/v1/projects", headers=auth(bob)).json()["projects"] == []
    assert c.get("/api/v1/runs/priv", headers=auth("tl_wrong")).status_code == 401
    # Bob cannot append to Alice's run, nor patch it.
    more = post_log(c, "priv", log_bytes([start])[:8], headers=auth(bob))
    assert more.status_code == 404
    assert c.patch("/api/v1/runs/priv", json={"name": "x"}, headers=auth(bob)).status_code == 404
    # Public: anyone reads, nobody else writes.
    assert (
        c.patch(
            "/api/v1/projects/alice/secret", json={"public": True}, headers=auth(bob)
        ).status_code
        == 404
    )
    assert (
        c.patch(
            "/api/v1/projects/alice/secret", json={"public": True}, headers=auth(alice)
        ).status_code
        == 200
    )
    assert c.get("/api/v1/runs/priv", headers={"authorization": ""}).status_code == 200
    assert c.get("/api/v1/runs/priv", headers=auth(bob)).status_code == 200
    assert c.patch("/api/v1/runs/priv", json={"name": "x"}, headers=auth(bob)).status_code == 403
    # Teams: a member writes to the team's projects.
    assert c.post("/api/v1/teams", json={"name": "lab"}, headers=auth(alice)).status_code == 201
    team_run = RunStart(run_id="teamrun", project="lab/shared", name="n", start_time=1.0)
    assert post_log(c, "teamrun", log_bytes([team_run]), headers=auth(bob)).status_code == 403
    added = c.post("/api/v1/teams/lab/members", json={"user": "bob"}, headers=auth(alice))
    assert added.status_code == 200
    assert post_log(c, "teamrun", log_bytes([team_run]), headers=auth(bob)).status_code == 200
    assert c.get("/api/v1/runs/teamrun", headers=auth(alice)).json()["project"] == "lab/shared"
    assert c.get("/api/v1/viewer", headers=auth(bob)).json() == {
        "name": "bob",
        "admin": False,
        "teams": ["lab"],
        "storage": {"used_bytes": 0, "quota_bytes": None},  # bob's own; the run is lab's
    }
    new_key = c.post("/api/v1/keys", headers=auth(bob)).json()["api_key"]
    assert c.get("/api/v1/viewer", headers=auth(new_key)).json()["name"] == "bob"


def test_files_are_content_addressed(app_client: TestClient, tmp_path: Path) -> None:
    c = app_client
    content = b"weights" * 1000
    sha = hashlib.sha256(content).hexdigest()
    records: list[Record] = [
        RunStart(run_id="fl", project="q", name="n", start_time=1.0),
        FileSaved("model.bin", "now", len(content), sha, 2.0),
        FileSaved("copy/model.bin", "now", len(content), sha, 2.0),
    ]
    response = post_log(c, "fl", log_bytes(records))
    assert sorted(m["path"] for m in response.json()["missing"]) == [
        "files/copy/model.bin",
        "files/model.bin",
    ]
    assert c.put(f"/api/v1/blobs/{sha}", content=b"other").status_code == 400
    assert c.put(f"/api/v1/blobs/{sha}", content=content).json()["stored"] is True
    assert c.put(f"/api/v1/blobs/{sha}", content=content).json()["stored"] is False  # once
    assert c.head(f"/api/v1/blobs/{sha}", params={"run": "fl"}).status_code == 200
    assert c.get("/api/v1/runs/fl/streams").json()["missing"] == []
    assert c.get("/api/v1/runs/fl/files/files/copy/model.bin").content == content
    blobs = list((tmp_path / "srv" / "files" / "blobs").rglob("*"))
    assert [p.name for p in blobs if p.is_file()] == [sha]
    # git.diff is declared without a hash: the client links it after uploading.
    git = GitInfo(commit="abc", diff_file="git.diff", diff_bytes=4)
    system = post_log(c, "fl", log_bytes([git]), stream="system").json()
    assert system["missing"] == [{"path": "git.diff", "sha256": None}]
    diff_sha = hashlib.sha256(b"diff").hexdigest()
    assert (
        c.post("/api/v1/runs/fl/files", json={"path": "git.diff", "sha256": diff_sha}).status_code
        == 409
    )
    c.put(f"/api/v1/blobs/{diff_sha}", content=b"diff")
    assert (
        c.post("/api/v1/runs/fl/files", json={"path": "git.diff", "sha256": diff_sha}).status_code
        == 200
    )
    assert c.get("/api/v1/runs/fl/files/git.diff").content == b"diff"
    listing = {f["path"]: f["uploaded"] for f in c.get("/api/v1/runs/fl/files").json()["files"]}
    assert listing == {"files/copy/model.bin": True, "files/model.bin": True, "git.diff": True}


def test_spec_docs_and_placeholder(app_client: TestClient) -> None:
    spec = app_client.get("/api/v1/openapi.json").json()
    assert "/api/v1/runs/{run_id}/streams/{stream}" in spec["paths"]
    assert app_client.get("/api/v1/docs").status_code == 200
    page = app_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_define_metric_and_config_updates(app_client: TestClient) -> None:
    records: list[Record] = [
        RunStart(run_id="dm", project="q", name="n", start_time=1.0, config={"a": 1}),
        DefineMetric("val/*", "max", "epoch"),
        ConfigUpdate({"b": {"c": [1, 2]}}),
        Metrics(0, 1.0, {"val/acc": 0.5, "epoch": 0}),
        Metrics(1, 2.0, {"val/acc": 0.4, "epoch": 1}),
    ]
    ship(app_client, records)
    detail = app_client.get("/api/v1/runs/dm").json()
    assert detail["summary"] == {"val/acc": 0.5, "epoch": 1}
    assert detail["config"] == {"a": 1, "b": {"c": [1, 2]}}
    assert detail["define_metrics"] == [{"name": "val/*", "summary": "max", "step_metric": "epoch"}]


def test_dashboard_files_carry_security_headers(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from trackline.server.app import create_app
    from trackline.server.config import ServerConfig

    with TestClient(create_app(ServerConfig.build(tmp_path), announce=False)) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304
