"""One run from many processes and nodes: torch.distributed (gloo, CPU), four ranks on two
"nodes" (two host names and two run directories on this machine), every rank logging.

Each rank writes its own run log (rank 0 ``runs/<id>/``, rank k ``runs/<id>/ranks/<k>/``)
and its own agent ships it as the streams ``main.<k>``...; the server must hold every
rank's rows exactly once, under ``rank<k>/`` keys, and each writer's host and end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import trackline
from _procs import Leftovers, wait_gone
from _server import ADMIN_KEY, ServerProcess, fixture_server, free_port, wait_for
from click.testing import CliRunner
from trackline import _wire_types as wt
from trackline._cli import main as cli

pytest.importorskip("torch.distributed")

__all__ = ["fixture_server"]

WORLD = 4
STEPS = 40
#: rank -> (host, local rank): two ranks per "node".
NODES = {0: ("node-a", 0), 1: ("node-a", 1), 2: ("node-b", 0), 3: ("node-b", 1)}

WORKER = """
import os, sys, time
import torch
import torch.distributed as dist
import trackline

rank = int(os.environ["RANK"])
dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]))
run = trackline.init(project="dist", id=os.environ["RUN_ID"], rank=rank, rank_metrics=True)
print(run._agent.pid if run._agent else 0, flush=True)
print(f"hello from rank {{rank}}", file=sys.stderr, flush=True)  # its console, as console.<k>
for step in range({steps}):
    total = torch.tensor([float(step)])
    dist.all_reduce(total)  # every rank at every step, as in data-parallel training
    run.log({{"loss": rank * 1000.0 + step, "mean": total.item() / dist.get_world_size()}}, step=step)
dist.barrier()
print("logged", flush=True)
if rank == int(os.environ.get("VICTIM", "-1")):
    time.sleep(600)  # killed here by the test
run.finish()
sys.path.insert(0, {tests!r})
import _procs
if run._agent is not None:
    _procs.wait_gone(run._agent.pid, 120)
