"""One fold of a run's records (``trackline._fold``): the local reader and the server agree.

Both streams of a run (``main`` from the training process, ``system`` from its agent)
are folded by the same rules, whatever order they arrive in at the server; the state,
summary, config, name, tags and notes read locally equal what the server answers.
"""

from __future__ import annotations

import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _server import (  # noqa: F401 - fixtures
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    post_log,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_storage import local_view, server_view, start, write_run
from trackline import open_run, runlog
from trackline._fold import RunFold, fold
from trackline.records import (
    ConfigUpdate,
    DefineMetric,
    Finish,
    GitInfo,
    Metrics,
    RunUpdate,
    SummaryUpdate,
    SystemSample,
)

Record = Any
#: Record times from tomorrow on: no running run is taken for one whose heartbeats stopped.
NOW = time.time() + 86_400


def ship(client: Any, run_id: str, run_dir: Path, order: list[str]) -> None:
    """Send the run's two logs frame by frame, the streams taking turns as ``order`` says."""
    pending = {}
    for stream in ("main", "system"):
        path = run_dir / f"{stream}.tlog"
        if path.exists():
            data = path.read_bytes()
            ends = [runlog.HEADER_SIZE] + [f.end for f in runlog.read_log(path)]
            pending[stream] = [(data, lo, hi) for lo, hi in itertools.pairwise([0, *ends])]
    for stream in itertools.chain(order, ["main"] * 10_000, ["system"] * 10_000):
        if not any(pending.values()):
            break
        if pending.get(stream):
            data, lo, hi = pending[stream].pop(0)
            response = post_log(client, run_id, data[lo:hi], lo, stream)
            assert response.status_code == 200, response.text


def test_a_resume_after_a_crash_verdict_runs_again_locally_and_on_the_server(
    app_client: Any, tmp_path: Path
) -> None:
    """The verdict (t+500) is about the process before the resume (t+1000), whatever
    order it arrives in: the resumed run is running. (The server said crashed before.)"""
    main: list[Record] = [start("again", start_time=NOW)]
    main += [Metrics(s, NOW + s, {"x": float(s)}) for s in range(5)]
    main += [
        start("again", start_time=NOW + 1000, resumed=True),
        Metrics(5, NOW + 1001, {"x": 5.0}),
    ]
    system: list[Record] = [Finish(NOW + 500, "crashed", reason="agent: training process gone")]
    run_dir = tmp_path / "again"
    write_run(run_dir, main, system)
    assert open_run(run_dir).state == "running"
    ship(app_client, "again", run_dir, ["main"] * len(main) + ["system"])
    assert server_view(app_client, "again")["state"] == "running"
    assert server_view(app_client, "again") == local_view(run_dir)


def test_the_fold_survives_its_dump() -> None:
    state = RunFold()
    for record in [
        start("d", config={"a": 1}, tags=["t"]),
        DefineMetric("loss", "min"),
        Metrics(0, 1.0, {"loss": 2.0}),
        Metrics(1, 2.0, {"loss": 1.0}),
        Metrics(2, 3.0, {"loss": 3.0}),
        SummaryUpdate({"best": "yes"}),
    ]:
        fold(state, record)
    fold(state, GitInfo(commit="abc"), "system")
    fold(state, Finish(2000.0, "crashed"), "system")
    again = RunFold.load(state.dump())
    assert again.dump() == state.dump()
    assert again.summary == {"loss": 1.0, "best": "yes"} and again.state == "crashed"
    fold(again, Metrics(3, 4.0, {"loss": 0.5}))  # a loaded fold goes on by the same rules
    assert again.summary["loss"] == 0.5 and again.last_step == 3


# -- the property: any records, any interleaving, one state -------------------------------

times = st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False).map(lambda t: NOW + t)
values = st.dictionaries(
    st.sampled_from(["loss", "acc", "val/loss", "lr"]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-100, 100),
    min_size=1,
    max_size=3,
)
main_record = st.one_of(
    st.builds(lambda s, t, v: Metrics(s, t, v), st.integers(0, 50), times, values),
    st.builds(
        lambda v: ConfigUpdate(v),
        st.dictionaries(st.sampled_from("abc"), st.integers(-(2**62), 2**62), max_size=2),
    ),
    st.builds(
        lambda n, tags, notes: RunUpdate(name=n, tags=tags, notes=notes),
        st.none() | st.sampled_from(["renamed", "other"]),
        st.none() | st.lists(st.sampled_from(["x", "y"]), max_size=2, unique=True),
        st.none() | st.sampled_from(["", "a note"]),
    ),
    st.builds(
        lambda v: SummaryUpdate(v),
        st.dictionaries(
            st.sampled_from(["best", "loss"]), st.integers(-(2**62), 2**62), max_size=1
        ),
    ),
    st.builds(
        lambda name, kind, step: DefineMetric(name, kind, step),
        st.sampled_from(["loss", "val/*", "acc"]),
        st.sampled_from(["last", "first", "min", "max", "mean", "none"]),
        st.none() | st.just("epoch"),
    ),
    st.builds(
        lambda t, state, code: Finish(t, state, exit_code=code),
        times,
        st.sampled_from(["finished", "failed", "killed"]),
        st.none() | st.integers(0, 3),
    ),
    st.builds(lambda t: start("prop", start_time=t, resumed=True), times),
)
system_record = st.one_of(
    st.builds(lambda t, cpu: SystemSample(t, {"cpu": cpu}), times, st.floats(0, 100)),
    st.builds(lambda t: Finish(t, "crashed", reason="agent: process gone"), times),
    st.builds(lambda c: GitInfo(commit=c), st.sampled_from(["abc", "def"])),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first_start=times,
    main=st.lists(main_record, max_size=12),
    system=st.lists(system_record, max_size=5),
    order=st.lists(st.sampled_from(["main", "system"]), max_size=20),
)
def test_any_interleaving_of_both_streams_reads_the_same_locally_and_on_the_server(
    app_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    first_start: float,
    main: list[Record],
    system: list[Record],
    order: list[str],
) -> None:
    run_id = f"p{uuid.uuid4().hex[:12]}"
    records = [start(run_id, start_time=first_start), *main]
    records = [
        start(run_id, start_time=r.start_time, resumed=True)
        if type(r).__name__ == "RunStart"
        else r
        for r in records
    ]
    run_dir = tmp_path_factory.mktemp("fold") / run_id
    write_run(run_dir, records, system)
    local = local_view(run_dir)
    assert local["state"] == open_run(run_dir).state
    ship(app_client, run_id, run_dir, order)
    assert server_view(app_client, run_id) == local


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.text(max_size=12), st.integers(), max_size=8), max_size=12),
    rank=st.integers(1, 999_999),
)
def test_a_prefixer_gives_what_prefixed_gives(rows: list[dict[str, int]], rank: int) -> None:
    """``Prefixer`` (a rank's key names, made once) equals ``prefixed``, in order, also
    past its cache's limit (where it starts again)."""
    from trackline import _ranks

    class Small(_ranks.Prefixer):
        LIMIT = 5

    prefixer = Small(rank)
    for row in rows:
        got = prefixer(row)
        assert list(got.items()) == list(_ranks.prefixed(row, rank).items())
    assert len(prefixer._names) <= 5 + 8
