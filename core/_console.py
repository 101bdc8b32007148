"""Console capture: the run's stdout and stderr, as W&B's ``output.log``.

Two halves, one per thread. On the training side a :class:`Tee` replaces
``sys.stdout`` and ``sys.stderr``: each ``write`` goes to the original stream
first, then appends ``(stream, text)`` to a deque (no lock, no syscall, no
parsing). On the writer thread :class:`Lines` drains that deque at the writer's
cadence into ``Console`` records of whole lines: progress-bar carriage returns
collapsed to the line's last state, ``KEY=value`` secrets masked, ANSI colour
codes kept for display.

The records go to a run log of their own, ``console.tlog`` (:class:`ConsoleLog`),
shipped as the ``console`` stream. Not ``main.tlog``: a server that predates the
console refuses a record type it does not know, and would then take none of the
run's metrics; it refuses the ``console`` stream alone instead, and the rest
ships. Opening a run (``trackline runs`` opens every one) also stays as fast as
before: the console is read only when asked for.

The bound (``TRACKLINE_CONSOLE_MAX_MB``, 100 MB of text per run) is kept by the
writer, the one place that sees every line before it reaches the disk, the upload
and the server. The run log is append-only, so what was written stays; the first
``max`` characters are written as they come (and shown live), later lines are held
in memory, the newest ``max / 2`` of them, and written at finish after one line
saying how many were dropped.

Only Python-level writes are captured. Output that C code writes to file
descriptors 1 and 2 directly is not: catching it means replacing those
descriptors with a pipe read by a thread, and then a stalled or dead reader blocks
every ``printf`` of the process (and its subprocesses), which is the one thing a
tracker must never do.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from . import runlog
from ._warn import warn_once
from .records import Console

#: Default bound of the console text kept per run, in MB (a million characters).
MAX_MB = 100.0
STREAMS = ("stdout", "stderr")
#: A line still unfinished at this many characters is written as it is.
MAX_LINE = 64 * 1024
#: The run log of the console, in the run directory.
FILE = "console.tlog"
#: The most writes the tees hold for the writer: should it ever stop draining, the
#: oldest are dropped rather than the process's memory filled.
MAX_PENDING = 1_000_000

_Pending = collections.deque[tuple[str, str]]

#: ``NAME_KEY=value``, ``*_TOKEN=``, ``*_SECRET=``, ``*_PASSWORD=``: the value is masked.
_ENV_SECRET = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD))(\s*=\s*)([^\s\x1b'\",;]+)"
)
#: ``Authorization: Bearer abc`` (also ``=``): everything after it on the line is masked.
_AUTHORIZATION = re.compile(r"(?i)\b(authorization)(\s*[:=]\s*)([^\x1b\r\n]+)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MASK = "****"


def mask(line: str) -> str:
    """``line`` with secrets in environment-variable or header form replaced by ``****``."""
    if "=" in line:
        line = _ENV_SECRET.sub(lambda m: m.group(1) + m.group(2) + MASK, line)
    if ":" in line or "=" in line:
        line = _AUTHORIZATION.sub(lambda m: m.group(1) + m.group(2) + MASK, line)
    return line


def collapse(line: str) -> str:
    """A line as a terminal leaves it: each ``\\r`` returns to its start and overwrites."""
    if "\r" not in line:
        return line
    parts = line.split("\r")
    out = parts[0]
    for part in parts[1:]:
        out = part + out[len(part) :]
    return out


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


class Tee:
    """A stand-in for ``sys.stdout``/``sys.stderr``: writes through, and keeps a copy.

    Everything but ``write`` and ``writelines`` is the original stream's, so
    ``isatty``, ``fileno``, ``encoding`` and ``buffer`` answer as before.
    """

    def __init__(self, original: TextIO, name: str, pending: _Pending) -> None:
        self._original = original
        self._name = name
        self._append = pending.append
        self.active = True

    def write(self, text: str) -> int:
        written = self._original.write(text)
        if self.active and type(text) is str and text:
            self._append((self._name, text))
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:  # here, not through __getattr__: print(flush=True) calls it
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class Capture:
    """The tees of one run, installed on ``sys.stdout`` and ``sys.stderr``."""

    def __init__(self, run_dir: Path, max_chars: int) -> None:
        self.pending: _Pending = collections.deque(maxlen=MAX_PENDING)
        self.log = ConsoleLog(run_dir / FILE, Lines(self.pending, max_chars))
        self._tees: list[tuple[str, Tee]] = []
        for name in STREAMS:
            stream = getattr(sys, name)
            if stream is None or isinstance(stream, Tee):
                continue
            tee = Tee(stream, name, self.pending)
            setattr(sys, name, tee)
            self._tees.append((name, tee))

    def stop(self, traceback: str | None = None) -> None:
        """Restore the original streams (where nobody replaced ours since); keep ``traceback``.

        The interpreter prints an uncaught exception's traceback after the run has
        finished; it is added here so that the console shows it too.
        """
        global _active
        if traceback:
            self.pending.append(
                ("stderr", traceback if traceback.endswith("\n") else traceback + "\n")
            )
        for name, tee in self._tees:
            tee.active = False
            if getattr(sys, name) is tee:
                setattr(sys, name, tee._original)
        self._tees = []
        if _active is self:
            _active = None


#: The capture installed in this process: one at a time, so runs never tee twice.
_active: Capture | None = None
_fork_hook = False


def start(run_dir: Path, max_chars: int) -> Capture | None:
    """Capture the console for a run; ``None`` when another run of this process already does."""
    global _active, _fork_hook
    if _active is not None:
        return None
    if not _fork_hook:
        _fork_hook = True
        os.register_at_fork(after_in_child=_after_fork_in_child)
    _active = Capture(run_dir, max_chars)
    return _active


def _after_fork_in_child() -> None:
    # The child's writes would pile up in a deque that no writer drains: it gets its own
    # streams back, and a run it starts captures them anew.
    capture = _active
    if capture is not None:
        capture.stop()


class ConsoleLog:
    """The writer thread's ``console.tlog``: opened at the first line, written at every drain.

    Frames the disk refuses are kept and tried again at the next drain; there are at
    most as many as the console's bound lets through, so memory stays bounded.
    """

    def __init__(self, path: Path, lines: Lines) -> None:
        self.path = path
        self.lines = lines
        self._file: runlog.LogFile | None = None
        self._frames: list[bytes] = []
        self._broken = False

    def drain(self, final: bool = False) -> None:
        """Write the lines that arrived since the last drain (with ``final``, all of them)."""
        if self._broken:
            return
        try:
            records = self.lines.records(final)
        except Exception as exc:  # a bug here must not stop the writer thread
            self._broken = True
            warn_once("console", f"trackline stopped recording the console: {exc!r}")
            return
        self._frames.extend(runlog.frame_record(record) for record in records)
        if not self._frames:
            return
        try:
            if self._file is None:
                self._file = runlog.LogFile(self.path)
            self._file.write(self._frames)
            self._frames = []
        except OSError as exc:
            del self._frames[: getattr(exc, "written", 0)]
            warn_once(
                "console-write", f"trackline could not write {self.path.name} ({exc}); will retry"
            )

    def close(self) -> None:
        """Sync and close the file (after the final ``drain``)."""
        if self._file is None:
            return
        try:
            self._file.sync()
        except OSError as exc:
            warn_once("console-sync", f"trackline could not sync {self.path.name}: {exc}")
        finally:
            self._file.close()


class Lines:
    """The writer thread's half: text from the tees into ``Console`` records of whole lines."""

    def __init__(self, pending: _Pending, max_chars: int) -> None:
        self._pending = pending
        self._partial = dict.fromkeys(STREAMS, "")
        self._max = max(0, max_chars)
        self._kept = 0  # characters written so far
        #: Past the bound: the newest lines, held for the end, and what was dropped.
        self._tail: collections.deque[tuple[str, str]] = collections.deque()
        self._tail_chars = 0
        self._dropped_lines = 0
        self._dropped_chars = 0

    def records(self, final: bool = False) -> list[Console]:
        """Whole lines that arrived since the last call; with ``final``, also the rest."""
        out: list[Console] = []
        now = time.time()
        current = ""
        batch: list[str] = []

        def add(name: str, lines: list[str]) -> None:
            nonlocal current, batch
            if name != current and batch:
                self._emit(out, current, batch, now)
                batch = []
            current = name
            batch.extend(lines)

        pending = self._pending
        partial = self._partial
        while True:
            try:
                name, text = pending.popleft()
            except IndexError:
                break
            if "\n" not in text:
                partial[name] = _join(partial[name], text)
                if len(partial[name]) > MAX_LINE:  # dots that never end their line
                    add(name, [partial[name]])
                    partial[name] = ""
                continue
            head, *middle, rest = text.split("\n")
            add(name, [partial[name] + head, *middle])
            partial[name] = _join("", rest)
        if final:
            for name in STREAMS:
                if partial[name]:
                    add(name, [partial[name]])
                    partial[name] = ""
        if batch:
            self._emit(out, current, batch, now)
        if final and self._dropped_lines:
            out.append(Console("stderr", [self._summary()], now))
            out.extend(self._tail_records(now))
        return out

    def _emit(self, out: list[Console], name: str, raw: list[str], now: float) -> None:
        lines = [mask(collapse(line)) for line in raw]
        if self._kept < self._max:
            size = sum(len(line) + 1 for line in lines)
            if self._kept + size <= self._max:
                self._kept += size
                out.append(Console(name, lines, now))
                return
            fits: list[str] = []
            for index, line in enumerate(lines):
                if self._kept + len(line) + 1 > self._max:
                    lines = lines[index:]
                    self._kept = self._max
                    break
                self._kept += len(line) + 1
                fits.append(line)
            if fits:
                out.append(Console(name, fits, now))
        self._hold(name, lines)

    def _hold(self, name: str, lines: list[str]) -> None:
        """Keep the newest ``max / 2`` characters of lines past the bound; count the rest."""
        tail = self._tail
        room = self._max // 2
        for line in lines:
            tail.append((name, line))
            self._tail_chars += len(line) + 1
        while tail and self._tail_chars > room:
            _, line = tail.popleft()
            self._tail_chars -= len(line) + 1
            self._dropped_lines += 1
            self._dropped_chars += len(line) + 1

    def _summary(self) -> str:
        size = self._dropped_chars / 1e6
        return (
            f"[trackline: {self._dropped_lines} lines / {size:.1f} MB of output dropped here: "
            f"the console of a run is bounded at {self._max / 1e6:g} MB "
            "(TRACKLINE_CONSOLE_MAX_MB)]"
        )

    def _tail_records(self, now: float) -> list[Console]:
        out: list[Console] = []
        for name, line in self._tail:
            if out and out[-1].stream == name:
                out[-1].lines.append(line)
            else:
                out.append(Console(name, [line], now))
        self._tail.clear()
        return out


def _join(partial: str, text: str) -> str:
    """A line still being written: earlier states of a progress bar are overwritten now,
    so that one that never ends its line does not grow without bound."""
    joined = partial + text
    cut = joined.rfind("\r")
    if cut <= 0:
        return joined
    return collapse(joined[:cut]) + joined[cut:]
