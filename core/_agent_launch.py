"""Starting the agent process of a run, from the training process.

The agent is a fresh interpreter (``python -m trackline._agent``) in its own
session, never a fork of the training process. Its stdin is a pipe that only
the training process holds: end of file tells the agent, at once, that the
run finished or the process died.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ._settings import Settings, env_flag
from ._warn import warn_once


class AgentHandle:
    """The training process's side of a running agent."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def finished(self) -> None:
        """Tell the agent the run is over (closes its stdin); never waits for it."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass
        # Reap it later without blocking: Popen's own bookkeeping does, on the next poll.
        self.process.poll()


def command(run_dir: Path, settings: Settings) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "trackline._agent",
        "--run-dir",
        os.fspath(run_dir.resolve()),
        "--pid",
        str(os.getpid()),
        "--interval",
        repr(settings.system_interval),
        "--git-diff-limit",
        str(settings.git_diff_limit),
    ]
    if settings.mode == "online" and settings.server:
        argv += ["--server", settings.server]
    return argv


def start(run_dir: Path, settings: Settings) -> AgentHandle | None:
    """Start the agent for ``run_dir``; ``None`` (with a warning) if it cannot start."""
    if not env_flag("TRACKLINE_AGENT", True):
        return None
    try:
        log = open(run_dir / "agent.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            process = subprocess.Popen(
                command(run_dir, settings),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                cwd=os.getcwd(),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
    except OSError as exc:
        warn_once("agent", f"trackline: could not start the agent ({exc}); no system stats for this run")
        return None
    return AgentHandle(process)
