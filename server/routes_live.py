"""Change feeds the dashboard long-polls, so live runs update within a second or two."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from trackline import _wire_types as wt

from .deps import Ctx, MaybeUser
from .live import MAX_TIMEOUT, wait_for_change
from .openapi import ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import Entity, ProjectName, RunId, _project, load_run
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["live"], responses=errors(*ERRORS))

Since = Annotated[
    str | None,
    Query(max_length=64, description="The cursor of the last answer; none: answer at once."),
]
Timeout = Annotated[
    float,
    Query(ge=0, le=MAX_TIMEOUT, description="Seconds to wait for a change before answering."),
]


@router.get(
    "/projects/{entity}/{project}/changes",
    summary="Wait until the project's runs change",
    responses=answers(wt.Changes, 503),
    openapi_extra=OPTIONAL_AUTH,
)
async def project_changes(
    entity: Entity,
    project: ProjectName,
    ctx: Ctx,
    user: MaybeUser,
    since: Since = None,
    timeout: Timeout = 25.0,
) -> Json:
    """Answers when a run of the project is added, logs anything, or is renamed, tagged or
    annotated, or after ``timeout`` seconds; written by any server on the same database."""

    def readable() -> int:
        with ctx.db.read() as conn:
            return int(_project(conn, entity, project, user).id)

    project_id = await run_in_threadpool(readable)
    with ctx.limits.waiters.hold():
        cursor = await wait_for_change(lambda: ctx.cursors.project(project_id), since, timeout)
    return Json(wt.Changes(cursor=cursor, changed=cursor != since))


@router.get(
    "/runs/{run_id}/changes",
    summary="Wait until the run changes",
    responses=answers(wt.Changes, 503),
    openapi_extra=OPTIONAL_AUTH,
)
async def run_changes(
    run_id: RunId, ctx: Ctx, user: MaybeUser, since: Since = None, timeout: Timeout = 25.0
) -> Json:
    """Answers when the run logs anything or is renamed, tagged or annotated, or after
    ``timeout`` seconds."""

    def readable() -> int:
        with ctx.db.read() as conn:
            return int(load_run(conn, run_id, user)[0].id)

    run_pk = await run_in_threadpool(readable)
    with ctx.limits.waiters.hold():
        cursor = await wait_for_change(lambda: ctx.cursors.run(run_pk), since, timeout)
    return Json(wt.Changes(cursor=cursor, changed=cursor != since))
