"""Liveness: finished runs' agents are reaped; runs whose processes died are called crashed."""

from __future__ import annotations

import time

import psutil
import pytest
import trackline


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
