"""The artifact API: artifacts of a project, their versions, lineage, and blob downloads."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from trackline import _wire_types as wt

from . import artifacts, query
from .deps import ApiError, Ctx, MaybeUser
from .openapi import BINARY, ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import Entity, ProjectName, RunId, _project, load_run
from .schema import blobs, run_files, runs
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["artifacts"], responses=errors(*ERRORS))

Name = Annotated[
    str,
    PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="The artifact's name."),
]
Ref = Annotated[
    str,
    PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="An alias or `v<N>`."),
]
Sha256 = Annotated[str, PathParam(pattern="^[0-9a-f]{64}$", description="sha256 of the content.")]


def _artifact(conn: sa.Connection, project: Any, name: str) -> Any:
    row = artifacts.artifact_row(conn, project.id, name)
    if row is None:
        raise ApiError(404, f"no artifact {name!r} in {project.entity}/{project.name}")
    return row


def _version(conn: sa.Connection, project: Any, name: str, ref: str) -> tuple[Any, Any]:
    artifact = _artifact(conn, project, name)
    version = artifacts.resolve(conn, artifact.id, ref)
    if version is None:
        raise ApiError(404, f"artifact {name!r} has no version or alias {ref!r}")
    return artifact, version


@router.get(
    "/projects/{entity}/{project}/artifacts",
    summary="Artifacts of a project",
    responses=answers(wt.ArtifactList),
    openapi_extra=OPTIONAL_AUTH,
)
def list_artifacts(entity: Entity, project: ProjectName, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        found = artifacts.list_artifacts(conn, row.id, f"{entity}/{project}")
    return Json({"artifacts": found})


@router.get(
    "/projects/{entity}/{project}/artifacts/{name}",
    summary="An artifact's versions",
    responses=answers(wt.Artifact),
    openapi_extra=OPTIONAL_AUTH,
)
def get_artifact(
    entity: Entity, project: ProjectName, name: Name, ctx: Ctx, user: MaybeUser
) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        artifact = _artifact(conn, row, name)
        found = artifacts.versions(conn, artifact, f"{entity}/{project}")
    return Json(
        {
            "name": artifact.name,
            "type": artifact.type,
            "path": f"{entity}/{project}/{artifact.name}",
            "versions": found,
        }
    )


@router.get(
    "/projects/{entity}/{project}/artifacts/{name}/{ref}",
    summary="One version (by alias or v<N>) with its manifest",
    responses=answers(wt.ArtifactVersion),
    openapi_extra=OPTIONAL_AUTH,
)
def get_version(
    entity: Entity, project: ProjectName, name: Name, ref: Ref, ctx: Ctx, user: MaybeUser
) -> Json:
    """``files`` lists ``path``, ``sha256``, ``size`` and ``uploaded``; download each with
    ``GET /api/v1/blobs/{sha256}``. ``complete`` is true once every file is uploaded."""
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        artifact, version = _version(conn, row, name, ref)
        aliases = artifacts.aliases_of(conn, artifact.id).get(version.id, [])
        out = artifacts.version_dict(
            conn, artifact, version, f"{entity}/{project}", aliases, detail=True
        )
    return Json(out)


@router.get(
    "/projects/{entity}/{project}/artifacts/{name}/{ref}/lineage",
    summary="The run that produced a version and the runs that used it",
    responses=answers(wt.Lineage),
    openapi_extra=OPTIONAL_AUTH,
)
def get_lineage(
    entity: Entity, project: ProjectName, name: Name, ref: Ref, ctx: Ctx, user: MaybeUser
) -> Json:
    with ctx.db.read() as conn:
        row = _project(conn, entity, project, user)
        artifact, version = _version(conn, row, name, ref)
        found = artifacts.lineage(conn, version, user)
    return Json(
        {"path": f"{entity}/{project}/{artifact.name}", "version": version.version, **found}
    )


@router.get(
    "/runs/{run_id}/artifacts",
    summary="Artifact versions a run logged and used",
    responses=answers(wt.RunArtifacts),
    openapi_extra=OPTIONAL_AUTH,
)
def run_artifacts(run_id: RunId, ctx: Ctx, user: MaybeUser) -> Json:
    with ctx.db.read() as conn:
        row, _ = load_run(conn, run_id, user)
        found = artifacts.run_artifacts(conn, row.id)
    return Json(found)


@router.get(
    "/blobs/{sha256}",
    summary="Download content by its sha256",
    response_class=StreamingResponse,
    responses=answers(None, media=BINARY),
    openapi_extra=OPTIONAL_AUTH,
)
def get_blob(sha256: Sha256, ctx: Ctx, user: MaybeUser) -> StreamingResponse:
    """Readable by whoever can read a run that has a file (or artifact file) with this content."""
    with ctx.db.read() as conn:
        stored = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).first()
        owners = conn.execute(
            sa.select(runs.c.project_id, runs.c.creator_id)
            .select_from(run_files.join(runs, run_files.c.run_pk == runs.c.id))
            .where(run_files.c.sha256 == sha256)
        ).all()
        readable = False
        for owner in owners:
            if owner.project_id is None:
                readable = user is not None and (user.is_admin or user.id == owner.creator_id)
            else:
                project = query.project_by_id(conn, owner.project_id)
                readable = query.can_read(user, project)
            if readable:
                break
    if not readable:
        # Whether content exists is itself information: the same answer as for unknown content.
        if user is None:
            raise ApiError(401, "an API key is needed to read this content")
        raise ApiError(404, f"no readable content {sha256}")
    if stored is None:
        raise ApiError(404, f"content {sha256} is not uploaded yet")
    return StreamingResponse(
        ctx.store.read(sha256),
        media_type="application/octet-stream",
        headers={"content-length": str(stored.size)},
    )
