"""The media thread: encodes images, audio and tables off the training thread.

It is separate from the writer thread so that a backlog of PNG encoding never
delays metrics. Finished media records are handed to the writer's buffer.

At finish it is given the time its queue needs as long as that queue moves:
hashing a large checkpoint logged just before ``finish`` is bounded work, and
giving up on it would lose the artifact. It is abandoned only when nothing has
advanced for the stall timeout (a stuck disk), after a hard cap, or on Ctrl-C.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ._warn import warn_once
from .records import MediaRecord, Record

#: Jobs waiting beyond this make ``log`` wait (memory stays bounded).
MAX_QUEUED = 256


class MediaJob:
    """Media logged under one key at a step."""

    __slots__ = ("items", "key", "run_dir", "step", "time")

    def __init__(self, run_dir: Path, step: int, time: float, key: str, items: list[Any]) -> None:
        self.run_dir = run_dir
        self.step = step
        self.time = time
        self.key = key
        self.items = items

    def resolve(self, advance: Callable[[int], None]) -> Record | None:
        """Write the files; the record describing them, or ``None`` if none could be written."""
        described: list[dict[str, Any]] = []
        kind = ""
        for item in self.items:
            try:
                described.append(item.write(self.run_dir / "media"))
                kind = item.kind
                advance(1)
            except Exception as exc:  # one bad image must not stop the others
                warn_once(f"media:{self.key}", f"trackline: could not write {self.key!r}: {exc}")
        if not described:
            return None
        return MediaRecord(self.step, self.time, self.key, kind, described)


class Job(Protocol):
    """Work for the media thread: media to encode, artifact files to hash."""

    def resolve(self, advance: Callable[[int], None]) -> Record | None:
        """The record of the work done; calls ``advance`` as it goes (any positive amount)."""
        ...


class MediaWorker:
    """One thread, started on first use, that turns jobs (``MediaJob``, ``ArtifactJob``) into records."""

    def __init__(self, deliver: Callable[[Record], None]) -> None:
        self._deliver = deliver
        self._queue: queue.Queue[Job | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self.progress = 0  # grows while jobs advance; only the media thread writes it

    def submit(self, job: Job) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trackline-media", daemon=True)
            self._thread.start()
        self._queue.put(job)

    def _advance(self, amount: int) -> None:
        self.progress += amount

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            record = job.resolve(self._advance)
            self._advance(1)
            if record is not None:
                self._deliver(record)

    def pending(self) -> int:
        """Jobs not started yet (approximately)."""
        return self._queue.qsize()

    def close(self, stall: float, cap: float, notice: Callable[[], None] | None = None) -> bool:
        """Finish queued jobs; ``False`` if given up on.

        Waits while the jobs advance: gives up when nothing advanced for ``stall``
        seconds, after ``cap`` seconds in all, or on KeyboardInterrupt. ``notice`` is
        called once if the wait goes on past ``stall``.
        """
        thread = self._thread
        if thread is None:
            return True
        self._queue.put(None)
        started = last_move = time.monotonic()
        seen = self.progress
        noticed = False
        try:
            while True:
                thread.join(min(0.1, stall))
                if not thread.is_alive():
                    return True
                now = time.monotonic()
                if self.progress != seen:
                    seen, last_move = self.progress, now
                if now - last_move >= stall or now - started >= cap:
                    return False
                if not noticed and now - started >= stall and notice is not None:
                    noticed = True
                    notice()
        except KeyboardInterrupt:
            return False
