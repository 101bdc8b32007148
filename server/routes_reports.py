"""Reports: a project's markdown with live panels, its versions and its share links.

Reading a report needs read access to its project (a report of a project the caller may
not read answers as a missing one); creating, saving, restoring, deleting and sharing
need write access. A share link's token reads that one report and what its panels show.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from trackline import _report_format as rf
from trackline import _wire_types as wt

from . import auth, ingest, reports
from .deps import ApiError, Context, Ctx, MaybeUser, User
from .limits import HEAVY_QUERY
from .openapi import BINARY, ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import (
    Entity,
    ProjectName,
    _project,
    file_response,
    require_write,
    writable_project,
)
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=errors(*ERRORS))

Slug = Annotated[str, PathParam(pattern=reports.SLUG, description="The report's name in URLs.")]
Version = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="A version number.")]
ShareId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The share link's id.")]
Token = Annotated[str, PathParam(max_length=128, description="A share link's token.")]
_BASE = "/projects/{entity}/{project}/reports"


class NewReport(BaseModel):
    title: str = Field(min_length=1, max_length=reports.MAX_TITLE)
    body: str = Field("", max_length=reports.MAX_BODY)
    slug: str | None = Field(None, pattern=reports.SLUG, description="Default: from the title.")


class ReportSave(BaseModel):
    title: str = Field(min_length=1, max_length=reports.MAX_TITLE)
    body: str = Field(max_length=reports.MAX_BODY)
    base_version: int | None = Field(
        None, description="The version the edit started from; refused (409) if it moved."
    )
    force: bool = Field(False, description="Save even if the report moved since base_version.")


class NewShare(BaseModel):
    expires_in_days: float | None = Field(None, gt=0, le=3650)


def _checked(body: str) -> None:
    """Refuse (422) a body with a malformed block, naming the block's line."""
    try:
        rf.blocks(body)
    except rf.ReportFormatError as exc:
        raise ApiError(422, f"the report's {exc}") from None


def _report(
    conn: sa.Connection, entity: str, project: str, slug: str, user: auth.User | None, write: bool
) -> tuple[Any, Any]:
    row = _project(conn, entity, project, user)
    found = reports.find(conn, row.id, slug)
    if found is None:
        raise ApiError(404, f"no report {entity}/{project}/{slug}")
    if write:
        require_write(row, user, f"{entity}/{project}", "change reports")
    return row, found


