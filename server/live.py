"""Long-poll change feeds: answer as soon as a project's runs (or one run) change.

A change is any write that moves ``runs.updated_at`` (ingest of any stream, a PATCH of
name, tags or notes) or the number of a project's runs. The cursor is read from the
database, so every server process sharing it sees a change within ``POLL`` seconds,
whichever process wrote it. One read per ``POLL`` per project (or run) and process serves
all of its waiters, so a thousand open dashboards cost the database what one does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from .db import Database
from .schema import runs

#: Seconds between two reads of a cursor: the added latency of a change.
POLL = 0.25
#: The longest a request may wait (a proxy's read timeout must be above it).
MAX_TIMEOUT = 30.0


class Cursors:
    """The current cursor of a project or run, read at most once per ``POLL`` seconds."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._memo: dict[tuple[str, int], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def project(self, project_id: int) -> str:
        def read() -> str:
            with self.db.read() as conn:
                count, latest = conn.execute(
                    sa.select(sa.func.count(), sa.func.max(runs.c.updated_at)).where(
                        runs.c.project_id == project_id
                    )
                ).one()
            return f"{count}-{latest or 0:.6f}"

        return self._cached(("project", project_id), read)

    def run(self, run_pk: int) -> str:
        def read() -> str:
            with self.db.read() as conn:
                latest = conn.execute(
                    sa.select(runs.c.updated_at).where(runs.c.id == run_pk)
                ).scalar()
            return f"{latest or 0:.6f}"

        return self._cached(("run", run_pk), read)

    def _cached(self, key: tuple[str, int], read: Callable[[], str]) -> str:
        now = time.monotonic()
        with self._lock:
            found = self._memo.get(key)
        if found is not None and now - found[0] < POLL:
            return found[1]
        cursor = read()
        with self._lock:
            self._memo[key] = (time.monotonic(), cursor)
            if len(self._memo) > 10_000:  # keys of projects nobody follows any more
                self._memo.clear()
        return cursor


async def wait_for_change(read: Callable[[], str], since: str | None, timeout: float) -> str:
    """The cursor as soon as it differs from ``since``, or ``since`` after ``timeout`` seconds."""
    cursor = await run_in_threadpool(read)
    deadline = time.monotonic() + min(timeout, MAX_TIMEOUT)
    while cursor == since:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(POLL, left))
        cursor = await run_in_threadpool(read)
    return cursor
