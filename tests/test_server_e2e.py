"""The whole path on real processes: init -> log -> agent -> uvicorn on loopback -> Api.

And the faults, each ending with every point on the server exactly once: the
server killed and restarted mid-run, the agent killed and ``trackline sync``
afterwards, the network refusing connections for a while; 50 runs streaming at
once; two server processes sharing one database and one file store.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    FlakyProxy,
    Postgres,
    ServerProcess,
    canon,
    fixture_postgres,
    fixture_server,
    wait_for,
)
from click.testing import CliRunner
from trackline import RunData, runlog
from trackline import _wire_types as wt
from trackline._cli import main as cli
from trackline._client import Api
from trackline._transport import Shipper, read_progress
from trackline.records import Finish, Metrics, RunStart, SystemSample
from trackline.runlog import LogFile

pytestmark = pytest.mark.slow


def logged_points(run_dir: Path) -> dict[str, int]:
    """How many points of each key the run log holds (a step logged twice counts twice)."""
    counts: dict[str, int] = {}
    for record in runlog.read_records(run_dir / "main.tlog"):
        if type(record) is Metrics:
            for key in record.values:
                counts[key] = counts.get(key, 0) + 1
    return counts


def assert_server_has(api: Api, run_dir: Path) -> None:
    """The server's run equals the local one, value for value, and holds each point once."""
    local = trackline.open_run(run_dir)
    remote = api.run(local.id)
    for field in ("name", "state", "tags", "notes", "config", "summary", "exit_code"):
        assert canon(getattr(remote, field)) == canon(getattr(local, field)), field
    assert canon(remote.history()) == canon(local.history())
    assert canon(remote.system()) == canon(local.system())
    stored = api._json(wt.MetricKeys, "POST", "/metrics/keys", json={"runs": [local.id]}).points
    assert stored == logged_points(run_dir)
    # One type for both: what is read locally and from the server is the same RunData.
    assert isinstance(local, RunData) and isinstance(remote, RunData)
    assert remote.git == local.git
    assert remote.environment == local.environment


def agent_done(run: trackline.Run, timeout: float = 120.0) -> None:
    """Wait for the run's agent to exit (it leaves once everything is shipped)."""
    agent = run._agent
    assert agent is not None, "the run has no agent"
    wait_gone(agent.pid, timeout)


def wait_gone(pid: int, timeout: float) -> None:
    def gone() -> bool:
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout, what=f"process {pid} to exit")


@pytest.fixture
def apis() -> Iterator[Callable[..., Api]]:
    """Makes ``Api`` clients, closed at teardown."""
    made: list[Api] = []

    def make(*args: Any) -> Api:
        made.append(Api(*args))
        return made[-1]

    yield make
    for api in made:
        api.close()