dist.destroy_process_group()
"""


def start_ranks(
    tmp_path: Path, server: str | None, leftovers: Leftovers, victim: int | None = None
) -> list[tuple[subprocess.Popen[str], int]]:
    """Start the four ranks; each one's process and agent pid."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER).format(steps=STEPS, tests=str(Path(__file__).parent)))
    port = free_port()
    started: list[tuple[subprocess.Popen[str], int]] = []
    for rank in range(WORLD):
        host, local = NODES[rank]
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(WORLD),
            "LOCAL_RANK": str(local),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RUN_ID": "ddp-run",
            "TRACKLINE_HOSTNAME": host,
            "TRACKLINE_DIR": str(tmp_path / host),  # each "node" has its own disk
            "TRACKLINE_SYSTEM_INTERVAL": "0.2",
            "VICTIM": str(-1 if victim is None else victim),
        }
        env.pop("TRACKLINE_SERVER", None)
        if server is not None:
            env.update(TRACKLINE_SERVER=server, TRACKLINE_API_KEY=ADMIN_KEY)
        child = subprocess.Popen(
            [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
        )
        leftovers.append(child)
        started.append((child, 0))
    ranks = []
    for child, _ in started:
        assert child.stdout is not None
        agent = int(child.stdout.readline())
        leftovers.append(agent)
        ranks.append((child, agent))
    return ranks


def rank_dir(tmp_path: Path, rank: int) -> Path:
    base = tmp_path / NODES[rank][0] / "runs" / "ddp-run"
    return base if rank == 0 else base / "ranks" / str(rank)


def finish_all(ranks: list[tuple[subprocess.Popen[str], int]], skip: int | None = None) -> None:
    for rank, (child, agent) in enumerate(ranks):
        assert child.stdout is not None
        if rank != skip:
            assert child.wait(timeout=180) == 0
            wait_gone(agent, 120)
        child.stdout.close()


def key(rank: int, name: str) -> str:
    return name if rank == 0 else f"rank{rank}/{name}"


def assert_every_row_once(api: trackline.Api, ranks: range | list[int]) -> None:
    stored = api._json(wt.MetricKeys, "POST", "/metrics/keys", json={"runs": ["ddp-run"]}).points
    remote = api.run("ddp-run")
    for rank in ranks:
        assert stored[key(rank, "loss")] == STEPS, rank  # none missing, none twice
        assert stored[key(rank, "mean")] == STEPS, rank
        rows = remote.history(keys=[key(rank, "loss")])
        assert [row["_step"] for row in rows] == list(range(STEPS))
        assert [row[key(rank, "loss")] for row in rows] == [rank * 1000.0 + s for s in range(STEPS)]


def assert_shipped_exactly(server: ServerProcess, tmp_path: Path, ranks: list[int]) -> None:
    """The server's committed offset of each rank's streams is the end of its local log."""
    with server.client() as client:
        offsets = client.get("/runs/ddp-run/streams").json()["offsets"]
    for rank in ranks:
        for base in ("main", "system"):
            name = base if rank == 0 else f"{base}.{rank}"
            size = (rank_dir(tmp_path, rank) / f"{base}.tlog").stat().st_size
            assert offsets[name] == size, name


def api_of(server: ServerProcess) -> trackline.Api:
    """An API client, closed by the end of the test."""
    api = trackline.Api(server.url, api_key=ADMIN_KEY)
    _opened.append(api)
    return api


_opened: list[trackline.Api] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Any:
    yield
    while _opened:
        _opened.pop().close()


def writers_of(api: trackline.Api) -> dict[int, dict[str, Any]]:
    return {w["rank"]: w for w in api.run("ddp-run").writers}


def test_four_ranks_on_two_nodes_arrive_once_each(
    server: ServerProcess, tmp_path: Path, leftovers: Leftovers
) -> None:
    ranks = start_ranks(tmp_path, server.url, leftovers)
    finish_all(ranks)
    api = api_of(server)
    assert_every_row_once(api, range(WORLD))
    assert_shipped_exactly(server, tmp_path, list(range(WORLD)))
    run = api.run("ddp-run")
    assert run.state == "finished" and run.project.endswith("dist")
    assert run.summary["rank3/loss"] == 3000.0 + STEPS - 1
    writers = writers_of(api)
    assert {r: (w["host"], w["state"]) for r, w in writers.items()} == {
        0: ("node-a", "finished"),
        1: ("node-a", "finished"),
        2: ("node-b", "finished"),
        3: ("node-b", "finished"),
    }
    # System stats per rank: every rank its process; the host and GPUs once per node
    # (its local rank 0: rank 0 on node-a, rank 2 on node-b).
    system = api.run("ddp-run").system()
    keys = set().union(*system)
    for rank in range(WORLD):
        assert key(rank, "proc/rss_bytes") in keys, rank
    assert {"host/cpu_percent", "rank2/host/cpu_percent"} <= keys
    assert not {"rank1/host/cpu_percent", "rank3/host/cpu_percent"} & keys
    # Each rank's console, its lines marked with the rank.
    with server.client() as client:
        text = client.get("/runs/ddp-run/logs.txt").text
    assert "hello from rank 0" in text
    for rank in range(1, WORLD):
        assert text.count(f"[rank{rank}] hello from rank {rank}") == 1


def test_a_killed_rank_is_marked_crashed_and_the_others_complete(
    server: ServerProcess, tmp_path: Path, leftovers: Leftovers
) -> None:
    ranks = start_ranks(tmp_path, server.url, leftovers, victim=3)
    victim, victim_agent = ranks[3]
    for child, _ in ranks:
        assert child.stdout is not None and child.stdout.readline().strip() == "logged"
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=20) == -signal.SIGKILL
    finish_all(ranks, skip=3)
    wait_gone(victim_agent, 120)  # its verdict written and shipped
    api = api_of(server)
    assert_every_row_once(api, range(WORLD))  # the victim's rows too: logged before the kill
    assert_shipped_exactly(server, tmp_path, list(range(WORLD)))
    writers = writers_of(api)
    assert writers[3]["state"] == "crashed" and "no finish record" in writers[3]["reason"]
    assert [writers[r]["state"] for r in range(3)] == ["finished"] * 3
    assert api.run("ddp-run").state == "finished"  # the run's state is rank 0's


