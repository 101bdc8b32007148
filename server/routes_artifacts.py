"""The artifact API: artifacts of a project, their versions, lineage, and blob downloads."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from trackline import _wire_types as wt

from . import artifacts, auth, possession, ranges
from .deps import ApiError, Ctx, MaybeUser
from .openapi import BINARY, ERRORS, OPTIONAL_AUTH, answers, errors
from .routes_query import Entity, ProjectName, RunId, _project, load_run
from .runstate import unpack
from .schema import blobs
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
    """The artifact (in a project the caller may read: ``_project`` checked)."""
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
    ``GET /api/v1/blobs/{sha256}?artifact={entity}/{project}/{name}:v{version}``. ``complete`` is true once every file is uploaded."""
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
        found = artifacts.run_artifacts(conn, row.id, user)
    return Json(found)


RunParam = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="A run that has a file of this content."),
]
ArtifactParam = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[^/:]+/[^/:]+/[^/:]+:[^/:]+$",
        description="An artifact version with a file of this content: `entity/project/name:ref`.",
    ),
]


def _readable_blob(
    conn: sa.Connection, sha256: str, user: auth.User | None, run: str | None, artifact: str | None
) -> int:
    """The size of content the caller may read through ``run`` or ``artifact``.

    The run or version must be readable by the caller, name the content, and its entity
    must hold it (``possession.py``); otherwise the answer is that of missing content.
    """
    if (run is None) == (artifact is None):
        raise ApiError(400, "name the run (`?run=`) or artifact version (`?artifact=`) to read by")
    if run is not None:
        row, _ = load_run(conn, run, user)
        found = possession.run_has(conn, row, sha256)
        where = f"run {run}"
    else:
        assert artifact is not None
        path, _, ref = artifact.rpartition(":")
        parts = path.split("/")
        if len(parts) != 3 or not ref:
            raise ApiError(400, "name an artifact version as `entity/project/name:ref`")
        project = _project(conn, parts[0], parts[1], user)
        _, version = _version(conn, project, parts[2], ref)
        named = any(sha == sha256 for _, sha, _ in unpack(version.manifest, {}).get("files", []))
        found = named and sha256 in possession.held(conn, project.entity_id, [sha256])
        where = f"artifact {artifact}"
    size = conn.execute(sa.select(blobs.c.size).where(blobs.c.sha256 == sha256)).scalar()
    if not found or size is None:
        # The run or version is readable here: content it lacks is simply not found.
        raise ApiError(404, f"no content {sha256} in {where}")
    return int(size)


@router.get(
    "/blobs/{sha256}",
    summary="Download content of a run or artifact version",
    response_class=StreamingResponse,
    responses=answers(None, 400, 416, media=BINARY),
    openapi_extra=OPTIONAL_AUTH,
)
def get_blob(
    sha256: Sha256,
    ctx: Ctx,
    user: MaybeUser,
    run: RunParam = None,
    artifact: ArtifactParam = None,
    range_header: Annotated[
        str | None, Header(alias="range", description="`bytes=N-`: from byte N on (206).")
    ] = None,
) -> StreamingResponse:
    """Content by its hash, through a run or artifact version that has it (``_readable_blob``):
    a hash alone grants nothing. A ``Range`` goes on with an interrupted download."""
    with ctx.db.read() as conn:
        size = _readable_blob(conn, sha256, user, run, artifact)
    return ranges.content_response(ctx.store, sha256, size, range_header)


@router.head(
    "/blobs/{sha256}",
    summary="Size of content of a run or artifact version",
    response_class=Response,
    responses=answers(None, 400, description="Readable; `x-size` says its size in bytes."),
    openapi_extra=OPTIONAL_AUTH,
)
def has_blob(
    sha256: Sha256, ctx: Ctx, user: MaybeUser, run: RunParam = None, artifact: ArtifactParam = None
) -> Response:
    """What ``GET`` answers, without the content; the size is in ``x-size``."""
    with ctx.db.read() as conn:
        size = _readable_blob(conn, sha256, user, run, artifact)
    return Response(status_code=200, headers={"x-size": str(size)})
