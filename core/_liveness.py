"""Is a run's process still there? The verdict on a run whose processes all died.

At start the training process writes ``processes.json`` into the run directory:
the host, and the pid and start time of the process that writes ``main.tlog``
and of its agent (it removes the file once its finish record is on disk). While
the agent lives, it gives the verdict on a training process that ends without a
finish record. When both are gone (killed together, a machine that lost power),
nobody would: a reader that finds no finish record and neither process alive
calls the run ``crashed`` and says how it knows.

A process counts as alive only with the same pid *and* start time, so a pid the
system has given to another process since is not mistaken for the run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from . import _hooks
from ._warn import warn_once
from .records import Finish

FILE = "processes.json"
#: How far two readings of one process's start time may differ (clock tick rounding).
_SAME_START = 1.0


def start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch); ``None`` if it does not exist."""
    import psutil  # here: the training process needs it only at init

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def record(run_dir: Path, agent_pid: int | None) -> None:
    """Write ``processes.json`` for a run starting in this process; warns on failure."""
    pid = os.getpid()
    data = {
        "host": _hooks.hostname(),
        "writer": {"pid": pid, "started": start_time(pid)},
        "agent": None
        if agent_pid is None
        else {"pid": agent_pid, "started": start_time(agent_pid)},
    }
    scratch = run_dir / f".{FILE}.tmp"
    try:
        scratch.write_text(json.dumps(data))
        os.replace(scratch, run_dir / FILE)  # a reader never sees half a file
    except OSError as exc:
        with contextlib.suppress(OSError):
            scratch.unlink()
        warn_once("processes", f"trackline: could not record the run's processes ({exc})")


def forget(run_dir: Path) -> None:
    """Remove ``processes.json`` of a run whose finish record is on disk: nothing to judge.

    So that ``trackline sync`` need not read a finished run's logs to learn that.
    """
    with contextlib.suppress(OSError):
        (run_dir / FILE).unlink(missing_ok=True)


def alive(pid: int, started: float | None) -> bool:
    """Is process ``pid``, started at ``started``, still running (a zombie is not)?"""
    import psutil

    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > _SAME_START:
            return False  # another process that got the same pid
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True


def verdict(run_dir: Path, since: float = 0.0) -> Finish | None:
    """A ``crashed`` finish record if the run's writer and agent are both gone, else ``None``.

    ``None`` too where it cannot be known: no ``processes.json`` (a run from before
    it existed), or a run recorded on another host. The caller checks that the
    logs hold no finish record. The verdict's time is the logs' last change, and
    not before ``since`` (the last start: a file's time may lag the clock).
    """
    try:
        data = json.loads((run_dir / FILE).read_text())
        if data.get("host") != _hooks.hostname():
            return None
        processes = [_process(data["writer"], "writer"), _process(data.get("agent"), "agent")]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    found = [p for p in processes if p is not None]
    if not found or any(alive(pid, started) for _, pid, started in found):
        return None
    gone = " and ".join(
        f"{what} pid {pid} (started {_when(started)})" for what, pid, started in found
    )
    note = "" if len(found) > 1 else " (no agent)"
    return Finish(
        time=max(_last_change(run_dir), since),
        state="crashed",
        reason=f"{gone} gone{note}, no finish record",
    )


def _process(entry: Any, what: str) -> tuple[str, int, float | None] | None:
    if entry is None:
        return None
    started = entry.get("started")
    return what, int(entry["pid"]), None if started is None else float(started)


def _when(started: float | None) -> str:
    if started is None:
        return "at an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))


def _last_change(run_dir: Path) -> float:
    times = []
    for name in ("main.tlog", "system.tlog"):
        with contextlib.suppress(OSError):
            times.append((run_dir / name).stat().st_mtime)
    return max(times, default=time.time())
