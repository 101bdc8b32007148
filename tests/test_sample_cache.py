"""The cache of downsampled series (``server/samplecache.py``), on SQLite and PostgreSQL.

A repeated chart query is answered from it; new points, a rewind and a deletion are
in the next answer; a caller that may not read a run gets what a missing run gets,
however much of it is cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _server import (  # noqa: F401 - fixtures
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    frames_bytes,
    log_bytes,
    post_log,
)
from trackline.records import Metrics, Rewind, RunStart
from trackline.server.samplecache import SampleCache, Sampled

BINARY = {"accept": "application/x-trackline-series"}


def sampled(n: int) -> Sampled:
    return Sampled(n, (np.arange(n), np.ones(n), np.zeros(n), np.ones(n), np.ones(n, np.int64)))


def test_sample_cache_is_bounded_versioned_and_read_only() -> None:
    one = sampled(4)
    cache = SampleCache(max_bytes=2 * one.nbytes + 10)  # two entries
    cache.put((1, "step", 10), ("v", 1), one)
    assert cache.get((1, "step", 10), ("v", 1)) is one
    assert cache.get((1, "step", 10), ("v", 2)) is None  # the series changed: never stale
    assert cache.get((1, "time", 10), ("v", 1)) is None  # another axis, another entry
    assert cache.get((1, "step", 20), ("v", 1)) is None  # another bucket count too
    assert one.arrays is not None and not one.arrays[1].flags.writeable  # answers share it
    for series_id in (2, 3):
        cache.put((series_id, "step", 10), ("v", 1), sampled(4))
    assert cache.get((1, "step", 10), ("v", 1)) is None  # least recently used went
    assert len(cache) == 2 and cache.size == 2 * one.nbytes
    cache.put((9, "step", 10), ("v", 1), sampled(10_000))  # bigger than the cache
    assert cache.get((9, "step", 10), ("v", 1)) is None and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.size == 0
    assert SampleCache(0).get((1, "step", 10), ("v", 1)) is None


def test_sample_cache_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    from trackline.server.samplecache import DEFAULT_MB

    monkeypatch.delenv("TRACKLINE_SAMPLE_CACHE_MB", raising=False)
    assert SampleCache.from_environment().max_bytes == DEFAULT_MB * 2**20
    monkeypatch.setenv("TRACKLINE_SAMPLE_CACHE_MB", "0")
    assert SampleCache.from_environment().max_bytes == 0


def _run(client: Any, run_id: str, steps: range, project: str = "sc") -> bytes:
    start = RunStart(run_id=run_id, project=project, name=run_id, start_time=100.0)
    data = log_bytes([start, *[Metrics(s, 100.0 + s, {"v": float(s % 37)}) for s in steps]])
    assert post_log(client, run_id, data).status_code == 200
    return data


def _query(client: Any, runs: list[str], x: str = "step", **headers: str) -> Any:
    body = {"runs": runs, "keys": ["v"], "samples": 4, "x": x}
    return client.post("/api/v1/metrics/series", json=body, headers=headers)


def _uncached(client: Any, runs: list[str], x: str = "step") -> Any:
    """The answer made from the blocks, the sample cache set aside for the call."""
    ctx = client.app.state.ctx
    kept, ctx.sampled = ctx.sampled, SampleCache(0)
    try:
        return _query(client, runs, x).json()
    finally:
        ctx.sampled = kept


@pytest.fixture(name="counted")
def fixture_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The series ids whose block summaries a query read (not answered from the cache)."""
    from trackline.server import history

    read: list[int] = []
    real = history.read_blocks

    def counting(conn: Any, infos: Any, *args: Any, **kwargs: Any) -> Any:
        read.extend(info.id for info in infos)
        return real(conn, infos, *args, **kwargs)

    monkeypatch.setattr(history, "read_blocks", counting)
    return read


def test_repeated_queries_come_from_the_cache_until_points_arrive(
    app_client: Any, counted: list[int]
) -> None:
    data = _run(app_client, "sc-live", range(1000))
    first = _query(app_client, ["sc-live"]).json()
    assert len(counted) == 1 and first["series"][0]["total"] == 1000
    binary = _query(app_client, ["sc-live"], **BINARY).content
    assert _query(app_client, ["sc-live"]).json() == first  # from the cache
    assert _query(app_client, ["sc-live"], **BINARY).content == binary
    assert len(counted) == 1
    assert first == _uncached(app_client, ["sc-live"])
    counted.clear()

    more = frames_bytes([Metrics(s, 100.0 + s, {"v": 1000.0}) for s in range(1000, 1300)])
    assert post_log(app_client, "sc-live", more, len(data)).status_code == 200
    [grown] = _query(app_client, ["sc-live"]).json()["series"]
    assert grown["total"] == 1300 and grown["max"][-1] == 1000.0 and len(counted) == 1
    assert {"series": [grown]} == _uncached(app_client, ["sc-live"])


