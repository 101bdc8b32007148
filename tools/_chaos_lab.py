"""The chaos lab: servers on SQLite or PostgreSQL, training processes, RSS sampling, counts.

Servers and PostgreSQL clusters are the test suite's own (``tests/_server.py``),
so that the harness and the tests start them one way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chaos_train import read_counter  # noqa: E402
from _server import ADMIN_KEY, Postgres, ServerProcess, free_port, postgres_available  # noqa: E402

__all__ = [
    "ADMIN_KEY",
    "Lab",
    "Postgres",
    "RssSampler",
    "ServerProcess",
    "Training",
    "free_port",
    "postgres_available",
]


class ChaosError(Exception):
    """A scenario could not be carried out (as opposed to a product failure it measured)."""


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until truthy; raises ``ChaosError`` at the deadline."""
    deadline = time.monotonic() + timeout
    error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:
            error = exc
        if time.monotonic() > deadline:
            raise ChaosError(f"timed out after {timeout:.0f}s waiting for {what} ({error!r})")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


class RssSampler:
    """Peak resident set size of a process (and its children), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.baseline = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        try:
            proc = psutil.Process(self.pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            return int(total)
        except psutil.Error:
            return 0

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def stop(self) -> int:
        """The peak in bytes."""
        self._stop.set()
        self._thread.join(5)
        return self.peak


@dataclass
class Training:
    """A ``_chaos_train.py`` process: its run directory, agent pid and returned-call counter."""

    process: subprocess.Popen[str]
    run_dir: Path
    agent_pid: int
    counter: Path
    rss: RssSampler

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    def logged(self) -> int:
        return read_counter(self.counter)

    def wait_logged(self, rows: int, timeout: float = 60.0) -> int:
        def enough() -> bool:
            if self.process.poll() is not None:
                raise ChaosError(f"training exited with {self.process.returncode}: {self.err()}")
            return self.logged() >= rows

        wait_until(enough, timeout, f"{rows} rows logged")
        return self.logged()

    def wait(self, timeout: float = 120.0) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ChaosError(f"training still runs after {timeout:.0f}s") from None
        self.rss.stop()
        return code

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.rss.stop()

    def err(self) -> str:
        path = self.counter.with_suffix(".err")
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@dataclass
class Lab:
    """Where a scenario's files go, the server it talks to, and what to clean up."""

    root: Path
    server: ServerProcess
    _pids: list[int] = field(default_factory=list)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def env(self, trackline_dir: Path, key: str = ADMIN_KEY) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
        env.update(
            TRACKLINE_DIR=str(trackline_dir),
            TRACKLINE_SERVER=self.server.url,
            TRACKLINE_API_KEY=key,
            TRACKLINE_UPLOAD_BACKOFF_MAX="0.5",
            TRACKLINE_HEARTBEAT_INTERVAL="1",
            TRACKLINE_SYSTEM_INTERVAL="1",
            TRACKLINE_UPLOAD_GIVE_UP="120",
            PYTHONWARNINGS="default",
        )
        return env

    def train(
        self,
        name: str,
        steps: int,
        *args: str,
        trackline_dir: Path | None = None,
        key: str = ADMIN_KEY,
        rate: float = 5000.0,
    ) -> Training:
        """Start ``_chaos_train.py``; returns once the run and its agent exist."""
        work = self.root / name
        work.mkdir(parents=True, exist_ok=True)
        counter = work / "counter"
        argv = [
            sys.executable,
            str(Path(__file__).resolve().parent / "_chaos_train.py"),
            "--project",
            name,
            "--steps",
            str(steps),
            "--counter",
            str(counter),
            "--rate",
            str(rate),
            *args,
        ]
        env = self.env(trackline_dir or work / "tl", key)
        with open(counter.with_suffix(".err"), "w") as err:
            proc = subprocess.Popen(
                argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=err, text=True
            )
        self._procs.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        if len(first) != 2:
            proc.kill()
            proc.wait()
            raise ChaosError(f"training did not start: {counter.with_suffix('.err').read_text()}")
        agent_pid = int(first[1])
        if agent_pid:
            self._pids.append(agent_pid)
        return Training(proc, Path(first[0]), agent_pid, counter, RssSampler(proc.pid))

    def sync(self, run_dir: Path, key: str = ADMIN_KEY, timeout: float = 120.0) -> str:
        """``trackline sync RUN_DIR`` in a subprocess; its output (raises if it fails)."""
        env = self.env(run_dir.parent.parent, key)
        result = subprocess.run(
            [sys.executable, "-m", "trackline", "sync", str(run_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise ChaosError(f"trackline sync failed: {result.stdout}{result.stderr}"[-2000:])
        return result.stdout

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return self.server.client(key)

    def new_user(self, name: str) -> str:
        """A user's API key (created by the admin)."""
        with self.client() as client:
            response = client.post("/users", json={"name": name})
            response.raise_for_status()
            return str(response.json()["api_key"])

    def cleanup(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for pid in self._pids:
            kill_pid(pid)
        self._procs.clear()
        self._pids.clear()


@dataclass(frozen=True)
class Remote:
    """What the server holds of a run's ``x`` series."""

    rows: int  # distinct steps
    points: int  # stored points (a step stored twice counts twice)
    steps: frozenset[int]
    state: str | None


def remote_rows(server: ServerProcess, run_id: str) -> Remote:
    """The run's history as the server's query API returns it."""
    with server.client() as client:
        found = client.get(f"/runs/{run_id}")
        if found.status_code == 404:
            return Remote(0, 0, frozenset(), None)
        found.raise_for_status()
        history = client.get(f"/runs/{run_id}/history", params={"keys": ["x"]})
        history.raise_for_status()
        columns = history.json()
        keys = client.post("/metrics/keys", json={"runs": [run_id]})
        keys.raise_for_status()
    values = columns["values"].get("x") or [None] * len(columns["steps"])
    steps = [s for s, x in zip(columns["steps"], values, strict=True) if x is not None]
    points = int(keys.json()["points"].get("x", 0))
    return Remote(len(set(steps)), max(points, len(steps)), frozenset(steps), found.json()["state"])


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[str | None]:
    """Mount a tmpfs of ``size`` at ``path``; yields ``None``, or why it cannot."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        yield f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}"
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