@pytest.fixture
def online(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    """Runs in this test go online to ``server``; the agent retries quickly."""
    monkeypatch.setenv("TRACKLINE_SERVER", server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_UPLOAD_BACKOFF_MAX", "0.5")
    monkeypatch.setenv("TRACKLINE_HEARTBEAT_INTERVAL", "1")
    return server


def test_whole_path(online: ServerProcess, tmp_path: Path, apis: Callable[..., Api]) -> None:
    checkpoint = tmp_path / "model.bin"
    checkpoint.write_bytes(os.urandom(3000))
    run = trackline.init(
        project="e2e",
        config={"lr": 1e-3, "arch": {"depth": 4}, "nan": float("nan")},
        tags=["first", "gpu"],
        notes="the whole path",
        group="g1",
    )
    run.define_metric("val/loss", summary="min")
    for step in range(500):
        run.log({"train/loss": 1.0 / (step + 1), "epoch": step // 100, "note": f"s{step}"})
        if step % 100 == 99:
            run.log({"val/loss": 2.0 / (step + 1), "val/inf": float("inf")}, step=step)
    run.log({"train/loss": float("nan")}, step=42)
    run.save(str(checkpoint))
    api = apis()
    # The last log reaches the server while the run lives (how fast is bench/'s to say).
    run.log({"live/marker": 1.0}, step=1000)
    wait_for(
        lambda: any("live/marker" in row for row in api.run(run.id).history(keys=["live/marker"])),
        timeout=30,
        what="a live row on the server",
    )
    assert api.run(run.id).state == "running"
    run.summary["best"] = 0.5
    run.finish()
    agent_done(run)
    assert_server_has(api, run.dir)
    remote = api.runs("e2e")[0]
    assert remote.id == run.id and remote.group == "g1" and remote.state == "finished"
    assert remote.environment is not None and remote.system()
    files = {f["path"]: f for f in remote.files()}
    assert files["files/model.bin"]["uploaded"]
    assert remote.file("files/model.bin") == checkpoint.read_bytes()
    frame = remote.history(pandas=True)
    assert list(frame["_step"])[:3] == [0, 1, 2]


def test_server_killed_and_restarted_mid_run(
    online: ServerProcess, apis: Callable[..., Api]
) -> None:
    run = trackline.init(project="faults")
    api = apis()
    for step in range(200):
        run.log({"x": float(step), "y": step})
    wait_for(lambda: api.run(run.id).last_step >= 199, timeout=30, what="first rows")
    online.kill()
    for step in range(200, 400):
        run.log({"x": float(step), "y": step})
    # Not a sleep: the agent has really tried the dead server and says so.
    wait_for(
        lambda: (read_progress(run.dir) or {}).get("error") is not None,
        timeout=30,
        what="the agent to fail against the killed server",
    )
    online.start()
    for step in range(400, 600):
        run.log({"x": float(step), "y": step})
    run.finish()
    agent_done(run)
    assert_server_has(api, run.dir)


def test_agent_killed_then_sync(online: ServerProcess, apis: Callable[..., Api]) -> None:
    run = trackline.init(project="faults")
    api = apis()
    for step in range(100):
        run.log({"x": float(step)})
    wait_for(lambda: api.run(run.id).last_step >= 99, timeout=30, what="first rows")
    assert run._agent is not None
    os.kill(run._agent.pid, signal.SIGKILL)
    wait_gone(run._agent.pid, 30)
    for step in range(100, 300):
        run.log({"x": float(step)})
    run.finish()
    assert api.run(run.id).last_step < 299  # nobody ships any more
    runner = CliRunner()
    result = runner.invoke(cli, ["sync", str(run.dir)])
    assert result.exit_code == 0, result.output
    assert_server_has(api, run.dir)
    before = api.run(run.id)
    offsets = api._json(wt.Offsets, "GET", f"/runs/{run.id}/streams").offsets
    again = runner.invoke(cli, ["sync", str(run.dir)])
    assert again.exit_code == 0, again.output
    assert api._json(wt.Offsets, "GET", f"/runs/{run.id}/streams").offsets == offsets
    assert api.run(run.id).updated_at == before.updated_at  # nothing applied twice
    status = runner.invoke(cli, ["status"])
    assert status.exit_code == 0 and run.id in status.output and "100%" in status.output


def test_network_refusing_connections(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, apis: Callable[..., Api]
) -> None:
    proxy = FlakyProxy(server.port).accept()
    monkeypatch.setenv("TRACKLINE_SERVER", proxy.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_UPLOAD_BACKOFF_MAX", "0.5")
    api = apis(server.url, ADMIN_KEY)
    try:
        run = trackline.init(project="faults")
        for step in range(100):
            run.log({"x": float(step)})
        wait_for(lambda: api.run(run.id).last_step >= 99, timeout=30, what="first rows")
        proxy.refuse()
        for step in range(100, 300):
            run.log({"x": float(step)})
            if step % 50 == 0:
                time.sleep(0.5)
        assert api.run(run.id).last_step < 299
        proxy.accept()
        for step in range(300, 400):
            run.log({"x": float(step)})
        run.finish()
        agent_done(run)
        assert_server_has(api, run.dir)
    finally:
        proxy.refuse()


def _stream_one(index: int, base: Path, url: str, errors: list[str]) -> None:
    run_id = f"many{index:02d}"
    run_dir = base / run_id
    run_dir.mkdir(parents=True)
    log = LogFile(run_dir / "main.tlog")
    system = LogFile(run_dir / "system.tlog")
    shipper = Shipper(run_dir, url, ADMIN_KEY, backoff_max=0.5, budget=1.0)
    try:
        log.append(RunStart(run_id=run_id, project="many", name=run_id, start_time=time.time()))
        step = 0
        for _ in range(10):
            for _ in range(100):
                log.append(Metrics(step, time.time(), {"a": float(step), "b": step % 7}))
                step += 1
            system.append(SystemSample(time.time(), {"cpu": float(index)}))
            shipper.pump()
            time.sleep(0.05)
        log.append(Finish(time.time(), "finished", 0))
        deadline = time.monotonic() + 120
        while not shipper.pump(final=True):
            if time.monotonic() > deadline:
                errors.append(f"{run_id}: not shipped ({shipper.error})")
                return
            time.sleep(0.05)
    except Exception as exc:
        errors.append(f"{run_id}: {exc!r}")
    finally:
        shipper.close()
        log.close()
        system.close()


def test_fifty_runs_streaming_at_once(
    server: ServerProcess, tmp_path: Path, apis: Callable[..., Api]
) -> None:
    errors: list[str] = []
    threads = [
        threading.Thread(target=_stream_one, args=(i, tmp_path / "many", server.url, errors))
        for i in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    api = apis(server.url, ADMIN_KEY)
    found = api.runs("many")
    assert len(found) == 50
    assert {r.state for r in found} == {"finished"}
    for run_dir in sorted((tmp_path / "many").iterdir())[::7]:
        assert_server_has(api, run_dir)
    points = api._json(
        wt.MetricKeys, "POST", "/metrics/keys", json={"runs": [r.id for r in found]}
    ).points
    assert points == {"a": 50 * 1000, "b": 50 * 1000}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_servers_share_storage(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, apis: Callable[..., Api]
) -> None:
    """Stateless servers: what one ingests, the other serves; offsets are shared too."""
    data_dir = tmp_path / "shared"
    url = None
    if backend == "postgresql":
        cluster: Postgres = request.getfixturevalue("postgres")
        url = cluster.new_database()
    first = ServerProcess(data_dir, url).start()
    second = ServerProcess(data_dir, url).start()
    try:
        run_dir = tmp_path / "runs" / "shared1"
        run_dir.mkdir(parents=True)
        log = LogFile(run_dir / "main.tlog")
        log.append(RunStart(run_id="shared1", project="two", name="n", start_time=time.time()))
        for step in range(50):
            log.append(Metrics(step, time.time(), {"v": float(step)}))
        with Shipper(run_dir, first.url, ADMIN_KEY, live=False) as shipper:
            assert wait_for(lambda: shipper.pump(final=True), timeout=30)
        for step in range(50, 100):
            log.append(Metrics(step, time.time(), {"v": float(step)}))
        (run_dir / "files").mkdir()
        log.close()
        with Shipper(run_dir, second.url, ADMIN_KEY, live=False) as shipper:
            assert wait_for(lambda: shipper.pump(final=True), timeout=30)
        for proc in (first, second):
            assert_server_has(apis(proc.url, ADMIN_KEY), run_dir)
    finally:
        first.stop()
        second.stop()
