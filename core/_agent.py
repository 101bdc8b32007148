"""The agent: one background process per run, started by the training process.

It captures git and the environment once, samples system statistics every
``--interval`` seconds, copies "live" files again when they change, ships
the run directory when a server is given, and marks the run ``crashed``
when the training process ends without a finish record. It writes only its
own run log, ``system.tlog``; nothing the training process does waits for it.

Usage (see ``_agent_launch``)::

    python -m trackline._agent --run-dir DIR --pid PID --interval S --git-diff-limit BYTES [--server URL]

Its stdin is a pipe that only the training process holds: end of file means
the run finished or the process died. A forked child of the training process
(a DataLoader worker) may keep the pipe open, so the pid is watched as well.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec
import psutil

from . import _environment, _gitinfo
from ._system import OnError, Sampler
from .records import FileSaved, Finish, Record, RunStart, SystemSample, decode
from .runlog import (
    FRAME,
    HEADER_SIZE,
    MAX_FRAME,
    MAX_REREADS,
    LogFile,
    check_header,
    data_end,
    scan_frames,
    torn,
    trim_reserved,
)

#: The longest the loop sleeps: how late a dead training process may be noticed.
WAKE = 0.5
#: How often main.tlog is followed, live files checked and the shipper pumped.
CHORES_EVERY = 1.0
#: After stdin's end of file, how long a still running training process may take
#: to get its finish record to disk (its writer may be slow) before the agent leaves.
EOF_GRACE = 30.0


class Problems:
    """Reports each kind of problem once to stderr (``agent.log``).

    Once, because a collector that fails fails every interval, and the log must
    not fill the disk.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def report(self, what: str, exc: BaseException) -> None:
        self.say(f"{what}: {type(exc).__name__}: {exc}", kind=f"{what}:{type(exc).__name__}")

    def say(self, message: str, kind: str | None = None) -> None:
        kind = kind or message
        if kind in self._seen:
            return
        self._seen.add(kind)
        with contextlib.suppress(OSError, ValueError):
            print(f"trackline agent: {message}", file=sys.stderr, flush=True)


class TrainingProcess:
    """The process the run belongs to: has it closed our stdin, does it still exist?"""

    def __init__(self, pid: int) -> None:
        self.eof = False
        self._process: psutil.Process | None = None
        try:
            process = psutil.Process(pid)
            # A process younger than the agent is not our parent but a reused pid.
            if process.create_time() <= psutil.Process().create_time():
                self._process = process
        except psutil.Error:
            pass
        try:
            self._stdin: int | None = sys.stdin.fileno() if os.name == "posix" else None
        except (AttributeError, OSError, ValueError):  # no stdin at all
            self._stdin = None

    def alive(self) -> bool:
        """False once the process is gone; a zombie counts as gone, a reused pid too."""
        process = self._process
        if process is None:
            return False
        try:
            return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:  # ZombieProcess included
            return False
        except psutil.AccessDenied:
            return True

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; return early when stdin reaches end of file."""
        timeout = max(timeout, 0.0)
        if self.eof or self._stdin is None:
            time.sleep(timeout)
            return
        try:
            ready, _, _ = select.select([self._stdin], [], [], timeout)
            if ready and not os.read(self._stdin, 65536):
                self.eof = True
        except (OSError, ValueError):  # stdin closed or invalid: rely on the pid alone
            self._stdin = None


class MainLog:
    """Follows the training process's ``main.tlog``, reading only what is new.

    The offset stays just past the last whole frame, so a frame still being
    written is read again, whole, next time. Reading goes in chunks, so that
    catching up on a long log never holds it in memory whole.
    """

    def __init__(self, path: Path, kinds: tuple[type[Record], ...]) -> None:
        self.path = path
        self.kinds = kinds
        self.offset = 0
        self._chunk = 1024 * 1024

    def new_records(self) -> list[Record]:
        """The new records of the wanted kinds."""
        found: list[Record] = []
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return found
        with file:
            if self.offset == 0:
                header = file.read(HEADER_SIZE)
                if len(header) < HEADER_SIZE:
                    return found
                check_header(header)
                self.offset = HEADER_SIZE
            file.seek(self.offset)
            rereads = 0
            while data := file.read(self._chunk):
                scan = scan_frames(memoryview(data))
                payloads, end = scan.payloads, scan.end
                if rereads < MAX_REREADS and torn(file, self.offset, data, end, scan):
                    rereads += 1  # a frame read as it was written: read it again, whole
                    file.seek(self.offset)
                    continue
                for begin, stop in payloads:
                    try:
                        record = decode(data[begin:stop])
                    except msgspec.DecodeError:  # a newer record type: not one of ours
                        continue
                    if isinstance(record, self.kinds):
                        found.append(record)
                if end == 0:  # not one whole frame in this chunk
                    if len(data) < self._chunk or not _needs_more(data):
                        break  # the last frame is still being written, or only zeros follow
                    self._chunk *= 2  # a frame bigger than a chunk
                self.offset += end
                if end and end < len(data) and not data_end(memoryview(data)[end:]):
                    # Only zeros after the last whole frame: a mapped log's reserved room.
                    # What the writer adds there meanwhile waits for the next round.
                    break
                file.seek(self.offset)
        return found


def _needs_more(data: bytes) -> bool:
    """Whether a chunk without one whole frame may hold one if read further: its first
    frame is longer than the chunk, or its bytes (bad ones) go on to its end. Not when
    a frame is still being written before a mapped log's zeros."""
    if len(data) < FRAME.size:
        return True
    length = FRAME.unpack_from(data)[0]
    if 0 < length <= MAX_FRAME and FRAME.size + length > len(data):
        return True
    return data_end(memoryview(data)) == len(data)


