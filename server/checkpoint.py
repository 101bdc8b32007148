"""SQLite's WAL checkpoints on a thread of their own, off the writers' path.

In WAL mode a commit appends pages to the ``-wal`` file; a *checkpoint* copies them
into the database file. By default the commit that takes the WAL past 1,000 pages
does that copy itself, inside the request that committed: about a tenth of a live
ingest's time. The server's connections instead checkpoint only past
``FALLBACK_PAGES`` (a safety net, should this thread stop or fall behind), and a
``Checkpointer`` runs a passive checkpoint every ``EVERY_S`` on its own connection:
it waits for no reader or writer, and the writers go on appending meanwhile (the
sqlite3 module releases the GIL while SQLite works).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

log = logging.getLogger("trackline.server")

#: Pages in the WAL past which a committing writer checkpoints itself (SQLite: 1,000).
FALLBACK_PAGES = 16_000
#: How often the checkpointer copies the WAL (seconds). At 1 M points/s the WAL grows by
#: ~5,000 pages a second, well under the fallback.
EVERY_S = 0.5


class Checkpointer:
    """Passive checkpoints of one SQLite database on a daemon thread (``start``, ``stop``)."""

    def __init__(self, path: str, every_s: float = EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        #: Checkpoints run, and the last one's (WAL pages, pages copied): for tests.
        self.runs = 0
        self.last: tuple[int, int] = (0, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Checkpointer:
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after its last checkpoint (the WAL is copied up to here)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        failed_at = 0.0
        try:
            while True:
                stopping = self._stop.is_set()
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as exc:  # retried; the writers' fallback still holds
                    if time.monotonic() - failed_at > 60:
                        failed_at = time.monotonic()
                        log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
                if stopping:
                    return
                self._stop.wait(self.every_s)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One passive checkpoint (busy if another process's runs: it is left to that)."""
        _busy, wal_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        self.last = (int(wal_pages), int(copied))
