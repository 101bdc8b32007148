"""SIGKILL of the training process: what was logged survives, and the agent calls it crashed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import trackline
from _procs import Leftovers, wait_gone


def start_child(
    tmp_path: Path, body: str, leftovers: Leftovers
) -> tuple[subprocess.Popen[str], Path, int]:
    """Start a script that opens a run, prints its dir and agent pid, then runs ``body``."""
    script = tmp_path / "child.py"
    script.write_text(
        "import time, trackline\n"
        "run = trackline.init(project='crash')\n"
        "print(run.dir, run._agent.pid, flush=True)\n" + textwrap.dedent(body)
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    leftovers.append(child)
    assert child.stdout is not None
    run_dir, agent_pid = child.stdout.readline().split()
    leftovers.append(int(agent_pid))
    return child, Path(run_dir), int(agent_pid)


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=20) == -signal.SIGKILL
    assert child.stdout is not None
    child.stdout.close()


def rows_without_time(run: trackline.LocalRun) -> list[dict[str, object]]:
    return [{k: v for k, v in row.items() if k != "_time"} for row in run.history()]


def test_rows_logged_before_sigkill_survive(tmp_path: Path, leftovers: Leftovers) -> None:
    child, run_dir, agent_pid = start_child(
        tmp_path,
        """
        for i in range(10_000):
            run.log({"x": float(i)})
        print("logged", flush=True)
        time.sleep(60)
        """,
        leftovers,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "logged"
    kill(child)  # the contract: every log() that returned is in the run log
    wait_gone(agent_pid)
    run = trackline.open_run(run_dir)
    assert rows_without_time(run) == [{"_step": i, "x": float(i)} for i in range(10_000)]
    assert run.state == "crashed" and run.end_time is not None


def test_sigkill_in_the_middle_of_logging_leaves_no_gap_and_no_corrupt_row(
    tmp_path: Path, leftovers: Leftovers
) -> None:
    child, run_dir, agent_pid = start_child(
        tmp_path,
        """
        i = 0
        while True:
            run.log({"x": float(i)})
            i += 1
        """,
        leftovers,
    )
    time.sleep(1.0)  # let it log for a while, then kill it wherever it is
    kill(child)
    wait_gone(agent_pid)
    run = trackline.open_run(run_dir)
    rows = rows_without_time(run)
    assert rows, "nothing was logged in a second"
    assert rows == [{"_step": i, "x": float(i)} for i in range(len(rows))]
    assert run.state == "crashed"
