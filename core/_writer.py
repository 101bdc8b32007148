"""Appending records to the run log: on the caller's thread where it can be, else queued.

``append`` frames a record and copies it into the memory-mapped room of the run log
(``LogFile.put``) before it returns: from then on it survives the death of the
training process (SIGKILL included; power loss is the fsync's job). Where that cannot
be done it is queued, in order, for the writer thread: a record whose values must be
read off the training thread (``NeedsResolve``: CUDA tensors), a log without mapped
room (the disk refused to reserve it, or a burst outran the reservation), and every
record after one still queued, so that the file keeps the order of the calls.

The writer thread wakes every ``flush_interval`` seconds (or when woken), reserves
room ahead (``LogFile.extend``), and writes what was queued with one ``write`` call.
``close`` drains, writes the final record, cuts the reserved zeros off and fsyncs,
within a time limit.

When the disk refuses frames (full, I/O error) they stay in memory, oldest
first, and are tried again at every drain. Past ``max_buffer`` bytes the
oldest step records (metrics rows, histograms) are dropped, counted in one
``Gap`` record that goes to the log where they were, once it can be written.
"""

from __future__ import annotations

import collections
import errno
import os
import threading
import time
from typing import Any

from . import runlog
from ._console import ConsoleLog
from ._values import Deferred, resolve_many
from ._warn import warn, warn_once
from .records import Gap, Histogram, Metrics, Record, decode, encode, encode_row

#: Above this many buffered records ``log`` waits for the writer (backpressure, not loss).
HIGH_WATER = 500_000
#: Every this many buffered records ``log`` wakes the writer early (keeps bursts small).
SOFT_LIMIT = 1_000
_BATCH = 1_000
#: Default bound of what the writer keeps in memory while the disk refuses it.
MAX_BUFFER = 64 * 1024 * 1024
#: Memory of one buffered frame beyond its bytes: the bytes object's header and list slot.
_OVERHEAD = 48
#: Records that may be dropped (counted) when the buffer is full: rows at a step.
_DROPPABLE = (Metrics, Histogram)


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


def _take(buffer: collections.deque[Any], most: int) -> list[Any]:
    """Up to ``most`` items from the left of ``buffer`` (another thread appends on the right)."""
    items = []
    popleft = buffer.popleft
    for _ in range(most):
        try:
            items.append(popleft())
        except IndexError:
            break
    return items


def _resolve_together(items: list[Any]) -> None:
    """Read the device values of the rows among ``items`` at once (see ``resolve_many``)."""
    deferred: list[Deferred] = []
    for item in items:
        if type(item) is NeedsResolve:
            values: dict[str, Any] = item.record.values
            deferred += [value for value in values.values() if type(value) is Deferred]
    if len(deferred) > 1:
        resolve_many(deferred)


