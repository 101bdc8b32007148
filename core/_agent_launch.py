"""Starting the agent process of a run, from the training process.

The agent is a fresh interpreter (``python -m trackline._agent``) in its own
session, started with ``posix_spawn`` (never a fork of the training process).
Its stdin is a pipe whose write end only the training process holds: end of
file tells the agent, at once, that the run finished or the process died.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

from . import _ranks
from ._settings import Settings, env_flag
from ._warn import warn_once

#: Agents started by this process and not yet reaped (they outlive their runs).
_spawned: set[int] = set()


class AgentHandle:
    """The training process's side of a running agent."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self._pipe: int | None = pipe

    def finished(self) -> None:
        """Tell the agent the run is over (closes its stdin); never waits for it.

        A daemon thread collects the agent when it exits (it may upload for a
        while), so that a long-lived process (a notebook, a server) keeps no zombie.
        """
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):
            os.close(self._pipe)
        self._pipe = None
        reap()
        if self.pid in _spawned:
            threading.Thread(
                target=_wait, args=(self.pid,), name="trackline-reap", daemon=True
            ).start()


def _wait(pid: int) -> None:
    """Block until agent ``pid`` exits and collect it."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
    _spawned.discard(pid)


def reap() -> None:
    """Collect agents that have exited, without waiting for the others."""
    for pid in list(_spawned):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _spawned.discard(pid)


def command(run_dir: Path, settings: Settings, rank: int | None = None) -> list[str]:
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
    if rank is not None:
        leader = _ranks.local_leader(rank)
        argv += ["--rank", str(rank), "--host-stats", "1" if leader else "0"]
        argv += ["--gpu-stats", "whole" if leader or _ranks.devices_split(rank) else "own"]
    return argv


def start(run_dir: Path, settings: Settings, rank: int | None = None) -> AgentHandle | None:
    """Start the agent for ``run_dir``; ``None`` (with a warning) if it cannot start."""
    if not env_flag("TRACKLINE_AGENT", True):
        return None
    reap()
    argv = command(run_dir, settings, rank)
    read_end = write_end = log = -1
    try:
        read_end, write_end = os.pipe()  # both ends close on exec (PEP 446)
        log = os.open(run_dir / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        pid = os.posix_spawn(
            argv[0],
            argv,
            {**os.environ, "PYTHONSAFEPATH": "1"},  # the user's cwd must not shadow modules
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
            setsid=True,
        )
    except OSError as exc:
        if write_end >= 0:
            os.close(write_end)
        warn_once(
            "agent", f"trackline: could not start the agent ({exc}); no system stats for this run"
        )
        return None
    finally:
        for fd in (read_end, log):
            if fd >= 0:
                os.close(fd)
    _spawned.add(pid)
    return AgentHandle(pid, write_end)