def test_time_axes_share_one_entry_and_match_the_blocks(
    app_client: Any, counted: list[int]
) -> None:
    _run(app_client, "sc-time", range(1000))
    over_time = _query(app_client, ["sc-time"], x="time").json()
    relative = _query(app_client, ["sc-time"], x="relative").json()
    assert len(counted) == 1  # relative time: the wall-time buckets, shifted
    [entry], [shifted] = over_time["series"], relative["series"]
    assert entry["x"][0] == 100.0 and shifted["x"] == [x - 100.0 for x in entry["x"]]
    assert shifted["x_axis"] == "relative" and entry["x_axis"] == "time"
    assert over_time == _uncached(app_client, ["sc-time"], "time")
    assert relative == _uncached(app_client, ["sc-time"], "relative")
    assert _query(app_client, ["sc-time"], x="time").json() == over_time


def test_a_rewind_shows_in_the_next_answer(app_client: Any) -> None:
    data = _run(app_client, "sc-rew", range(1000))
    assert _query(app_client, ["sc-rew"]).json()["series"][0]["total"] == 1000  # cached
    after = frames_bytes([Rewind(step=499, time=2000.0)])
    after += frames_bytes([Metrics(s, 2000.0 + s, {"v": -1.0}) for s in range(500, 600)])
    assert post_log(app_client, "sc-rew", after, len(data)).status_code == 200
    [entry] = _query(app_client, ["sc-rew"]).json()["series"]
    assert entry["total"] == 600 and entry["min"][-1] == -1.0  # steps 500.. logged again


def test_a_purged_run_leaves_nothing_cached(app_client: Any) -> None:
    _run(app_client, "sc-gone", range(1000))
    assert _query(app_client, ["sc-gone"]).status_code == 200
    assert len(app_client.app.state.ctx.sampled) == 1
    assert app_client.delete("/api/v1/runs/sc-gone").status_code == 200
    assert _query(app_client, ["sc-gone"]).status_code == 404  # in the trash
    assert app_client.delete("/api/v1/runs/sc-gone/trash").status_code == 200
    assert len(app_client.app.state.ctx.sampled) == 0
    assert _query(app_client, ["sc-gone"]).status_code == 404
    _run(app_client, "sc-new", range(700))  # may get the purged rows' ids (SQLite)
    [entry] = _query(app_client, ["sc-new"]).json()["series"]
    assert entry["total"] == 700 and entry["run"] == "sc-new"


def test_a_reader_without_access_gets_404_though_the_series_are_cached(
    app_client: Any, counted: list[int]
) -> None:
    _run(app_client, "sc-private", range(1000), project="sc-private")
    _run(app_client, "sc-other", range(1000), project="sc-open")
    assert _query(app_client, ["sc-private", "sc-other"]).status_code == 200  # cached now
    entity = app_client.get("/api/v1/runs/sc-other").json()["project"].split("/")[0]

    def share(public: bool) -> None:
        body = {"public": public}
        assert app_client.patch(f"/api/v1/projects/{entity}/sc-open", json=body).status_code == 200

    key = app_client.post("/api/v1/users", json={"name": "sc-bob"}).json()["api_key"]
    bob = {"authorization": f"Bearer {key}"}
    assert _query(app_client, ["sc-other"], **bob).status_code == 404
    share(True)
    [entry] = _query(app_client, ["sc-other"], **bob).json()["series"]  # public: readable
    assert entry["run"] == "sc-other" and entry["total"] == 1000
    answer = _query(app_client, ["sc-other", "sc-private"], **bob)
    assert answer.status_code == 404 and answer.json()["detail"] == "no run sc-private"
    missing = _query(app_client, ["sc-missing"], **bob)
    assert missing.status_code == 404 and missing.json()["detail"] == "no run sc-missing"
    assert _query(app_client, ["sc-private"], **BINARY | bob).status_code == 404
    anonymous = _query(app_client, ["sc-private"], authorization="")
    assert anonymous.status_code == 401
    share(False)
    assert _query(app_client, ["sc-other"], **bob).status_code == 404  # cached or not
    assert len(counted) == 2  # both series were read once, for the admin


def test_runs_checked_together_answer_as_one_by_one(app_client: Any) -> None:
    """The series query checks its runs in two statements: the same answers as one by one,
    a run in the trash or never uploaded included, duplicates answered once."""
    for run_id in ("sc-a", "sc-b", "sc-c"):
        _run(app_client, run_id, range(10))
    assert app_client.delete("/api/v1/runs/sc-c").status_code == 200
    found = _query(app_client, ["sc-b", "sc-a", "sc-b"]).json()["series"]
    assert sorted(e["run"] for e in found) == ["sc-a", "sc-b"]  # each once
    for runs, missing in ((["sc-a", "sc-c"], "sc-c"), (["sc-x", "sc-a", "sc-y"], "sc-x")):
        answer = _query(app_client, runs)
        assert answer.status_code == 404 and answer.json()["detail"] == f"no run {missing}"
    too_many = _query(app_client, [f"r{i}" for i in range(1001)])
    assert too_many.status_code in (400, 422)
