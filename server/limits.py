"""Per-process caps on concurrent work: past a cap, 503 with ``Retry-After`` at once.

A slot is taken without waiting, so a burst costs the server a quick refusal, not
a queue of requests each holding a connection and memory. The agent and
``trackline.Api`` wait ``Retry-After`` seconds and try again; nothing is lost.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Depends, Request

from .deps import ApiError

#: Seconds a refused client is told to wait.
RETRY_AFTER = 1


class Slots:
    """At most ``size`` holders at once in this process; one more is refused (503)."""

    def __init__(self, size: int, what: str) -> None:
        self.size = size
        self.what = what
        self.held = 0
        self._lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            if self.held >= self.size:
                raise ApiError(
                    503,
                    f"server busy: {self.size} {self.what} already in progress; retry later",
                    headers={"Retry-After": str(RETRY_AFTER)},
                )
            self.held += 1
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1


class Limits:
    """The caps of one server process."""

    def __init__(self, ingest: int, queries: int, waiters: int = 256) -> None:
        self.ingest = Slots(ingest, "uploads")
        self.queries = Slots(queries, "heavy queries")
        self.waiters = Slots(waiters, "waits for changes")


async def _ingest_slot(request: Request) -> AsyncIterator[None]:
    limits: Limits = request.app.state.ctx.limits
    with limits.ingest.hold():
        yield


async def _query_slot(request: Request) -> AsyncIterator[None]:
    limits: Limits = request.app.state.ctx.limits
    with limits.queries.hold():
        yield


#: ``dependencies=[INGEST]`` on a route that takes a body to store.
INGEST: Any = Depends(_ingest_slot)
#: ``dependencies=[HEAVY_QUERY]`` on a route that reads and downsamples much data.
HEAVY_QUERY: Any = Depends(_query_slot)
