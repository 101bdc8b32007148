"""The processes that write a run (``GET /runs/{run_id}/writers``): a distributed run's
ranks, each with its host, pid, state, first and last time heard of, rows and the bytes
of its streams, so that a dead rank of a 4-rank run shows at a glance."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from trackline import _ranks
from trackline import _wire_types as wt

from . import query, runstate
from .deps import Ctx, MaybeUser
from .openapi import ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import RunId, load_run
from .schema import streams
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["query"], responses=errors(*ERRORS))


def writers_of(conn: sa.Connection, row: Any, now: float, timeout: float) -> list[dict[str, Any]]:
    """The run's writers as ``wt.Writer`` fields, rank 0 first."""
    fold = runstate.RunState(row).fold
    found = _ranks.writers(fold, alone=True)
    held: dict[int, dict[str, int]] = {}
    for name, committed in conn.execute(
        sa.select(streams.c.name, streams.c.committed).where(streams.c.run_pk == row.id)
    ):
        if _ranks.STREAM.match(name) is None:
            continue
        base, rank = _ranks.split_stream(name)
        held.setdefault(rank or 0, {})[base] = int(committed)
    out = []
    for writer in found:
        rank = int(writer["rank"])
        entry = {**writer, "pid": writer.get("pid") or None, "streams": held.get(rank, {})}
        if rank == 0:  # the run's own state, with the verdict of its stopped heartbeats
            entry["state"] = query.effective_state(row.state, row.last_seen, now, timeout)
        out.append(entry)
    return out


@router.get(
    "/runs/{run_id}/writers",
    summary="The processes (ranks) that write a run",
    responses=answers(wt.Writers),
    openapi_extra=OPTIONAL_AUTH,
)
def run_writers(run_id: RunId, ctx: Ctx, user: MaybeUser) -> Json:
    """Rank 0 (the run's own process) first, then every other rank that wrote to it: host,
    pid, state (a rank killed without a finish is ``crashed`` by its agent's verdict),
    first and last time heard of, metrics rows, and the bytes of each of its streams."""
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        found = writers_of(conn, row, time.time(), ctx.config.heartbeat_timeout)
    return Json({"writers": found})
