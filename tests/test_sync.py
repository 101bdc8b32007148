"""``trackline sync`` and ``trackline status``: offline and interrupted runs to a server."""

from __future__ import annotations

import time

import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess, fixture_shared_server, free_port  # noqa: F401
from click.testing import CliRunner
from trackline import _wire_types as wt
from trackline._cli import main as cli
from trackline._client import Api
from trackline._transport import Shipper


@pytest.fixture(autouse=True)
def no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")


def offline_run(project: str, steps: int, **config: object) -> trackline.Run:
    run = trackline.init(project=project, mode="offline", config=dict(config))
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1), "step_text": f"s{step}"})
    run.finish()
    return run


def test_sync_uploads_offline_runs_once(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [offline_run("offline", 100 * (i + 1), seed=i) for i in range(3)]
    monkeypatch.setenv("TRACKLINE_SERVER", shared_server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    runner = CliRunner()
    before = runner.invoke(cli, ["status"])
    assert before.exit_code == 0 and before.output.count("never") == 3
    result = runner.invoke(cli, ["sync"])  # default: TRACKLINE_DIR
    assert result.exit_code == 0, result.output
    assert "3 run(s) up to date" in result.output
    with Api() as api:
        found = {r.id: r for r in api.runs("offline")}
        assert set(found) == {r.id for r in runs}
        for run in runs:
            local = trackline.open_run(run.dir)
            remote = found[run.id]
            assert remote.history() == local.history()
            assert remote.config == local.config and remote.state == "finished"
        stamps = {r.id: api.run(r.id).updated_at for r in runs}
        again = runner.invoke(cli, ["sync", *(str(r.dir) for r in runs)])
        assert again.exit_code == 0, again.output
        assert {r.id: api.run(r.id).updated_at for r in runs} == stamps  # nothing changed
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0 and status.output.count("100%") == 3


def test_sync_resumes_an_interrupted_upload(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = offline_run("resume", 3000)
    with Shipper(run.dir, shared_server.url, ADMIN_KEY, live=False, batch_kb=16, budget=0) as first:
        assert first.pump(final=True) is False  # one batch, then "killed"
        partial = first.committed
    assert partial is not None and 0 < partial["main"] < (run.dir / "main.tlog").stat().st_size
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    result = CliRunner().invoke(cli, ["sync", "--server", shared_server.url, str(run.dir)])
    assert result.exit_code == 0, result.output
    with Api(shared_server.url, ADMIN_KEY) as api:
        remote = api.run(run.id)
        assert remote.history() == trackline.open_run(run.dir).history()
        points = api._json(wt.MetricKeys, "POST", "/metrics/keys", json={"runs": [run.id]}).points
        assert points == {"loss": 3000, "step_text": 3000}


def test_sync_reports_a_server_that_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    run = offline_run("down", 10)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["sync", "--server", url, "--timeout", "1", str(run.dir)])
    assert result.exit_code != 0
    # It gave up for want of progress (--timeout), not after retrying for its usual day.
    assert "not fully uploaded" in result.output and "no progress" in result.output
    status = CliRunner().invoke(cli, ["status"])
    assert "ConnectError" in status.output or "Connect" in status.output


def test_sync_needs_a_server() -> None:
    offline_run("noserver", 1)
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code != 0 and "no server" in result.output


def test_sync_with_a_wrong_key_fails_clearly(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = offline_run("badkey", 5)
    result = CliRunner().invoke(
        cli, ["sync", "--server", shared_server.url, "--key", "tl_wrong", str(run.dir)]
    )
    assert result.exit_code != 0 and "invalid API key" in result.output


def test_sync_of_a_run_with_an_agent(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offline run with its agent's system stats, synced after the agent has left."""
    monkeypatch.setenv("TRACKLINE_AGENT", "1")
    run = trackline.init(project="agent-offline", mode="offline")
    for step in range(20):
        run.log({"x": float(step)})
        time.sleep(0.05)
    run.finish()
    deadline = time.monotonic() + 60
    assert run._agent is not None
    import psutil

    while psutil.pid_exists(run._agent.pid):
        try:
            if psutil.Process(run._agent.pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        assert time.monotonic() < deadline, "the agent did not exit"
        time.sleep(0.1)
    result = CliRunner().invoke(
        cli, ["sync", "--server", shared_server.url, "--key", ADMIN_KEY, str(run.dir)]
    )
    assert result.exit_code == 0, result.output
    local = trackline.open_run(run.dir)
    with Api(shared_server.url, ADMIN_KEY) as api:
        remote = api.run(run.id)
        assert remote.system() == local.system() and remote.system()
        assert remote.state == "finished"
        assert remote.environment is not None
