"""Fork and rewind (issue 15): in local run logs, on the server, and through sync."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import trackline
from _server import (  # noqa: F401
    ADMIN_KEY,
    ServerProcess,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    fixture_shared_server,
)
from click.testing import CliRunner
from trackline import runlog
from trackline._cli import main as cli
from trackline._client import Api
from trackline._warn import TracklineWarning
from trackline.records import Rewind, RunStart


@pytest.fixture(autouse=True)
def no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_CONSOLE", "off")


SPIKE = 6  # the parent's loss spikes at this step


def parent_run(
    run_id: str = "parent", project: str = "forks", steps: int = 10, watched: bool = False
) -> trackline.Run:
    """Steps 0..steps-1: loss 10 - step, but 100 at SPIKE; acc = step; with ``watched``,
    a histogram ``w`` (as ``trackline.watch`` logs it) at every step."""
    run = trackline.init(project=project, id=run_id, mode="offline", config={"lr": 0.1, "batch": 8})
    run.define_metric("loss", summary="min")
    run.define_metric("acc", summary="max")
    for step in range(steps):
        if watched:
            run._log_histogram("w", [0.0, 1.0], [float(step)], step=step)
        run.log({"loss": 100.0 if step == SPIKE else 10.0 - step, "acc": step})
    run.finish()
    return run


def losses(rows: list[dict]) -> list[tuple[int, float | None]]:
    return [(r["_step"], r.get("loss")) for r in rows]


# -- local ------------------------------------------------------------------------------


def test_a_fork_reads_its_parent_by_reference_then_its_own_rows() -> None:
    parent = parent_run(watched=True)
    fork = trackline.init(fork_from="parent", fork_step=5, config={"lr": 0.01}, mode="offline")
    assert fork.project == "forks"  # the parent's project by default
    assert fork.config.as_dict() == {"lr": 0.01, "batch": 8}  # overridden, the rest inherited
    assert fork.summary["loss"] == 5.0  # the inherited rows' min, as define_metric says
    for i in range(3):
        if i == 1:
            fork._log_histogram("w", [0.0, 1.0], [-1.0])  # at step 7
        fork.log({"loss": 4.0 - i, "acc": 50 + i})
    fork.finish()
    local = trackline.open_run(fork.id)
    assert local.fork_from == "parent" and local.fork_step == 5
    assert losses(local.history()) == [
        (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.0), (6, 4.0), (7, 3.0), (8, 2.0)
    ]  # fmt: skip
    assert [r["_step"] for r in local.history(inherited=False)] == [6, 7, 8]
    assert [h.step for h in local.histograms()] == [0, 1, 2, 3, 4, 5, 7]  # by reference too
    assert [h.step for h in local.histograms(inherited=False)] == [7]
    assert local.summary == {"loss": 2.0, "acc": 52}
    assert local.config == {"lr": 0.01, "batch": 8}
    assert trackline.open_run("parent").children() == [fork.id]
    assert local.parent() is not None and local.parent().id == parent.id
    # By reference: the fork's log holds none of the parent's rows.
    records = runlog.read_records(Path(fork.dir) / "main.tlog")
    start = next(r for r in records if type(r) is RunStart)
    assert (start.fork_from, start.fork_step) == ("parent", 5)
    assert sorted(r.step for r in records if type(r).__name__ == "Metrics") == [6, 7, 8]


def test_a_fork_of_a_fork_and_wandb_spelling() -> None:
    parent_run()
    child = trackline.init(fork_from="parent?_step=5", mode="offline", id="child")
    child.log({"loss": 1.0})  # step 6
    child.log({"loss": 0.5})  # step 7
    child.finish()
    grandchild = trackline.init(fork_from="child", fork_step=6, mode="offline", id="grand")
    assert grandchild.fork_step == 6
    grandchild.log({"loss": 0.25})  # step 7
    grandchild.finish()
    rows = trackline.open_run("grand").history(keys=["loss"])
    assert losses(rows) == [
        (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.0), (6, 1.0), (7, 0.25)
    ]  # fmt: skip
    assert trackline.open_run("grand").summary["loss"] == 0.25


def test_a_fork_whose_parent_is_not_here_says_so(tmp_path: Path) -> None:
    parent = parent_run()
    fork = trackline.init(fork_from="parent", fork_step=3, mode="offline", id="lonely")
    fork.log({"loss": 0.1})
    fork.finish()
    shutil.rmtree(parent.dir)
    local = trackline.open_run("lonely")
    with pytest.warns(UserWarning, match="fork of parent at step 3, which is not in"):
        rows = local.history()
    assert losses(rows) == [(4, 0.1)]
    assert local.summary["loss"] == 0.1  # from the state carried in the fork's own log
    assert local.summary["acc"] == 3  # the parent's max up to step 3, carried the same way


def test_rewind_hides_later_rows_and_recomputes_the_summary() -> None:
    parent_run()
    run = trackline.init(id="parent", rewind_to=5, mode="offline")
    assert run.summary["loss"] == 5.0 and run.summary["acc"] == 5  # from steps 0..5 only
    run.log({"loss": 4.5, "acc": 6})  # step 6, not 10
    run.log({"loss": 4.0, "acc": 7})
    run.finish()
    local = trackline.open_run("parent")
    assert local.rewinds == [5] and local.last_step == 7
    assert losses(local.history()) == [
        (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.0), (6, 4.5), (7, 4.0)
    ]  # fmt: skip
    assert local.summary == {"loss": 4.0, "acc": 7}  # not the rewound acc 9 nor loss 1.0
    everything = local.history(rewound=True)
    hidden = [(r["_step"], r["loss"]) for r in everything if r.get("_rewound")]
    assert hidden == [(6, 100.0), (7, 3.0), (8, 2.0), (9, 1.0)]
    assert len(everything) == 12
    # Twice: a rewind of a rewound run hides rows of both earlier epochs above its step.
    again = trackline.init(id="parent", rewind_to=2, mode="offline")
    again.log({"loss": 0.0})
    again.finish()
    local = trackline.open_run("parent")
    assert losses(local.history()) == [(0, 10.0), (1, 9.0), (2, 8.0), (3, 0.0)]
    assert local.summary == {"loss": 0.0, "acc": 2}


def test_wandb_resume_from_is_a_rewind() -> None:
    parent_run()
    run = trackline.init(resume_from="parent?_step=3", mode="offline")
    assert run.id == "parent"
    run.log({"loss": -1.0})
    run.finish()
    assert losses(trackline.open_run("parent").history())[-2:] == [(3, 7.0), (4, -1.0)]
    records = runlog.read_records(Path(run.dir) / "main.tlog")
    assert [r.step for r in records if type(r) is Rewind] == [3]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fork_from": "parent", "fork_step": 99}, ValueError, "beyond the last step"),
        ({"fork_from": "nobody", "fork_step": 1}, ValueError, "no run 'nobody'"),
        ({"fork_from": "parent", "fork_step": -1}, ValueError, "step >= 0"),
        ({"fork_from": "parent"}, ValueError, "fork_from needs a step"),
        ({"fork_step": 3}, ValueError, "fork_step needs fork_from"),
        ({"fork_from": "parent", "fork_step": "3"}, TypeError, "integer step"),
        ({"fork_from": "parent?step=3"}, ValueError, "RUN_ID\\?_step=N"),
        ({"fork_from": "parent", "fork_step": 2, "id": "parent"}, ValueError, "already exists"),
        ({"id": "ghost", "rewind_to": 2}, ValueError, "no run 'ghost'"),
        ({"rewind_to": 2}, ValueError, "rewind_to needs id"),
        ({"id": "parent", "rewind_to": 50}, ValueError, "nothing to rewind"),
        ({"id": "parent", "rewind_to": -2}, ValueError, "step >= 0"),
        ({"resume_from": "parent"}, ValueError, "RUN_ID\\?_step=N"),
        ({"id": "other", "resume_from": "parent?_step=2"}, ValueError, "but id is"),
    ],
)
def test_bad_fork_and_rewind_arguments_are_clear_errors(
    kwargs: dict, error: type[Exception], message: str
) -> None:
    parent_run()
    with pytest.raises(error, match=message):
        trackline.init(mode="offline", **kwargs)
    assert trackline.open_run("parent").history()[-1]["_step"] == 9  # untouched


def test_a_fork_cannot_be_rewound_into_its_inherited_part() -> None:
    parent_run()
    trackline.init(fork_from="parent", fork_step=5, mode="offline", id="f").finish()
    with pytest.raises(ValueError, match="fork the parent again"):
        trackline.init(id="f", rewind_to=3, mode="offline")


# -- server -----------------------------------------------------------------------------


def _sync(server: ServerProcess, monkeypatch: pytest.MonkeyPatch, *dirs: Path) -> None:
    monkeypatch.setenv("TRACKLINE_SERVER", server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    result = CliRunner().invoke(cli, ["sync", *(str(d) for d in dirs)])
    assert result.exit_code == 0, result.output


def _points(client, run_id: str) -> int:  # type: ignore[no-untyped-def]
    keys = client.post("/metrics/keys", json={"runs": [run_id]}).json()
    return sum(keys["points"].values())


def test_sync_of_a_fork_before_its_parent(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = parent_run("p-sync", project="forks-sync")
    fork = trackline.init(fork_from="p-sync", fork_step=5, mode="offline", id="f-sync")
    for i in range(3):
        fork.log({"loss": 4.0 - i, "acc": 50 + i})
    fork.finish()
    _sync(shared_server, monkeypatch, fork.dir)  # the fork first: its parent is not there
    local = trackline.open_run("f-sync")
    with Api() as api, shared_server.client() as client:
        remote = api.run("f-sync")
        assert [r["_step"] for r in remote.history()] == [6, 7, 8]
        assert remote.summary == local.summary == {"loss": 2.0, "acc": 52}
        detail = client.get("/runs/f-sync").json()
        assert detail["fork_from"] == "p-sync" and detail["fork_step"] == 5
        _sync(shared_server, monkeypatch, parent.dir)  # the parent arrives
        assert remote.history() == local.history()
        assert losses(remote.history())[:7] == [
            (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.0), (6, 4.0)
        ]  # fmt: skip
        # By reference: the fork stores its own 3 rows x 2 keys, no point of the parent's.
        assert _points(client, "f-sync") == 6 and _points(client, "p-sync") == 20
        assert api.run("p-sync").children == ["f-sync"]
        assert (api.run("f-sync").fork_from, api.run("f-sync").fork_step) == ("p-sync", 5)
        children = client.get("/runs/p-sync").json()["children"]
        assert [c["id"] for c in children] == ["f-sync"] and children[0]["fork_step"] == 5
        series = client.post(
            "/metrics/series", json={"runs": ["f-sync"], "keys": ["loss"], "samples": 100}
        ).json()["series"]
        assert len(series) == 1 and series[0]["fork_step"] == 5
        assert series[0]["x"] == list(range(9))


def _far_parent(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, where: Path, run_id: str
) -> None:
    """Run ``run_id`` logged and synced "on another machine": nothing of it stays local."""
    parent = trackline.init(
        project="forks-far", id=run_id, mode="offline", dir=where, config={"lr": 0.1, "batch": 8}
    )
    parent.define_metric("loss", summary="min")
    parent.define_metric("acc", summary="max")
    for step in range(10):
        parent.log({"loss": 100.0 if step == SPIKE else 10.0 - step, "acc": step})
    parent.finish()
    _sync(server, monkeypatch, parent.dir)
    shutil.rmtree(where)


def test_a_fork_of_a_run_that_is_only_on_the_server_offline_then_sync(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _far_parent(shared_server, monkeypatch, tmp_path / "other-machine", "far")
    fork = trackline.init(fork_from="far", fork_step=5, config={"lr": 0.01}, mode="offline")
    assert fork.project.endswith("forks-far")  # the parent's project
    assert fork.config.as_dict() == {"lr": 0.01, "batch": 8}  # the parent's, overridden
    assert fork.summary["loss"] == 5.0 and fork.summary["acc"] == 5  # its rules, up to 5
    for i in range(3):
        fork.log({"loss": 4.0 - i, "acc": 50 + i})
    fork.finish()
    local = trackline.open_run(fork.id)
    with pytest.warns(UserWarning, match=rf"steps after 5.*Api\(\)\.run\('{fork.id}'\)"):
        assert [r["_step"] for r in local.history()] == [6, 7, 8]
    assert local.summary == {"loss": 2.0, "acc": 52}
    assert local.parent() is None and local.fork_from == "far"
    records = runlog.read_records(Path(fork.dir) / "main.tlog")
    assert sorted(r.step for r in records if type(r).__name__ == "Metrics") == [6, 7, 8]
    _sync(shared_server, monkeypatch, fork.dir)
    with Api() as api:
        remote = api.run(fork.id)
        assert losses(remote.history()) == [
            (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.0), (6, 4.0), (7, 3.0), (8, 2.0)
        ]  # fmt: skip
        assert remote.summary == local.summary
        assert remote.fork_from == "far" and fork.id in api.run("far").children


def test_a_fork_of_a_run_that_is_only_on_the_server_online(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import psutil
    from _server import wait_for

    _far_parent(shared_server, monkeypatch, tmp_path / "other-machine", "far-2")
    monkeypatch.setenv("TRACKLINE_AGENT", "1")
    fork = trackline.init(fork_from="far-2?_step=3", mode="online", id="far-online")
    assert fork.mode == "online" and fork.config.as_dict() == {"lr": 0.1, "batch": 8}
    fork.log({"loss": 0.5})
    fork.finish()
    assert fork._agent is not None
    pid = fork._agent.pid

    def agent_gone() -> bool:
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    wait_for(agent_gone, 60, what="the fork's agent to upload and exit")
    with Api() as api:
        got = api.run("far-online")
        assert losses(got.history(keys=["loss"])) == [
            (0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 0.5)
        ]  # fmt: skip
        assert got.summary["loss"] == 0.5 and got.summary["acc"] == 3


def test_bad_forks_of_a_run_on_the_server_are_clear_errors(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _far_parent(shared_server, monkeypatch, tmp_path / "other-machine", "far-3")
    with pytest.raises(
        ValueError, match=r"fork_step 10 is beyond the last step of run 'far-3' \(9\)"
    ):
        trackline.init(fork_from="far-3", fork_step=10, mode="offline")
    with pytest.raises(ValueError, match=r"no run 'nowhere'.*nor on http"):
        trackline.init(fork_from="nowhere", fork_step=1, mode="offline")
    with shared_server.client() as admin:
        stranger = admin.post("/users", json={"name": "stranger-fork"}).json()["api_key"]
    monkeypatch.setenv("TRACKLINE_API_KEY", stranger)  # "far-3" is private to the admin
    with pytest.raises(ValueError, match=r"no run 'far-3'.*may not read it"):
        trackline.init(fork_from="far-3", fork_step=3, mode="offline")
    with pytest.raises(ValueError, match=r"no run 'far-3' in .* to rewind$"):
        trackline.init(id="far-3", rewind_to=3, mode="offline")  # nor may it know it is there
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    # A rewind of a run logged elsewhere: it continues that run's own log, which is not here.
    with pytest.raises(ValueError, match=r"it is on http.*fork_from='far-3', fork_step=3"):
        trackline.init(id="far-3", rewind_to=3, mode="offline")
    # Resumed here: its log is not, so a new one under its id could never be uploaded.
    with pytest.raises(ValueError, match=r"'far-3' is on http.*logged on another machine"):
        trackline.init(id="far-3", resume="must", mode="offline")
    with pytest.warns(TracklineWarning, match=r"'far-3' is on http.*kept here only"):
        kept = trackline.init(id="far-3", resume="allow", mode="offline")
    kept.finish()
    shutil.rmtree(kept.dir)
    monkeypatch.delenv("TRACKLINE_SERVER")
    with pytest.raises(ValueError, match="no server is configured"):
        trackline.init(fork_from="far-3", fork_step=3, mode="offline")
    with pytest.raises(ValueError, match=r"no run 'far-3' in .* to rewind$"):
        trackline.init(id="far-3", rewind_to=3, mode="offline")
    assert not (tmp_path / "tl" / "runs").exists() or not any((tmp_path / "tl" / "runs").iterdir())


def test_a_rewound_run_on_the_server(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent_run("r-run", project="forks-rewind")
    _sync(shared_server, monkeypatch, Path(trackline.open_run("r-run").path))
    run = trackline.init(id="r-run", rewind_to=5, mode="offline")
    run.log({"loss": 4.5, "acc": 6})
    run.finish()
    _sync(shared_server, monkeypatch, run.dir)  # the rest of the log: the rewind and after
    local = trackline.open_run("r-run")
    with Api() as api, shared_server.client() as client:
        remote = api.run("r-run")
        assert remote.history() == local.history()
        assert remote.summary == local.summary == {"loss": 4.5, "acc": 6}
        assert client.get("/runs/r-run").json()["rewinds"] == [5] == api.run("r-run").rewinds
        body = {"runs": ["r-run"], "keys": ["loss"], "samples": 100}
        shown = client.post("/metrics/series", json=body).json()["series"]
        assert [s["x"] for s in shown] == [[0, 1, 2, 3, 4, 5, 6]]
        both = client.post("/metrics/series", json={**body, "rewound": True}).json()["series"]
        hidden = [s for s in both if s.get("rewound")]
        assert len(both) == 2 and hidden[0]["x"] == [6, 7, 8, 9]
        assert hidden[0]["y"] == [100.0, 3.0, 2.0, 1.0]
        # The export marks the rewound rows in a boolean column.
        import pyarrow.parquet as pq

        answer = client.get("/runs/r-run/history?format=parquet&rewound=true")
        table = pq.read_table(io.BytesIO(answer.content)).to_pydict()
        assert table["_step"] == [0, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9]
        assert table["_rewound"] == [False] * 7 + [True] * 4
        csv_rows = client.get("/runs/r-run/history?format=csv&rewound=true").text.splitlines()
        assert csv_rows[0].startswith("_step,_time,") and csv_rows[-1].endswith(",True")


def test_rewinds_hide_media_and_histograms_too_locally_and_on_the_server(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice rewound: media, ``watch``'s histograms and metric rows above each rewind step
    are hidden in local reads and on the server alike, and come back only when asked."""
    run = trackline.init(project="forks-media", id="m-run", mode="offline")
    for step in range(6):
        run.log({"loss": 10.0 - step, "page": trackline.Html(f"<b>{step}</b>")})
        run._log_histogram("w", [0.0, 1.0], [float(step)], step=step)
    run.finish()
    _sync(shared_server, monkeypatch, run.dir)  # the first epoch is on the server already
    for rewind_to, new_step_values in ((3, [-1.0, -2.0]), (1, [-9.0])):
        again = trackline.init(id="m-run", rewind_to=rewind_to, mode="offline")
        for value in new_step_values:
            again._log_histogram("w", [0.0, 1.0], [value])  # at the next log's step
            again.log({"loss": value, "page": trackline.Html(f"<i>{value}</i>")})
        again.finish()
    _sync(shared_server, monkeypatch, run.dir)
    local = trackline.open_run("m-run")
    assert local.rewinds == [3, 1]
    assert losses(local.history()) == [(0, 10.0), (1, 9.0), (2, -9.0)]
    assert local.summary == {"loss": -9.0}
    assert [(m.step, m.kind) for m in local.media()] == [(0, "html"), (1, "html"), (2, "html")]
    assert [(h.step, h.counts) for h in local.histograms()] == [(0, [0.0]), (1, [1.0]), (2, [-9.0])]
    assert len(local.media(rewound=True)) == 6 + 2 + 1
    everything = local.history(rewound=True)
    assert [(r["_step"], r["loss"]) for r in everything if r.get("_rewound")] == [
        (2, 8.0),
        (3, 7.0),
        (4, -1.0),
        (5, -2.0),
    ]  # fmt: skip  (steps 4, 5: hidden rows of both epochs merged, the later wins)
    with Api() as api:
        remote = api.run("m-run")
        assert remote.history() == local.history()
        assert remote.history(rewound=True) == everything
        assert remote.summary == local.summary
        assert [m["step"] for m in remote.media()] == [0, 1, 2]
        assert [(h["step"], h["counts"]) for h in remote.histograms()] == [
            (0, [0.0]), (1, [1.0]), (2, [-9.0])
        ]  # fmt: skip
        shown = remote.media(rewound=True)
        assert len(shown) == 9 and sum(bool(m.get("rewound")) for m in shown) == 6
        hidden = [h["step"] for h in remote.histograms(rewound=True) if h.get("rewound")]
        assert sorted(hidden) == [2, 3, 4, 4, 5, 5]  # epoch 0 above 1, epoch 1 above 1
    with shared_server.client() as client:
        csv = client.get("/runs/m-run/history", params={"rewound": "true", "format": "csv"})
        assert csv.status_code == 200 and "_rewound" in csv.text.splitlines()[0]
        assert client.get("/runs/m-run/history", params={"rewound": "maybe"}).status_code == 422


