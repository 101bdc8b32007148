"""How a run ends when the process does: exit, exceptions, signals, forks, a hung disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import trackline
from trackline import TracklineWarning, runlog


def run_script(tmp_path: Path, body: str, **popen: object) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text("import trackline, os, sys, time\n" + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        cwd=tmp_path,
        **popen,
    )  # type: ignore[call-overload]


def only_run(trackline_env: Path) -> trackline.LocalRun:
    runs = trackline.list_runs(trackline_env)
    assert len(runs) == 1
    return runs[0]


def test_interpreter_exit_finishes_the_run(tmp_path: Path, trackline_env: Path) -> None:
    result = run_script(
        tmp_path,
        """
        run = trackline.init(project="p")
        run.log({"a": 1.0})
    """,
    )
    assert result.returncode == 0, result.stderr
    local = only_run(trackline_env)
    assert local.state == "finished" and local.history()[0]["a"] == 1.0


def test_unhandled_exception_marks_failed_with_traceback(
    tmp_path: Path, trackline_env: Path
) -> None:
    result = run_script(
        tmp_path,
        """
        run = trackline.init(project="p")
        run.log({"a": 1.0})
        raise RuntimeError("boom at step 1")
    """,
    )
    assert (
        result.returncode == 1 and "boom at step 1" in result.stderr
    )  # the previous hook still prints
    local = only_run(trackline_env)
    assert local.state == "failed" and local.exit_code == 1
    assert "RuntimeError: boom at step 1" in (local.traceback or "")


def test_keyboard_interrupt_marks_killed(tmp_path: Path, trackline_env: Path) -> None:
    result = run_script(
        tmp_path,
        """
        run = trackline.init(project="p")
        raise KeyboardInterrupt
    """,
    )
    assert result.returncode != 0
    assert only_run(trackline_env).state == "killed"


def test_sigterm_marks_killed_and_the_process_still_dies_of_it(
    tmp_path: Path, trackline_env: Path
) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent("""
        import time, trackline
        run = trackline.init(project="p")
        run.log({"a": 1.0})
        print("ready", flush=True)
        time.sleep(60)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    proc.stdout.close()
    local = only_run(trackline_env)
    assert local.state == "killed" and local.history()[0]["a"] == 1.0


def test_sigterm_chains_to_an_existing_handler(tmp_path: Path, trackline_env: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import signal
        def handler(signum, frame):
            print("user handler ran", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, handler)
        run = trackline.init(project="p")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    """,
    )
    assert result.returncode == 3 and "user handler ran" in result.stdout
    assert only_run(trackline_env).state == "killed"


def test_forked_child_does_nothing_and_says_so_once(tmp_path: Path, trackline_env: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import warnings
        run = trackline.init(project="p")
        run.log({"parent": 1.0})
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run.log({"child": 1.0})
                run.log({"child": 2.0})
                run.finish()
            print("child warnings:", len(caught), caught[0].message if caught else "", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        run.log({"parent": 2.0})
    """,
    )
    assert result.returncode == 0, result.stderr
    assert "child warnings: 1" in result.stdout and "forked child" in result.stdout
    local = only_run(trackline_env)
    assert local.state == "finished"
    assert [r.get("parent") for r in local.history()] == [1.0, 2.0]
    assert all("child" not in r for r in local.history())


def test_finish_returns_in_bounded_time_when_the_disk_hangs(
    trackline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_FINISH_TIMEOUT", "0.5")
    monkeypatch.setenv("TRACKLINE_MAPPED_LOG", "off")  # as on a network file system
    run = trackline.init(project="p")
    release, hung, unhung = threading.Event(), threading.Event(), threading.Event()

    def hung_write(self: runlog.LogFile, frames: object) -> None:
        hung.set()
        release.wait(60)  # a write to a dead network filesystem
        unhung.set()

    monkeypatch.setattr(runlog.LogFile, "write", hung_write)
    run.log({"a": 1.0})
    with pytest.warns(TracklineWarning, match="not synced"):
        run.finish()
    # finish returned while the write was still hanging: bounded by its timeout, not the disk.
    assert hung.is_set() and not unhung.is_set()
    release.set()


def test_finish_returns_in_bounded_time_when_fsync_hangs_on_a_mapped_log(
    trackline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_FINISH_TIMEOUT", "0.5")
    run = trackline.init(project="p")
    assert run._writer is not None and run._writer._file.room  # rows go to the mapping
    release, hung, unhung = threading.Event(), threading.Event(), threading.Event()

    def hung_fsync(self: runlog.RawFile) -> None:
        hung.set()
        release.wait(60)
        unhung.set()

    monkeypatch.setattr(runlog.RawFile, "fsync", hung_fsync)
    run.log({"a": 1.0})
    with pytest.warns(TracklineWarning, match="not synced"):
        run.finish()
    assert hung.is_set() and not unhung.is_set()  # returned while fsync still hung
    release.set()
    assert [r["a"] for r in trackline.open_run(run.dir).history()] == [1.0]


def test_disk_errors_warn_and_are_retried(
    trackline_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_MAPPED_LOG", "off")  # the queued path: see test_disk_full
    run = trackline.init(project="p")
    real_write = runlog.LogFile.write
    failures = {"left": 3}

    def flaky_write(self: runlog.LogFile, frames: list[bytes]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        real_write(self, frames)

    monkeypatch.setattr(runlog.LogFile, "write", flaky_write)
    for i in range(100):
        run.log({"i": i})
    deadline = time.monotonic() + 10
    while failures["left"] and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.warns(TracklineWarning, match="could not write"):
        run.finish()
    assert [r["i"] for r in trackline.open_run(run.dir).history()] == list(range(100))
