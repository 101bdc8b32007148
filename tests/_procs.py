"""Child processes that tests start (the ``leftovers`` fixture in conftest kills them)."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

#: Processes (or bare pids) that a test started.
Leftovers = list[subprocess.Popen[str] | int]


#: Lines for a training script run as a subprocess, after ``run.finish()``: wait until the
#: run's agent has exited (everything it had is shipped).
AGENT_GONE = (
    f"import sys as _sys; _sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
    "import _procs; _procs.wait_gone(run._agent.pid, 120)\n"
)


def wait_gone(pid: int, timeout: float = 20.0) -> None:
    """Wait until ``pid`` has exited (a zombie has); fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} still runs after {timeout}s")