@router.get(
    _BASE,
    summary="A project's reports",
    responses=answers(wt.ReportList),
    openapi_extra=OPTIONAL_AUTH,
)
def list_reports(entity: Entity, project: ProjectName, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        return Json(
            wt.ReportList(reports=[wt.ReportInfo(**r) for r in reports.listing(conn, row.id)])
        )


@router.post(
    _BASE,
    summary="Create a report",
    status_code=201,
    responses=answers(wt.Report, 409, status=201),
)
def create_report(
    entity: Entity, project: ProjectName, body: NewReport, ctx: Ctx, user: User
) -> Json:
    _checked(body.body)
    path = f"{entity}/{project}"
    with ctx.db.write() as conn:
        row = writable_project(conn, entity, project, user, "change reports")
        slug = body.slug or reports.free_slug(conn, row.id, body.title)
        if reports.find(conn, row.id, slug) is not None:
            raise ApiError(409, f"{path} already has a report {slug!r}")
        created = reports.create(conn, row.id, slug, body.title, body.body, user.id)
        doc = reports.document(conn, created, path)
    return Json(doc, status_code=201)


@router.get(
    _BASE + "/{slug}",
    summary="A report (or one of its versions)",
    responses=answers(wt.Report),
    openapi_extra=OPTIONAL_AUTH,
)
def get_report(
    entity: Entity,
    project: ProjectName,
    slug: Slug,
    ctx: Ctx,
    user: MaybeUser,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Json:
    with ctx.db.read() as conn:
        _, found = _report(conn, entity, project, slug, user, write=False)
        doc = reports.document(conn, found, f"{entity}/{project}", version)
    if doc is None:
        raise ApiError(404, f"report {slug} has no version {version}")
    return Json(doc)


@router.put(
    _BASE + "/{slug}",
    summary="Save a report: a new version unless nothing changed",
    responses=answers(wt.Report, 409),
)
def save_report(
    entity: Entity, project: ProjectName, slug: Slug, body: ReportSave, ctx: Ctx, user: User
) -> Json:
    """Saving what the report already holds changes nothing (no new version). A save
    whose ``base_version`` is not the report's version is refused (409) unless ``force``."""
    _checked(body.body)
    path = f"{entity}/{project}"
    with ctx.db.write() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        try:
            saved = reports.save(
                conn, found, body.title, body.body, user.id, body.base_version, body.force
            )
        except reports.Conflict as exc:
            raise ApiError(
                409,
                f"the report {path}/{slug} is at version {exc.args[0]}, not "
                f"{body.base_version}: someone saved it since; pull it again, or force",
            ) from None
        return Json(reports.document(conn, saved, path))


@router.delete(
    _BASE + "/{slug}",
    summary="Delete a report, its versions and share links",
    responses=answers(wt.Deleted),
)
def delete_report(entity: Entity, project: ProjectName, slug: Slug, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        reports.delete(conn, found.id)
    return Json(wt.Deleted(deleted=slug))


@router.get(
    _BASE + "/{slug}/versions",
    summary="A report's versions, newest first",
    responses=answers(wt.ReportVersions),
    openapi_extra=OPTIONAL_AUTH,
)
def list_versions(
    entity: Entity, project: ProjectName, slug: Slug, ctx: Ctx, user: MaybeUser
) -> Json:
    with ctx.db.read() as conn:
        _, found = _report(conn, entity, project, slug, user, write=False)
        return Json(
            wt.ReportVersions(
                versions=[wt.ReportVersion(**v) for v in reports.versions(conn, found.id)]
            )
        )


@router.post(
    _BASE + "/{slug}/versions/{version}/restore",
    summary="Restore an older version (as a new version)",
    responses=answers(wt.Report),
)
def restore_version(
    entity: Entity, project: ProjectName, slug: Slug, version: Version, ctx: Ctx, user: User
) -> Json:
    path = f"{entity}/{project}"
    with ctx.db.write() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        old = reports.document(conn, found, path, version)
        if old is None:
            raise ApiError(404, f"report {slug} has no version {version}")
        saved = reports.save(conn, found, old["title"], old["body"], user.id, found.version, False)
        return Json(reports.document(conn, saved, path))


@router.get(
    _BASE + "/{slug}/data",
    summary="A report with its run sets' runs and its panels' data",
    responses=answers(wt.ReportData),
    openapi_extra=OPTIONAL_AUTH,
    dependencies=[HEAVY_QUERY],
)
async def report_data(
    entity: Entity,
    project: ProjectName,
    slug: Slug,
    ctx: Ctx,
    user: MaybeUser,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Json:
    def work() -> Json:
        with ctx.db.read() as conn:
            row, found = _report(conn, entity, project, slug, user, write=False)
            doc = reports.document(conn, found, f"{entity}/{project}", version)
            if doc is None:
                raise ApiError(404, f"report {slug} has no version {version}")
            return _data(ctx, conn, doc, row.id)

    return await run_in_threadpool(work)


def _data(ctx: Context, conn: sa.Connection, doc: dict[str, Any], project_id: int) -> Json:
    data = reports.panel_data(
        conn, doc, project_id, doc["project"], ctx.config.heartbeat_timeout, ctx.blocks, ctx.store
    )
    return Json(data, sanitized=False)


# -- share links -----------------------------------------------------------------------


@router.post(
    _BASE + "/{slug}/shares",
    summary="A read-only link to the report",
    status_code=201,
    responses=answers(wt.CreatedShareLink, status=201),
)
def create_share(
    entity: Entity, project: ProjectName, slug: Slug, body: NewShare, ctx: Ctx, user: User
) -> Json:
    """The token is in this answer only (it is stored hashed); the link is
    ``/#/shared/<token>`` on this server and reads this report and nothing else."""
    expires = None if body.expires_in_days is None else time.time() + body.expires_in_days * 86400
    with ctx.db.write() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        return Json(reports.share(conn, found.id, user.id, expires), status_code=201)


@router.get(
    _BASE + "/{slug}/shares",
    summary="The report's share links",
    responses=answers(wt.ShareLinks),
)
def list_shares(entity: Entity, project: ProjectName, slug: Slug, ctx: Ctx, user: User) -> Json:
    with ctx.db.read() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        return Json(
            wt.ShareLinks(shares=[wt.ShareLink(**s) for s in reports.shares(conn, found.id)])
        )


@router.delete(
    _BASE + "/{slug}/shares/{share_id}",
    summary="Revoke a share link",
    responses=answers(wt.Revoked),
)
def revoke_share(
    entity: Entity, project: ProjectName, slug: Slug, share_id: ShareId, ctx: Ctx, user: User
) -> Json:
    with ctx.db.write() as conn:
        _, found = _report(conn, entity, project, slug, user, write=True)
        if not reports.revoke(conn, found.id, share_id):
            raise ApiError(404, f"no live share link {share_id} of report {slug}")
    return Json(wt.Revoked(revoked=share_id))


@router.get(
    "/shared/{token}",
    summary="The report a share link reads, with its panels' data",
    responses=answers(wt.ReportData),
    openapi_extra={"security": [{}]},
    dependencies=[HEAVY_QUERY],
)
async def shared_report(token: Token, ctx: Ctx) -> Json:
    """No API key: the token is the grant. A revoked, expired or unknown token gets 404."""

    def work() -> Json:
        with ctx.db.read() as conn:
            found = reports.shared_report(conn, token)
            if found is None:
                raise ApiError(404, "no such shared report (the link may be revoked or expired)")
            path = reports.project_path(conn, found.project_id)
            doc = reports.document(conn, found, path)
            return _data(ctx, conn, doc, found.project_id)

    return await run_in_threadpool(work)


@router.get(
    "/shared/{token}/files/{index}/{path:path}",
    summary="A file a shared report's media panel shows",
    response_class=StreamingResponse,
    responses=answers(None, media=BINARY),
    openapi_extra={"security": [{}]},
)
def shared_file(
    token: Token,
    index: Annotated[int, PathParam(ge=0, le=rf.MAX_BLOCKS, description="The panel's index.")],
    path: str,
    ctx: Ctx,
) -> Response:
    """Only a file that media panel ``index`` of the report shows; anything else is 404."""
    safe = ingest.safe_path(path)
    with ctx.db.read() as conn:
        found = reports.shared_report(conn, token)
        if found is None or safe is None:
            raise ApiError(404, "no such shared file")
        doc = reports.document(conn, found, reports.project_path(conn, found.project_id))
        run = reports.media_path_shown(conn, doc, found.project_id, index, safe)
        if run is None:
            raise ApiError(404, "no such shared file")
        return file_response(ctx, conn, run, safe)