def test_a_fork_of_a_private_run_shows_nothing_of_it_to_a_stranger(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shared_server.client() as admin:
        alice = admin.post("/users", json={"name": "alice-fork"}).json()["api_key"]
        bob = admin.post("/users", json={"name": "bob-fork"}).json()["api_key"]
    monkeypatch.setenv("TRACKLINE_SERVER", shared_server.url)
    parent = parent_run("secret-parent", project="alice-fork/private", watched=True)
    fork = trackline.init(
        fork_from="secret-parent", fork_step=5, project="bob-fork/open", mode="offline", id="pub"
    )
    fork._log_histogram("w", [0.0, 1.0], [0.5])
    fork.log({"loss": 0.5})
    fork.finish()
    for key, run in ((alice, parent), (bob, fork)):
        monkeypatch.setenv("TRACKLINE_API_KEY", key)
        result = CliRunner().invoke(cli, ["sync", str(run.dir)])
        assert result.exit_code == 0, result.output
    with shared_server.client(ADMIN_KEY) as admin:
        assert admin.patch("/projects/bob-fork/open", json={"public": True}).status_code == 200
    with shared_server.client(bob) as client:
        assert client.get("/runs/secret-parent").status_code == 404
        detail = client.get("/runs/pub").json()
        assert detail.get("fork_from") is None  # as if it had no parent
        history = client.get("/runs/pub/history").json()
        assert history["steps"] == [6]  # none of the parent's rows
        series = client.post(
            "/metrics/series", json={"runs": ["pub"], "keys": ["loss", "acc"], "samples": 10}
        ).json()["series"]
        assert [(s["key"], s["x"]) for s in series] == [("loss", [6])]
        watched = client.get("/runs/pub/histograms").json()["histograms"]
        assert [h["step"] for h in watched] == [6]  # nor of its histograms
        assert "inherited_from" not in watched[0]  # nor its name
    with shared_server.client(alice) as client:  # alice may read both
        assert client.get("/runs/pub/history").json()["steps"] == list(range(7))
        watched = client.get("/runs/pub/histograms").json()["histograms"]
        assert [h["step"] for h in watched] == list(range(7))
        # Each says whose it is: the parent's up to the fork step, then the fork's own.
        assert [h.get("inherited_from") for h in watched] == ["secret-parent"] * 6 + [None]
        assert client.get("/runs/pub").json()["fork_from"] == "secret-parent"
        assert [c["id"] for c in client.get("/runs/secret-parent").json()["children"]] == ["pub"]
    with shared_server.client(bob) as client:
        # the parent's children list is the parent's: bob cannot ask for it at all
        assert client.get("/runs/secret-parent").status_code == 404


# -- schema and hostile input -------------------------------------------------------------


def test_a_version_12_database_gets_the_lineage_columns_of_13_and_14(database_url: str) -> None:
    import sqlalchemy as sa
    from trackline.server import migrations, schema
    from trackline.server.db import Database

    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:  # as a version-12 server left it
            conn.execute(sa.text("DROP INDEX ix_runs_parent"))
            for table, column in (
                ("runs", "parent_run_id"),
                ("runs", "fork_step"),
                ("chunks", "epoch"),
                ("histograms", "epoch"),
                ("media", "epoch"),
            ):
                conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
            conn.execute(sa.update(schema.schema_version).values(version=12))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            inspector = sa.inspect(conn)
            assert {"parent_run_id", "fork_step"} <= {
                c["name"] for c in inspector.get_columns("runs")
            }
            for table in ("chunks", "histograms", "media"):
                assert "epoch" in {c["name"] for c in inspector.get_columns(table)}
            assert "ix_runs_parent" in {i["name"] for i in inspector.get_indexes("runs")}
            assert migrations.current_version(conn) == schema.SCHEMA_VERSION
    finally:
        db.dispose()


def test_hostile_fork_and_rewind_records_are_refused_or_harmless(app_client) -> None:  # type: ignore[no-untyped-def]
    from _server import log_bytes, post_log
    from trackline.records import Metrics

    def start(run_id: str, **fork: object) -> RunStart:
        return RunStart(run_id=run_id, project="hostile", name=run_id, start_time=1.0, **fork)

    bad_id = post_log(app_client, "h1", log_bytes([start("h1", fork_from="../x", fork_step=1)]))
    assert bad_id.status_code == 422
    bad_step = post_log(app_client, "h2", log_bytes([start("h2", fork_from="p", fork_step=-3)]))
    assert bad_step.status_code == 422
    junk = {"rules": "not rules", "last": 5}
    seeded = [
        start("h3", fork_from="p", fork_step=1, fork_summary=junk),
        Metrics(2, 2.0, {"x": 1.0}),
    ]
    assert post_log(app_client, "h3", log_bytes(seeded)).status_code == 200
    assert app_client.get("/api/v1/runs/h3").json()["summary"] == {"x": 1.0}
    far = post_log(app_client, "h4", log_bytes([start("h4"), Rewind(step=2**63 - 1, time=1.0)]))
    assert far.status_code == 422


def test_fork_and_rewind_read_the_same_on_both_databases(app_client) -> None:  # type: ignore[no-untyped-def]
    """Shipped as raw run logs in any order (fork first, the rewind in a later body)."""
    from _server import frames_bytes, log_bytes, post_log
    from trackline.records import DefineMetric, Metrics

    parent = [RunStart(run_id="pp", project="both", name="pp", start_time=1.0)]
    parent += [DefineMetric("loss", "min")]
    parent += [Metrics(s, 1.0 + s, {"loss": 10.0 - s}) for s in range(10)]
    seed = {"last": {"loss": 6.0}, "rules": [["loss", "min", None]]}
    seed["special"] = {"loss": ["min", 6.0, 0.0, 0]}
    fork = [RunStart(run_id="ff", project="both", name="ff", start_time=2.0, fork_from="pp")]
    fork[0] = RunStart(
        **{
            **{f: getattr(fork[0], f) for f in fork[0].__struct_fields__},
            "fork_step": 4,
            "fork_summary": seed,
        }
    )
    fork += [Metrics(s, 5.0 + s, {"loss": 7.0 - s * 0.1}) for s in range(5, 8)]
    head = log_bytes(fork)
    assert post_log(app_client, "ff", head).status_code == 200
    got = app_client.get("/api/v1/runs/ff/history").json()
    assert got["steps"] == [5, 6, 7]
    assert app_client.get("/api/v1/runs/ff").json()["summary"] == {"loss": 6.0}
    assert post_log(app_client, "pp", log_bytes(parent)).status_code == 200
    got = app_client.get("/api/v1/runs/ff/history").json()
    assert got["steps"] == list(range(8)) and got["values"]["loss"][4:] == pytest.approx(
        [6.0, 6.5, 6.4, 6.3]
    )
    # A rewind of the parent: a later body, then new rows; the fork still sees 0-4.
    more = frames_bytes([Rewind(step=2, time=30.0), Metrics(3, 31.0, {"loss": 0.5})])
    parent_size = len(log_bytes(parent))
    assert post_log(app_client, "pp", more, offset=parent_size).status_code == 200
    rows = app_client.get("/api/v1/runs/pp/history").json()
    assert rows["steps"] == [0, 1, 2, 3] and rows["values"]["loss"] == [10.0, 9.0, 8.0, 0.5]
    assert app_client.get("/api/v1/runs/pp").json()["summary"] == {"loss": 0.5}
    fork_rows = app_client.get("/api/v1/runs/ff/history").json()
    assert fork_rows["steps"] == [0, 1, 2, 3, 5, 6, 7]  # the parent's visible rows up to 4


def test_show_names_the_lineage() -> None:
    parent_run()
    fork = trackline.init(fork_from="parent", fork_step=4, mode="offline", id="shown")
    fork.finish()
    rewound = trackline.init(id="parent", rewind_to=7, mode="offline")
    rewound.finish()
    out = CliRunner().invoke(cli, ["show", "shown"], terminal_width=120)
    assert out.exit_code == 0 and "forked from parent after step 4" in out.output
    out = CliRunner().invoke(cli, ["show", "parent"], terminal_width=120)
    assert out.exit_code == 0 and "rewound to step 7" in out.output