class Writer:
    """Owns the run log file of one run; one consumer thread."""

    def __init__(
        self, logfile: runlog.LogFile, flush_interval: float = 0.1, max_buffer: int = MAX_BUFFER
    ) -> None:
        #: What waits for the writer thread: framed records, records to encode or resolve,
        #: and markers.
        self.buffer: collections.deque[bytes | Record | NeedsResolve | _Marker | _ConsoleEnd] = (
            collections.deque()
        )
        self._file = logfile
        #: Records handed over (queued) and not yet written or dropped. While any are,
        #: ``append`` queues too: a record never reaches the file before an earlier one.
        self._held = 0
        self._interval = flush_interval
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._stopping = False
        #: Encoded frames the disk has not taken yet, oldest first, and their size.
        self._unwritten: list[bytes] = []
        #: Items taken from the buffer and not yet among the unwritten frames (``flush``).
        self._taken = 0
        self._unwritten_bytes = 0
        self._max_buffer = max_buffer
        self._gap: _GapCount | None = None
        #: The console capture's ``console.tlog``, written at every drain (``_console``).
        self.console: ConsoleLog | None = None
        #: Frames that reached the file whole, in all.
        self.written = 0
        self.failed: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="trackline-writer", daemon=True)
        self._thread.start()

    def append(self, item: Record | NeedsResolve) -> None:
        """Write ``item`` to the run log before returning where it can be, else queue it.

        Thread-safe (the training, media and writer threads all append).
        """
        file = self._file
        if file.room and type(item) is not NeedsResolve:
            try:
                payload = encode(item)  # type: ignore[arg-type]
            except Exception:  # the writer thread says why, once
                payload = None
            if payload is not None:
                self._put(payload)
                return
        with file.lock:
            self._held += 1
            self.buffer.append(item)

    def append_row(self, step: int, when: float, values: dict[str, Any]) -> None:
        """``append(Metrics(step, when, values))`` for a row of plain values: the training
        thread's path, encoded straight from the values (the same bytes, no record made)."""
        if self._file.room:
            try:
                payload = encode_row(step, when, values)
            except Exception:
                payload = None
            if payload is not None:
                self._put(payload)
                return
        self.append(Metrics(step, when, values))

    def _put(self, payload: bytes) -> None:
        """Frame ``payload`` into the mapped room, or queue the frame."""
        file = self._file
        with file.lock:
            if not self._held and file.put_payload(payload):
                self.written += 1
                if file.room - file.end < _WINDOW:
                    self._wake.set()  # into the last mapped window: reserve more
                return
            self._held += 1
            self.buffer.append(runlog.frame(payload))
        if self._held == 1:
            self._wake.set()  # the first one queued: no room, or the disk refused

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
        if target == 0 and not self._taken and not self._unwritten:
            return True
        done = threading.Event()
        self.buffer.append(_Marker(done))
        self._wake.set()
        return done.wait(timeout)

    def close(self, final: Record | None, timeout: float) -> bool:
        """Drain, append ``final``, fsync and stop; ``False`` if it did not finish in time."""
        if self.console is not None:
            self.buffer.append(_ConsoleEnd())  # the last lines, after the capture stopped
        if final is not None:
            self.append(final)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def all_written(self) -> bool:
        """Whether every record so far reached the file (after ``close``: the final one too)."""
        return not self.buffer and not self._taken and not self._unwritten and self._gap is None

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stopping:
                self._file.extend()
            self._drain()
            if self._stopping:
                self._drain()
                self._sync_and_close()
                return

    def _drain(self) -> None:
        buffer = self.buffer
        frames = self._unwritten
        added = count = 0  # bytes and frames not yet counted in _unwritten_bytes
        markers: list[_Marker] = []
        encode = runlog.frame_record
        console = self.console
        if console is not None:
            console.drain()
        while True:
            items = _take(buffer, _BATCH)
            self._taken = len(items)
            if not items:
                break
            _resolve_together(items)
            for item in items:
                if type(item) is bytes:  # framed by ``append``
                    data = item
                elif type(item) is _Marker:
                    markers.append(item)
                    continue
                elif type(item) is _ConsoleEnd:
                    if console is not None:
                        console.drain(final=True)
                    continue
                else:
                    if type(item) is NeedsResolve:
                        item = item.resolve()
                    try:
                        data = encode(item)  # type: ignore[arg-type]
                    except Exception as exc:
                        warn_once(
                            f"encode:{type(item).__name__}", f"could not encode a record: {exc}"
                        )
                        with self._file.lock:
                            self._held -= 1
                        continue
                frames.append(data)
                added += len(data)
                count += 1
                if count >= _BATCH:
                    self._unwritten_bytes += added + _OVERHEAD * count
                    added = count = 0
                    self._write()
                    frames = self._unwritten
        self._unwritten_bytes += added + _OVERHEAD * count
        self._write()
        for marker in markers:
            marker.done.set()
        with self._room:
            self._room.notify_all()

    def _write(self) -> None:
        """Write the unwritten frames, oldest first, in batches; keep what the disk refuses."""
        frames = self._unwritten
        done = size = 0  # frames of ``frames`` now on disk, and their bytes
        while done < len(frames) or self._gap is not None:
            batch = frames[done : done + _BATCH]
            gap = self._gap
            if gap is not None:  # the dropped rows' place in the log is before the rest
                batch.insert(0, runlog.frame_record(gap.record()))
            error: OSError | None = None
            with self._file.lock:
                try:
                    self._file.write(batch)
                    written = len(batch)
                except OSError as exc:
                    error, written = exc, getattr(exc, "written", 0)
                self.written += written
                if gap is not None and written:
                    self._gap = None
                    batch.pop(0)
                    written -= 1
                self._held -= written
            done += written
            size += sum(map(len, batch[:written]))
            if error is not None:
                # Keep the frames and try again at the next drain: disk full may pass.
                self.failed = error
                warn_once("write", f"trackline could not write its run log ({error}); will retry")
                break
        else:
            self.failed = None
        del frames[:done]
        self._unwritten_bytes -= size + _OVERHEAD * done
        if not frames:
            self._unwritten_bytes = 0
        if self._unwritten_bytes > self._max_buffer:
            self._shed()

    def _shed(self) -> None:
        """Drop the oldest step records until the buffer is at 3/4 of its bound, counting them."""
        frames = self._unwritten
        target = self._max_buffer * 3 // 4
        kept: list[bytes] = []
        gap = self._gap or _GapCount(_reason(self.failed))
        index = 0
        while index < len(frames) and self._unwritten_bytes > target:
            data = frames[index]
            index += 1
            try:
                record = decode(memoryview(data)[runlog.FRAME.size :])
            except Exception:
                record = None
            if isinstance(record, _DROPPABLE):
                gap.add(record.step, len(data))
                self._unwritten_bytes -= len(data) + _OVERHEAD
                with self._file.lock:
                    self._held -= 1
            else:
                kept.append(data)  # a start, config or finish record: small, never dropped
        if gap.rows:
            self._gap = gap
            warn_once(
                "gap",
                f"trackline cannot write its run log ({gap.reason}) and holds "
                f"{self._max_buffer // (1024 * 1024)} MB of rows in memory: it drops the "
                "oldest rows and records how many in the run (a gap)",
            )
        self._unwritten = kept + frames[index:]

    def _sync_and_close(self) -> None:
        if self.console is not None:
            self.console.close()
        try:
            if self._unwritten or self._gap is not None:
                self._write()
            if self._unwritten:
                warn(f"trackline could not write {len(self._unwritten)} records to its run log")
            with self._file.lock:
                self._file.release()  # the reserved zeros go before the fsync
            self._file.sync()
        except OSError as exc:
            warn(f"trackline could not sync its run log: {exc}")
        finally:
            with self._file.lock:
                self._file.close()


_WINDOW = runlog.WINDOW


class _GapCount:
    """Rows dropped so far, and why; becomes one ``Gap`` record."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.first_step = -1
        self.last_step = -1
        self.rows = 0
        self.bytes = 0

    def add(self, step: int, size: int) -> None:
        if self.rows == 0 or step < self.first_step:
            self.first_step = step
        self.last_step = max(self.last_step, step)
        self.rows += 1
        self.bytes += size

    def record(self) -> Gap:
        return Gap(self.first_step, self.last_step, self.rows, self.bytes, self.reason, time.time())


def _reason(exc: BaseException | None) -> str:
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if code is not None:
        return f"write failed: {os.strerror(code)}"
    return "write failed"


class _ConsoleEnd:
    """In the buffer at ``close``: the console's last lines are written here."""

    __slots__ = ()


class _Marker:
    __slots__ = ("done",)

    def __init__(self, done: threading.Event) -> None:
        self.done = done
