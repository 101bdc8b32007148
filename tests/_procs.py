"""Child processes that tests start (the ``leftovers`` fixture in conftest kills them)."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

#: Processes (or bare pids) that a test started.
Leftovers = list[subprocess.Popen[str] | int]


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
