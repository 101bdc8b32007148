"""The rule every adapter follows for its run (integrations/_lease.py) and Run.reopen()."""

from __future__ import annotations

from pathlib import Path

import pytest
import trackline
from trackline.integrations._lease import RunLease, checkpoint_artifact_name


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLINE_MODE", "offline")
    monkeypatch.setenv("TRACKLINE_DIR", str(tmp_path / "tl"))


def test_reopen_appends_to_the_same_run(tmp_path: Path) -> None:
    run = trackline.init(project="lease", name="first")
    run.log({"loss": 1.0})
    assert run.reopen() is run  # still running: itself
    run.finish()
    again = run.reopen()
    assert (again.id, again.dir, again.mode, again.state) == (run.id, run.dir, run.mode, "running")
    again.log({"loss": 0.5})
    again.finish()
    read = trackline.open_run(run.dir)
    assert [r["loss"] for r in read.history()] == [1.0, 0.5] and read.name == "first"


def test_a_lease_starts_finishes_and_reopens_its_own_run() -> None:
    lease = RunLease()
    started: list[str] = []

    def start() -> trackline.Run:
        run = trackline.init(project="lease")
        started.append(run.id)
        return run

    run = lease.acquire(start)
    assert lease.owned and lease.started and started == [run.id]
    assert lease.acquire(start) is run and not lease.started  # running: the same, not new
    run.finish()  # the adapter's training ended
    again = lease.acquire(start)
    assert again.id == run.id and lease.started and started == [run.id]  # reopened, not new
    again.finish()
    lease.forget()  # a new trial
    fresh = lease.acquire(start)
    assert fresh.id != run.id and started == [run.id, fresh.id]
    fresh.finish()


def test_a_users_run_and_the_current_run_are_never_the_leases() -> None:
    mine = trackline.init(project="lease")
    given = RunLease(mine)
    assert given.acquire(lambda: pytest.fail("must not start")) is mine and not given.owned
    mine.finish()
    assert given.acquire(lambda: pytest.fail("must not start")) is mine  # given: as it is
    given.forget()
    assert given.run is mine
    current = trackline.init(project="lease")
    found = RunLease()
    assert found.acquire(lambda: pytest.fail("must not start")) is current
    assert not found.owned
    current.finish()
    assert checkpoint_artifact_name("abc123") == "model-abc123"
