"""Liveness: finished runs' agents are reaped; runs whose processes died are called crashed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import trackline
from _procs import Leftovers, wait_gone
from _server import ADMIN_KEY, ServerProcess, fixture_server  # noqa: F401
from click.testing import CliRunner
from trackline import runlog
from trackline._cli import main as cli
from trackline._client import Api
from trackline._reader import record_verdict
from trackline.records import Finish


def test_agents_of_finished_runs_are_reaped() -> None:
    """A long-lived process (a notebook) keeps no zombie agent after its runs finish."""
    agents = []
    for i in range(3):
        run = trackline.init(project="p")
        run.log({"x": float(i)})
        assert run._agent is not None
        agents.append(run._agent.pid)
        run.finish()

    def zombies() -> list[int]:
        found = []
        for child in psutil.Process().children():
            try:
                if child.pid in agents and child.status() == psutil.STATUS_ZOMBIE:
                    found.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return found

    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(pid) for pid in agents) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftover = [pid for pid in agents if psutil.pid_exists(pid)]
    assert not zombies(), "finished agents left as zombies"
    if leftover:
        pytest.fail(f"agents {leftover} still exist 30s after their runs finished")


CHILD = """\
import sys, time, trackline
run = trackline.init(project="live")
for i in range(100):
    run.log({"x": float(i)})
run._writer.flush()
print(run.dir, flush=True)
time.sleep(120)
"""


def start_child(tmp_path: Path, leftovers: Leftovers) -> tuple[subprocess.Popen[str], Path, int]:
    """A training process that logs 100 rows and waits; its run dir and agent pid."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    leftovers.append(child)
    assert child.stdout is not None
    run_dir = Path(child.stdout.readline().strip())
    processes = json.loads((run_dir / "processes.json").read_text())
    assert processes["writer"]["pid"] == child.pid
    agent_pid = int(processes["agent"]["pid"])
    leftovers.append(agent_pid)
    return child, run_dir, agent_pid


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (or a zombie)."""
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)


def kill_child(child: subprocess.Popen[str]) -> None:
    kill(child.pid)
    child.wait(timeout=20)
    assert child.stdout is not None
    child.stdout.close()


def test_run_killed_with_its_agent_is_crashed_locally_and_on_the_server(
    tmp_path: Path,
    leftovers: Leftovers,
    server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child, run_dir, agent_pid = start_child(tmp_path, leftovers)
    assert trackline.open_run(run_dir).state == "running"  # alive in another process
    kill(agent_pid)
    kill_child(child)

    local = trackline.open_run(run_dir)
    assert local.state == "crashed"
    assert local.reason is not None
    assert f"writer pid {child.pid}" in local.reason
    assert f"agent pid {agent_pid}" in local.reason
    assert "no finish record" in local.reason
    assert local.end_time is not None and local.end_time >= (local.start_time or 0)
    assert [row["x"] for row in local.history()] == [float(i) for i in range(100)]

    listed = subprocess.run(
        [sys.executable, "-m", "trackline", "runs", str(run_dir.parent.parent)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "crashed" in listed.stdout and "running" not in listed.stdout

    system = run_dir / "system.tlog"
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    runner = CliRunner()
    first = runner.invoke(cli, ["sync", "--server", server.url, str(run_dir)])
    assert first.exit_code == 0, first.output
    size = system.stat().st_size
    verdicts = [r for r in runlog.read_records(system) if isinstance(r, Finish)]
    assert len(verdicts) == 1 and verdicts[0].reason == local.reason
    with Api(server.url, api_key=ADMIN_KEY) as api:
        remote = api.run(local.id)
        assert remote.state == "crashed"
        with server.client() as client:
            assert client.get(f"/runs/{local.id}").json()["reason"] == local.reason
        stamp = remote.updated_at
        again = runner.invoke(cli, ["sync", "--server", server.url, str(run_dir)])
        assert again.exit_code == 0, again.output
        assert system.stat().st_size == size  # the verdict is written once
        assert api.run(local.id).updated_at == stamp  # and uploaded once
    assert trackline.open_run(run_dir).verdict is None  # now it is a record


def test_dead_training_process_with_a_live_agent_is_left_to_the_agent(
    tmp_path: Path, leftovers: Leftovers
) -> None:
    child, run_dir, agent_pid = start_child(tmp_path, leftovers)
    os.kill(agent_pid, signal.SIGSTOP)  # alive, but it cannot give its verdict yet
    try:
        kill_child(child)
        assert trackline.open_run(run_dir).state == "running"
        assert record_verdict(run_dir) is None
    finally:
        os.kill(agent_pid, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while trackline.open_run(run_dir).state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    local = trackline.open_run(run_dir)
    assert local.state == "crashed" and local.verdict is None  # the agent's record
    assert local.reason is not None and f"pid {child.pid}" in local.reason


def test_a_reused_pid_is_not_the_runs_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    run = trackline.init(project="p")
    run.log({"x": 1.0})
    assert run._writer is not None and run._writer.flush()
    path = run.dir / "processes.json"
    recorded = json.loads(path.read_text())
    me = recorded["writer"]
    assert me["pid"] == os.getpid() and recorded["agent"] is None
    assert trackline.open_run(run.dir).state == "running"  # this process writes it

    # The same pid, started at another time: another process than the run's.
    path.write_text(json.dumps({**recorded, "writer": {**me, "started": me["started"] - 1000}}))
    local = trackline.open_run(run.dir)
    assert local.state == "crashed"
    assert local.reason is not None and "(no agent)" in local.reason

    # Recorded on another host: its pids mean nothing here.
    path.write_text(
        json.dumps({**recorded, "host": "elsewhere", "writer": {"pid": 1, "started": 0}})
    )
    assert trackline.open_run(run.dir).state == "running"
    path.write_text(json.dumps(recorded))
    run.finish()
    assert trackline.open_run(run.dir).state == "finished"
    assert not path.exists()  # nothing left to judge: sync need not read the logs
