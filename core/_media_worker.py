"""The media thread: encodes images, audio and tables off the training thread.

It is separate from the writer thread so that a backlog of PNG encoding never
delays metrics. Finished media records are handed to the writer's buffer.
"""

from __future__ import annotations

import queue
import threading
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

    def resolve(self) -> Record | None:
        """Write the files; the record describing them, or ``None`` if none could be written."""
        described: list[dict[str, Any]] = []
        kind = ""
        for item in self.items:
            try:
                described.append(item.write(self.run_dir / "media"))
                kind = item.kind
            except Exception as exc:  # one bad image must not stop the others
                warn_once(f"media:{self.key}", f"trackline: could not write {self.key!r}: {exc}")
        if not described:
            return None
        return MediaRecord(self.step, self.time, self.key, kind, described)


class Job(Protocol):
    """Work for the media thread: media to encode, artifact files to hash."""

    def resolve(self) -> Record | None: ...


class MediaWorker:
    """One thread, started on first use, that turns jobs (``MediaJob``, ``ArtifactJob``) into records."""

    def __init__(self, deliver: Callable[[Record], None]) -> None:
        self._deliver = deliver
        self._queue: queue.Queue[Job | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trackline-media", daemon=True)
            self._thread.start()
        self._queue.put(job)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            record = job.resolve()
            if record is not None:
                self._deliver(record)

    def close(self, timeout: float) -> bool:
        """Finish queued jobs; ``False`` if that took longer than ``timeout``."""
        if self._thread is None:
            return True
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()