class LiveFiles:
    """Copies files saved with policy ``live`` into ``files/`` again whenever they change."""

    def __init__(self, run_dir: Path, on_error: OnError) -> None:
        self._on_error = on_error
        self._files = run_dir / "files"
        self._scratch = run_dir / ".agent-copy.tmp"
        #: name under files/ -> [source, its (mtime, size) when last found copied]
        self._watched: dict[str, tuple[Path, tuple[int, int] | None]] = {}

    def watch(self, record: FileSaved) -> None:
        if record.policy != "live" or not record.source:
            return
        name = Path(record.path)
        if name.is_absolute() or ".." in name.parts:  # stay inside files/
            return
        known = self._watched.get(record.path)
        if known is None or known[0] != Path(record.source):
            self._watched[record.path] = (Path(record.source), None)

    def forget(self) -> None:
        self._watched.clear()

    def copy_changed(self) -> list[FileSaved]:
        """Copy every changed source; the records of the copies made."""
        saved: list[FileSaved] = []
        for name, (source, seen) in list(self._watched.items()):
            before = _signature(source)
            if before is None or before == seen:
                continue
            target = self._files / name
            if not _newer(source, target):  # the training process copied it itself
                self._watched[name] = (source, before)
                continue
            try:
                record = self._copy(name, source, target, before)
            except OSError as exc:
                self._on_error(f"copying {name}", exc)
                continue
            finally:
                self._scratch.unlink(missing_ok=True)
            if record is not None:
                self._watched[name] = (source, before)
                saved.append(record)
        return saved

    def _copy(
        self, name: str, source: Path, target: Path, before: tuple[int, int]
    ) -> FileSaved | None:
        """Copy ``source`` over ``target`` via a scratch file; ``None`` if it changed meanwhile."""
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as src, open(self._scratch, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        # A file rewritten while we copied may be torn: try again next round.
        if _signature(source) != before:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        # A rename, so that a reader of files/ never sees half a copy.
        os.replace(self._scratch, target)
        return FileSaved(name, "live", size, digest.hexdigest(), time.time(), os.fspath(source))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _newer(source: Path, target: Path) -> bool:
    """True unless ``target`` was copied from ``source`` after its last change."""
    try:
        s, t = source.stat(), target.stat()
    except OSError:
        return True
    return s.st_size != t.st_size or s.st_mtime_ns > t.st_mtime_ns


class Shipper(Protocol):
    """What ``trackline._transport.Shipper`` offers the agent."""

    def pump(self, final: bool = False) -> bool:
        """Ship what is new; True when everything is shipped (or given up on). Never raises."""
        ...

    def close(self) -> None: ...


def _shipper(
    run_dir: Path, server: str | None, problems: Problems, rank: int | None = None
) -> Shipper | None:
    if not server:
        return None
    try:
        from ._transport import Shipper as Transport
    except ImportError as exc:
        problems.report("no transport, not shipping", exc)
        return None
    try:
        shipper: Shipper = Transport(run_dir, server, rank=rank)
    except Exception as exc:  # the run is recorded locally regardless
        problems.report("shipper", exc)
        return None
    return shipper


class Agent:
    """The agent of one run; :meth:`run` returns when the run has ended."""

    def __init__(
        self,
        run_dir: Path,
        pid: int,
        interval: float,
        git_diff_limit: int,
        server: str | None,
        rank: int | None = None,
        host_stats: bool = True,
        gpus_whole: bool | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.pid = pid
        self.interval = max(interval, 0.1) if math.isfinite(interval) else 10.0
        self.git_diff_limit = git_diff_limit
        self.problems = Problems()
        self.training = TrainingProcess(pid)
        self.log = LogFile(run_dir / "system.tlog")
        #: A rank above zero of a distributed run ships its streams as ``<stream>.<rank>``.
        self.rank = rank
        self.sampler = Sampler(
            pid, run_dir, self.problems.report, host=host_stats, gpus_whole=gpus_whole
        )
        self.main_log = MainLog(run_dir / "main.tlog", (RunStart, Finish, FileSaved))
        self.live = LiveFiles(run_dir, self.problems.report)
        self.shipper = _shipper(run_dir, server, self.problems, rank)
        #: Whether main.tlog holds a finish record after its last start record.
        self.finished = False

    def _try(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # one failing chore must not stop the others
            self.problems.report(what, exc)

    def run(self) -> None:
        self._try("environment", self._capture_environment)
        self._try("git", self._capture_git)
        self._try("system sample", self._sample)
        next_sample = time.monotonic() + self.interval
        next_chores = 0.0
        eof_at: float | None = None
        while True:
            now = time.monotonic()
            if now >= next_chores:
                self._chores()
                next_chores = now + CHORES_EVERY
            if not self.training.alive():
                break
            if self.training.eof:
                eof_at = now if eof_at is None else eof_at
                self._try("main.tlog", self._follow_main_log)
                if self.finished or now - eof_at > EOF_GRACE:
                    break
            if now >= next_sample:
                self._try("system sample", self._sample)
                # Skip samples missed while suspended rather than catching up at once.
                next_sample = max(next_sample + self.interval, now)
            self.training.wait(min(WAKE, next_sample - now, next_chores - now))
        self._end()

    def _end(self) -> None:
        self._chores()
        self._try("system sample", self._sample)
        if not self.finished:
            if self.training.alive():  # no finish record yet, but not dead either
                self.problems.say(
                    f"no finish record {EOF_GRACE:.0f}s after the run ended; no verdict"
                )
            else:
                reason = (
                    f"training process pid {self.pid} gone, no finish record (the agent saw it)"
                )
                self._try(
                    "finish",
                    lambda: self.log.append(Finish(time.time(), state="crashed", reason=reason)),
                )
                # The room its mapped log had reserved ahead of the data: zeros, on disk.
                self._try("main.tlog", self._trim_main_log)
        self._try("system.tlog", self.log.sync)
        self.log.close()
        self.sampler.close()
        self._ship_the_rest()

    def _trim_main_log(self) -> None:
        self._follow_main_log()  # to the end of its last whole frame
        if self.main_log.offset:
            trim_reserved(self.main_log.path, self.main_log.offset)

    def _chores(self) -> None:
        self._try("main.tlog", self._follow_main_log)
        self._try("live files", self._copy_live_files)
        if self.shipper is not None:
            self._try("shipping", self.shipper.pump)

    def _capture_environment(self) -> None:
        gpus = self.sampler.gpus
        self.log.append(_environment.capture(self.pid, gpus.names(), gpus.driver()))

    def _capture_git(self) -> None:
        # The agent runs in the training process's working directory.
        info = _gitinfo.capture(Path.cwd(), self.run_dir, self.git_diff_limit)
        if info is not None:
            self.log.append(info)

    def _sample(self) -> None:
        self.log.append(SystemSample(time.time(), self.sampler.sample()))

    def _follow_main_log(self) -> None:
        for record in self.main_log.new_records():
            if type(record) is RunStart:  # a resumed run starts over
                self.finished = False
                self.live.forget()
            elif type(record) is Finish:
                self.finished = True
            elif type(record) is FileSaved:
                self.live.watch(record)

    def _copy_live_files(self) -> None:
        for record in self.live.copy_changed():
            self.log.append(record)

    def _ship_the_rest(self) -> None:
        shipper = self.shipper
        if shipper is None:
            return
        # Until the shipper says it is done: the agent is what uploads the end of a run.
        # Through outages of up to TRACKLINE_UPLOAD_GIVE_UP seconds (default a day); after
        # that the run stays on disk for `trackline sync`, and the agent stops trying.
        deadline = time.monotonic() + _give_up_after()
        while True:
            if not self.run_dir.is_dir():  # deleted: nothing is left to upload
                self.problems.say("the run's directory is gone; stopped uploading it")
                break
            try:
                if shipper.pump(final=True):
                    break
            except Exception as exc:  # keep trying; the shipper retries itself
                self.problems.report("shipping", exc)
            if time.monotonic() > deadline:
                self.problems.say("gave up uploading; `trackline sync` will finish it")
                break
            time.sleep(1.0)
        self._try("shipper", shipper.close)


def _give_up_after() -> float:
    try:
        return float(os.environ.get("TRACKLINE_UPLOAD_GIVE_UP") or 86_400.0)
    except ValueError:
        return 86_400.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trackline._agent")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--git-diff-limit", type=int, default=10 * 1024 * 1024)
    parser.add_argument("--server", default=None)
    parser.add_argument("--rank", type=int, default=None)
    parser.add_argument("--host-stats", type=int, default=1)
    # Without it, GPUs are sampled whole with the host (--host-stats) and only then.
    parser.add_argument("--gpu-stats", choices=("whole", "own"), default=None)
    args = parser.parse_args(argv)
    # The agent must never compete with training for the CPU.
    with contextlib.suppress(OSError):
        os.nice(10)
    Agent(
        args.run_dir,
        args.pid,
        args.interval,
        args.git_diff_limit,
        args.server,
        args.rank,
        bool(args.host_stats),
        None if args.gpu_stats is None else args.gpu_stats == "whole",
    ).run()


if __name__ == "__main__":
    main()
