"""The writer thread: drains the in-memory buffer into the run log in batches.

The training thread only appends to a deque (no lock, no syscall). This
thread wakes every ``flush_interval`` seconds, encodes what has arrived,
writes it with one ``write`` call and so hands it to the OS: records survive
the death of the training process from then on. ``close`` drains, writes the
final record and fsyncs, within a time limit.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from . import runlog
from ._values import Deferred
from ._warn import warn, warn_once
from .records import Metrics, Record

#: Above this many buffered records ``log`` waits for the writer (backpressure, not loss).
HIGH_WATER = 500_000
#: Every this many buffered records ``log`` wakes the writer early (keeps bursts small).
SOFT_LIMIT = 1_000
_BATCH = 1_000


class NeedsResolve:
    """A metrics row holding device values that must be read before encoding."""

    __slots__ = ("record",)

    def __init__(self, record: Metrics) -> None:
        self.record = record

    def resolve(self) -> Metrics:
        values: dict[str, Any] = self.record.values
        for key, value in list(values.items()):
            if type(value) is Deferred:
                try:
                    values[key] = value.resolve()
                except Exception as exc:
                    warn_once(f"resolve:{key}", f"could not read the value of {key!r}: {exc}")
                    del values[key]
        return self.record


class Writer:
    """Owns the run log file of one run; one consumer thread."""

    def __init__(self, logfile: runlog.LogFile, flush_interval: float = 0.1) -> None:
        self.buffer: collections.deque[Record | NeedsResolve | _Marker] = collections.deque()
        self._file = logfile
        self._interval = flush_interval
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._stopping = False
        self._unwritten: list[bytes] = []
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="trackline-writer", daemon=True)
        self._thread.start()

    def wait_for_room(self, timeout: float = 30.0) -> None:
        """Block the caller until the buffer is below the high-water mark (disk too slow)."""
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._room:
            while len(self.buffer) > HIGH_WATER // 2 and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    warn_once("backpressure", "trackline's writer cannot keep up; logging goes on")
                    return
                self._room.wait(min(left, 0.5))

    def wake(self) -> None:
        """Have the writer drain now rather than at its next tick."""
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything buffered so far; ``False`` if that took longer than ``timeout``."""
        target = len(self.buffer)
        if target == 0 and not self._unwritten:
            return True
        done = threading.Event()
        self.buffer.append(_Marker(done))
        self._wake.set()
        return done.wait(timeout)

    def close(self, final: Record | None, timeout: float) -> bool:
        """Drain, append ``final``, fsync and stop; ``False`` if it did not finish in time."""
        if final is not None:
            self.buffer.append(final)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()
            if self._stopping:
                self._drain()
                self._sync_and_close()
                return

    def _drain(self) -> None:
        buffer = self.buffer
        frames = self._unwritten
        markers: list[_Marker] = []
        encode = runlog.frame_record
        while True:
            try:
                item = buffer.popleft()
            except IndexError:
                break
            if type(item) is NeedsResolve:
                item = item.resolve()
            elif type(item) is _Marker:
                markers.append(item)
                continue
            try:
                frames.append(encode(item))  # type: ignore[arg-type]
            except Exception as exc:
                warn_once(f"encode:{type(item).__name__}", f"could not encode a record: {exc}")
            if len(frames) >= _BATCH:
                self._write(frames)
                frames = self._unwritten
        self._write(frames)
        for marker in markers:
            marker.done.set()
        with self._room:
            self._room.notify_all()

    def _write(self, frames: list[bytes]) -> None:
        if not frames:
            return
        try:
            self._file.write(frames)
        except OSError as exc:
            # Keep the frames and try again at the next flush: disk full may pass.
            self._unwritten = frames
            self.failed = exc
            warn_once("write", f"trackline could not write its run log ({exc}); will retry")
            return
        self._unwritten = []

    def _sync_and_close(self) -> None:
        try:
            if self._unwritten:
                self._write(self._unwritten)
            self._file.sync()
        except OSError as exc:
            warn(f"trackline could not sync its run log: {exc}")
        finally:
            self._file.close()


class _Marker:
    __slots__ = ("done",)

    def __init__(self, done: threading.Event) -> None:
        self.done = done