def test_offline_ranks_read_whole_and_sync(
    server: ServerProcess, tmp_path: Path, leftovers: Leftovers
) -> None:
    ranks = start_ranks(tmp_path, None, leftovers)
    finish_all(ranks)
    # One node's directory reads whole: rank 0 with rank 1 merged in (node-b has 2 and 3).
    local = trackline.open_run(rank_dir(tmp_path, 0))
    assert sorted(local.rank_dirs) == [1]
    rows = local.history()
    assert [row["_step"] for row in rows] == list(range(STEPS))
    assert all(row["rank1/loss"] == 1000.0 + row["_step"] for row in rows)
    assert all(row["loss"] == float(row["_step"]) for row in rows)
    assert [(w["rank"], w["host"], w["state"]) for w in local.writers] == [
        (0, "node-a", "finished"),
        (1, "node-a", "finished"),
    ]
    assert any("rank1/proc/rss_bytes" in sample for sample in local.system())
    # `trackline sync` of each node's directory ships every rank's streams; twice is harmless.
    runner = CliRunner()
    for _ in range(2):
        for node in ("node-a", "node-b"):
            result = runner.invoke(
                cli,
                ["sync", str(tmp_path / node), "--server", server.url, "--key", ADMIN_KEY],
                catch_exceptions=False,
            )
            assert result.exit_code == 0, result.output
    api = api_of(server)
    assert_every_row_once(api, range(WORLD))
    assert_shipped_exactly(server, tmp_path, list(range(WORLD)))
    assert sorted(writers_of(api)) == [0, 1, 2, 3]
    wait_for(lambda: api.run("ddp-run").state == "finished", what="the run finished")


def test_a_writers_state_does_not_depend_on_the_order_its_streams_arrive_in() -> None:
    """Rank 2's start, rows and finish (main.2) and its agent's verdicts (system.2), in
    either order: the same writer; the run's own state and summary are rank 0's."""
    from trackline._fold import RunFold, fold
    from trackline._ranks import writers
    from trackline.records import Finish, Metrics, RunStart

    rank0 = [RunStart("r", "p", "n", 10.0, host="a", rank=0), Metrics(0, 11.0, {"loss": 1.0})]
    main2 = [
        RunStart("r", "p", "other", 12.0, host="b", pid=7, rank=2, config={"lr": 9}),
        Metrics(0, 13.0, {"loss": 2.0}),
    ]
    old_verdict = Finish(5.0, "crashed", reason="an earlier process")  # before its start
    verdict = Finish(20.0, "crashed", reason="pid 7 gone")
    for order in ("main first", "system first"):
        state = RunFold()
        for record in rank0:
            fold(state, record)
        streams = [(main2, "main.2"), ([old_verdict, verdict], "system.2")]
        if order == "system first":
            streams.reverse()
        for records, stream in streams:
            for record in records:
                fold(state, record, stream)
        assert state.state == "running" and state.name == "n" and state.config == {}
        assert state.summary == {"loss": 1.0, "rank2/loss": 2.0}
        (zero, two) = writers(state)
        assert (zero["rank"], zero["host"], zero["state"]) == (0, "a", "running")
        assert (two["rank"], two["host"], two["pid"], two["state"]) == (2, "b", 7, "crashed")
        assert two["reason"] == "pid 7 gone"
        # Rows logged and when each was last heard of (a record's own time).
        assert (zero["rows"], zero["last_time"]) == (1, 11.0)
        assert (two["rows"], two["last_time"]) == (1, 20.0)
        # Its own finish wins over the verdict.
        fold(state, Finish(19.0, "finished"), "main.2")
        assert writers(state)[1]["state"] == "finished"
        again = RunFold.load(state.dump())  # kept between batches
        assert again.writers == state.writers and writers(again) == writers(state)


def test_bad_ranks_are_refused_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rank must be"):
        trackline.init(project="p", id="r1", rank=-1, dir=tmp_path)
    with pytest.raises(TypeError, match="rank must be an int"):
        trackline.init(project="p", id="r1", rank="1", dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the run's id"):
        trackline.init(project="p", rank=1, dir=tmp_path)


def test_another_rank_without_rank_metrics_records_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_HOSTNAME", "node-z")
    zero = trackline.init(project="p", id="r2", rank=0, dir=tmp_path, mode="offline")
    zero.log({"loss": 1.0})
    zero.finish()
    run = trackline.init(project="p", id="r2", rank=1, dir=tmp_path, mode="offline")
    assert run.dir == tmp_path / "runs" / "r2" / "ranks" / "1"
    with pytest.warns(UserWarning, match="rank_metrics=True"):
        run.log({"loss": 2.0})
    run.log({"loss": 3.0})  # warned once
    run.finish()
    read = trackline.open_run(tmp_path / "runs" / "r2")
    assert read.history() == [{"_step": 0, "_time": read.history()[0]["_time"], "loss": 1.0}]
    assert [(w["rank"], w["host"], w["state"]) for w in read.writers] == [
        (0, "node-z", "finished"),
        (1, "node-z", "finished"),
    ]
    assert [r.id for r in trackline.list_runs(tmp_path)] == ["r2"]  # one run, not two
