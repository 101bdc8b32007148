"""The fault scenarios of the chaos harness, each measured end to end.

A scenario returns an ``Outcome``: rows the training process was told were logged
(``run.log`` returned), rows the server's query API returns, how many of the
logged ones are missing there (lost) or stored twice (duplicated), the peak RSS
that matters for it, and the problems found (none: the scenario passed).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trackline
from _chaos_lab import ChaosError, Lab, RssSampler, Training, alive, remote_rows, tmpfs, wait_until

#: A key holder's request may grow the server's RSS by at most this much.
RSS_BUDGET = 64 * 1024 * 1024
#: A gzip bomb inflates to this many MB (past the server's 512 MB decompressed limit).
BOMB_MB = 600


@dataclass
class Outcome:
    logged: int | None = None
    on_server: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    peak_rss: int | None = None
    rss_of: str = "sdk"  # the training process and its agent, or "server"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


@dataclass(frozen=True)
class Size:
    """How much each scenario does: ``--quick`` or the full form."""

    steps: int
    rate: float
    bombs: int


QUICK = Size(steps=3000, rate=3000.0, bombs=2)
FULL = Size(steps=30000, rate=5000.0, bombs=4)
#: Padded rows that fit on the 2 MB disk of ``disk_full`` once space is freed.
DISK_ROWS = 5000


def count(lab: Lab, training: Training, logged: int, state: str, outcome: Outcome) -> Outcome:
    """Compare the first ``logged`` steps with the server's copy of the run.

    After a kill, ``logged`` is every ``log()`` that had returned: all of them are
    on disk (the SDK's contract), so all of them must reach the server.
    """
    remote = remote_rows(lab.server, training.run_id)
    outcome.logged = logged
    outcome.on_server = remote.rows
    outcome.lost = len(set(range(logged)) - remote.steps)
    outcome.duplicated = remote.points - remote.rows
    outcome.peak_rss = training.rss.peak
    if outcome.lost:
        outcome.problems.append(f"{outcome.lost} rows lost")
    if outcome.duplicated:
        outcome.problems.append(f"{outcome.duplicated} rows duplicated")
    if remote.state != state:
        outcome.problems.append(f"server says {remote.state}, not {state}")
    return outcome


def agent_gone(training: Training, outcome: Outcome, timeout: float = 60.0) -> None:
    """Wait for the agent to ship everything and leave; a problem if it stays."""
    if not training.agent_pid:
        outcome.problems.append("the run has no agent")
        return
    try:
        wait_until(lambda: not alive(training.agent_pid), timeout, "the agent to exit")
    except ChaosError:
        outcome.problems.append(f"agent still running {timeout:.0f}s after the run ended")


def finished(training: Training, outcome: Outcome) -> None:
    code = training.wait()
    if code != 0:
        outcome.problems.append(f"training exited with {code}: {training.err()[-300:]}")


def kill_now(training: Training, agent_too: bool = False) -> int:
    """SIGKILL the training process (and its agent) while it logs; the rows whose
    ``log()`` had returned (its counter, written after each call, outlives it)."""
    if agent_too:
        os.kill(training.agent_pid, signal.SIGKILL)
    training.kill()
    return training.logged()


# -- the scenarios ---------------------------------------------------------------------


def kill_training(lab: Lab, size: Size) -> Outcome:
    """SIGKILL the training process mid-logging: the agent ships the rest, says crashed."""
    training = lab.train("kill_training", size.steps, "--hold", rate=size.rate)
    training.wait_logged(size.steps // 2)
    logged = kill_now(training)
    outcome = Outcome()
    agent_gone(training, outcome)
    return count(lab, training, logged, "crashed", outcome)


def kill_agent(lab: Lab, size: Size) -> Outcome:
    """SIGKILL the agent mid-run; training goes on; ``trackline sync`` ships the rest."""
    training = lab.train("kill_agent", size.steps, rate=size.rate)
    training.wait_logged(size.steps // 3)
    os.kill(training.agent_pid, signal.SIGKILL)
    wait_until(lambda: not alive(training.agent_pid), 30, "the agent to die")
    outcome = Outcome()
    finished(training, outcome)
    lab.sync(training.run_dir)
    return count(lab, training, training.logged(), "finished", outcome)


def kill_server(lab: Lab, size: Size) -> Outcome:
    """SIGKILL the server mid-upload, restart it: the agent resumes from its offset."""
    training = lab.train("kill_server", size.steps, rate=size.rate / 3)
    wait_until(lambda: remote_rows(lab.server, training.run_id).rows > 0, 60, "first rows")
    lab.server.kill()
    outcome = Outcome(notes=[f"killed with {training.logged()} rows logged"])
    time.sleep(1.0)
    lab.server.start()
    finished(training, outcome)
    agent_gone(training, outcome)
    return count(lab, training, training.logged(), "finished", outcome)


def server_down(lab: Lab, size: Size) -> Outcome:
    """The server is down for the whole run, then up: ``trackline sync`` catches up."""
    lab.server.stop()
    try:
        training = lab.train("server_down", size.steps, rate=size.rate)
        outcome = Outcome()
        started = time.monotonic()
        finished(training, outcome)
        outcome.notes.append(f"run took {time.monotonic() - started:.1f}s")
    finally:
        lab.server.start()
    lab.sync(training.run_dir)
    agent_gone(training, outcome)
    return count(lab, training, training.logged(), "finished", outcome)


def kill_both(lab: Lab, size: Size) -> Outcome:
    """SIGKILL training and agent together; after sync the run is crashed everywhere."""
    training = lab.train("kill_both", size.steps, "--hold", rate=size.rate)
    training.wait_logged(size.steps // 2)
    logged = kill_now(training, agent_too=True)
    wait_until(lambda: not alive(training.agent_pid), 30, "the agent to die")
    lab.sync(training.run_dir)
    outcome = Outcome()
    local = trackline.open_run(training.run_dir).state
    if local != "crashed":
        outcome.problems.append(f"local run says {local}, not crashed")
    return count(lab, training, logged, "crashed", outcome)


def disk_full(lab: Lab, size: Size) -> Outcome:
    """The run directory's disk fills while logging, then space is freed: no row lost."""
    disk = lab.root / "disk_full" / "disk"
    with tmpfs(disk, "2m") as why:
        if why is not None:
            return Outcome(skipped=why)
        try:
            return _disk_full(lab, size, disk)
        finally:
            lab.cleanup()


def _disk_full(lab: Lab, size: Size, disk: Path) -> Outcome:
    steps = min(size.steps, DISK_ROWS)
    training = lab.train("disk_full", steps, "--pad", trackline_dir=disk, rate=size.rate / 2)
    filler = disk / "filler"
    with open(filler, "wb") as file:
        file.write(bytes(max(0, free_bytes(disk) - 256 * 1024)))
    outcome = Outcome()
    try:
        wait_until(lambda: free_bytes(disk) < 64 * 1024, 30, "the disk to fill")
        at = training.logged()
        time.sleep(0.5)
        outcome.notes.append(f"full from ~{at} to {training.logged()} rows")
    except ChaosError as exc:
        outcome.problems.append(str(exc))
    filler.unlink()
    finished(training, outcome)
    agent_gone(training, outcome)
    return count(lab, training, training.logged(), "finished", outcome)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@functools.cache
def gzip_bomb(megabytes: int = BOMB_MB) -> bytes:
    """``megabytes`` of zeros, gzipped: a few MB on the wire."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join([deflate.compress(zeros) for _ in range(megabytes)] + [deflate.flush()])


def gzip_bomb_attack(lab: Lab, size: Size) -> Outcome:
    """A key holder posts gzip bombs to the ingest endpoint: the server's RSS stays bounded."""
    key = lab.new_user("mallory")
    bomb = gzip_bomb()
    assert lab.server.process is not None
    rss = RssSampler(lab.server.process.pid)
    statuses: list[str] = []

    def post(index: int) -> None:
        try:
            with lab.client(key) as client:
                response = client.post(
                    f"/runs/bomb{index}/streams/main",
                    params={"offset": 0},
                    content=bomb,
                    headers={"content-encoding": "gzip"},
                )
            statuses.append(str(response.status_code))
        except httpx.HTTPError as exc:
            statuses.append(type(exc).__name__)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(size.bombs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    peak = rss.stop()
    growth = peak - rss.baseline
    outcome = Outcome(peak_rss=peak, rss_of="server")
    outcome.notes.append(
        f"{size.bombs} x {len(bomb) >> 10} kB -> {BOMB_MB} MB; "
        f"answers {','.join(sorted(statuses))}; RSS +{growth >> 20} MB"
    )
    if growth > RSS_BUDGET:
        outcome.problems.append(f"server RSS grew by {growth >> 20} MB")
    if lab.server.process is None or lab.server.process.poll() is not None:
        outcome.problems.append("the server died")
    return outcome


def private_run(lab: Lab, size: Size) -> Outcome:
    """Another user asks for a private run, its files, blobs and project: all 404."""
    alice = lab.new_user("alice")
    bob = lab.new_user("bob")
    secret = lab.root / "private_run" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_bytes(b"alice's secret " + os.urandom(16).hex().encode())
    training = lab.train("private_run", 50, "--save", str(secret), key=alice, rate=size.rate)
    assert lab.server.process is not None
    rss = RssSampler(lab.server.process.pid)
    outcome = Outcome(rss_of="server")
    finished(training, outcome)
    agent_gone(training, outcome)
    real = {
        "run": training.run_id,
        "sha": hashlib.sha256(secret.read_bytes()).hexdigest(),
        "project": "alice/private_run",
    }
    missing = {
        "run": "nosuchrun0000000",
        "sha": hashlib.sha256(b"nothing").hexdigest(),
        "project": "alice/nosuchproject",
    }
    with lab.client(alice) as client:
        stored = client.head(f"/blobs/{real['sha']}", params={"run": real["run"]}).status_code
    if stored != 200:
        outcome.notes.append(f"alice's blob not stored ({stored})")
    leaks: list[str] = []
    with lab.client(bob) as client:
        for method, path, body in PROBES:
            answer = _probe(client, method, path, body, real)
            expected = _probe(client, method, path, body, missing)
            if answer[0] != expected[0] or _swap(answer[1], real, missing) != expected[1]:
                leaks.append(f"{method} {path} {answer[0]}")
    outcome.peak_rss = rss.stop()
    outcome.notes.append(f"{len(leaks)}/{len(PROBES)} requests leak")
    if leaks:
        outcome.problems.append("leaks: " + "; ".join(leaks))
    return outcome


#: What another user might ask about a run, its blob or its project (method, path, JSON).
PROBES: tuple[tuple[str, str, object], ...] = (
    ("GET", "/runs/{run}", None),
    ("GET", "/runs/{run}/history", None),
    ("GET", "/runs/{run}/system", None),
    ("GET", "/runs/{run}/files", None),
    ("GET", "/runs/{run}/files/files/secret.txt", None),
    ("GET", "/runs/{run}/media", None),
    ("GET", "/runs/{run}/histograms", None),
    ("GET", "/runs/{run}/artifacts", None),
    ("GET", "/runs/{run}/streams", None),
    ("POST", "/runs/{run}/heartbeat", None),
    ("PATCH", "/runs/{run}", {"notes": "bob was here"}),
    ("POST", "/metrics/keys", {"runs": ["{run}"]}),
    ("POST", "/metrics/series", {"runs": ["{run}"], "keys": ["x"]}),
    ("HEAD", "/blobs/{sha}", None),
    ("GET", "/blobs/{sha}", None),
    ("HEAD", "/blobs/{sha}?run={run}", None),
    ("GET", "/blobs/{sha}?run={run}", None),
    ("GET", "/projects/{project}", None),
    ("GET", "/projects/{project}/runs", None),
    ("GET", "/projects/{project}/artifacts", None),
)


def _probe(
    client: httpx.Client, method: str, path: str, body: object, names: dict[str, str]
) -> tuple[int, str]:
    def fill(text: str) -> str:
        for name, value in names.items():
            text = text.replace("{" + name + "}", value)
        return text

    content = fill(json.dumps(body)) if body is not None else None
    headers = {"content-type": "application/json"} if content is not None else {}
    response = client.request(method, fill(path), content=content, headers=headers)
    return response.status_code, response.text


def _swap(text: str, real: dict[str, str], missing: dict[str, str]) -> str:
    for name, value in real.items():
        text = text.replace(value, missing[name])
    return text


#: Every scenario, in the order they run (the bomb last: it may leave the server bloated).
SCENARIOS: dict[str, Callable[[Lab, Size], Outcome]] = {
    "kill_training": kill_training,
    "kill_agent": kill_agent,
    "kill_server": kill_server,
    "server_down": server_down,
    "kill_both": kill_both,
    "disk_full": disk_full,
    "private_run": private_run,
    "gzip_bomb": gzip_bomb_attack,
}
