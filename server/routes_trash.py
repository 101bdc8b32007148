"""The trash: deleting runs (one, or a selection), restoring them, purging them for good.

Deleting needs write access to the run's project; a deleted run then answers as a
missing one everywhere but here, for ``trash.TRASH_DAYS`` days, after which any server
purges it (at start, hourly, and whenever the trash is used).
"""

from __future__ import annotations

import time
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field
from trackline import _wire_types as wt
from trackline._names import RUN_ID

from . import query, trash
from .deps import Ctx, User
from .openapi import ERRORS, answers, errors
from .routes_query import Entity, ProjectName, RunId, load_run, writable_project
from .schema import entities, runs
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["trash"], responses=errors(*ERRORS))

MAX_AT_ONCE = 1000


class RunIds(BaseModel):
    runs: list[Annotated[str, Field(pattern=RUN_ID)]] = Field(min_length=1, max_length=MAX_AT_ONCE)


@router.delete(
    "/runs/{run_id}",
    summary="Move a run to its project's trash",
    responses=answers(wt.Trashed),
)
def delete_run(run_id: RunId, ctx: Ctx, user: User) -> Json:
    """Restorable for 30 days (``POST /runs/{run_id}/restore``), then purged."""
    with ctx.db.write() as conn:
        if trash.purge(conn):
            ctx.forget_deleted()
        row, _ = load_run(conn, run_id, user, write=True)
        now = time.time()
        trash.trash(conn, [row.id], user.id, now)
    return Json(wt.Trashed(runs=[run_id], purge_at=trash.purge_at(now)))


@router.post(
    "/projects/{entity}/{project}/runs/delete",
    summary="Move runs of a project to its trash",
    responses=answers(wt.Trashed),
)
def delete_runs(entity: Entity, project: ProjectName, body: RunIds, ctx: Ctx, user: User) -> Json:
    """Runs of the project among ``runs`` (others, and runs already in the trash, are left)."""
    with ctx.db.write() as conn:
        if trash.purge(conn):
            ctx.forget_deleted()
        row = writable_project(conn, entity, project, user, "delete runs")
        found = conn.execute(
            sa.select(runs.c.id, runs.c.run_id).where(
                runs.c.project_id == row.id,
                runs.c.run_id.in_(body.runs),
                runs.c.deleted_at.is_(None),
            )
        ).all()
        now = time.time()
        trash.trash(conn, [r.id for r in found], user.id, now)
    return Json(wt.Trashed(runs=sorted(r.run_id for r in found), purge_at=trash.purge_at(now)))


@router.get(
    "/projects/{entity}/{project}/trash",
    summary="A project's deleted runs",
    responses=answers(wt.TrashList),
)
def list_trash(entity: Entity, project: ProjectName, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        if trash.purge(conn):
            ctx.forget_deleted()
        row = writable_project(conn, entity, project, user, "delete runs")
        found = trash.trashed(conn, row.id)
        names = dict(
            conn.execute(
                sa.select(entities.c.id, entities.c.name).where(
                    entities.c.id.in_({r.deleted_by for r in found if r.deleted_by is not None})
                )
            ).all()
        )
    now = time.time()
    path = f"{entity}/{project}"
    out = []
    for r in found:
        run = query.run_dict(r, path, now, ctx.config.heartbeat_timeout)
        run.update(
            deleted_at=r.deleted_at,
            deleted_by=names.get(r.deleted_by, ""),
            purge_at=trash.purge_at(r.deleted_at),
        )
        out.append(run)
    return Json({"runs": out})


@router.post(
    "/runs/{run_id}/restore",
    summary="Bring a run back from the trash",
    responses=answers(wt.Restored),
)
def restore_run(run_id: RunId, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        if trash.purge(conn):
            ctx.forget_deleted()
        row, _ = load_run(conn, run_id, user, write=True, trashed=True)
        trash.restore(conn, row.id)
    return Json(wt.Restored(restored=run_id))


@router.delete(
    "/runs/{run_id}/trash",
    summary="Delete a run in the trash for good",
    responses=answers(wt.Deleted),
)
def purge_run(run_id: RunId, ctx: Ctx, user: User) -> Json:
    """Cannot be undone: the run's rows go now (its files stay where other runs name them)."""
    with ctx.db.write() as conn:
        row, _ = load_run(conn, run_id, user, write=True, trashed=True)
        trash.purge(conn, run_pks=[row.id])
    ctx.forget_deleted()  # SQLite may hand the deleted rows' ids to new ones
    return Json(wt.Deleted(deleted=run_id))
