"""Project settings: visibility, name, owner, deletion.

Each needs a caller who manages the project's owner (the owning user, an admin of the
owning team, or an admin). A project the caller may not read answers as a missing one
does (404); one it reads but may not manage is a 403, which reveals nothing.

Deleting a project deletes its runs with everything the database holds about them
(streams, series and chunks, histograms, media, files, console lines, artifacts, lineage)
in one transaction. Blobs stay: content is stored once for everyone who uploaded it.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from trackline import _wire_types as wt
from trackline._names import ENTITY, PROJECT

from . import auth, possession, query, trash
from .deps import ApiError, Ctx, User
from .openapi import ERRORS, answers, errors
from .routes_query import Entity, ProjectName, _project
from .runstate import unpack
from .schema import (
    artifact_aliases,
    artifact_usage,
    artifact_versions,
    artifacts,
    projects,
    report_shares,
    report_versions,
    reports,
    run_files,
    runs,
    view_settings,
)
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["query"], responses=errors(*ERRORS))


def _managed(conn: sa.Connection, entity: str, project: str, user: auth.User) -> Any:
    """The project, if the caller may change its settings (404 unread, 403 read only)."""
    row = _project(conn, entity, project, user)
    if not user.can_manage(row.entity_id):
        raise ApiError(403, f"{user.name} may not change project {entity}/{project}")
    return row


def _taken(conn: sa.Connection, entity_id: int, name: str) -> bool:
    return (
        conn.execute(
            sa.select(projects.c.id).where(
                projects.c.entity_id == entity_id, projects.c.name == name
            )
        ).first()
        is not None
    )


def _update(conn: sa.Connection, project_id: int, values: dict[str, Any], taken: str) -> None:
    """Change the project's row; a name taken meanwhile by a concurrent request is a 409."""
    try:
        with conn.begin_nested():
            conn.execute(projects.update().where(projects.c.id == project_id).values(**values))
    except sa.exc.IntegrityError:
        raise ApiError(409, taken) from None


class ProjectPatch(BaseModel):
    public: bool | None = Field(None, description="Anyone may read a public project.")
    name: str | None = Field(None, pattern=PROJECT, description="A new name (same owner).")


@router.patch(
    "/projects/{entity}/{project}",
    summary="Make a project public or private, or rename it",
    responses=answers(wt.Visibility, 409),
)
def patch_project(
    entity: Entity, project: ProjectName, body: ProjectPatch, ctx: Ctx, user: User
) -> Json:
    """A field left out (or null) stays as it is. Renaming keeps the runs, artifacts and settings (they refer to the project, not its
    name); a name the owner already uses is a 409. A client that logs to the old name
    afterwards starts a new project of that name."""
    with ctx.db.write() as conn:
        row = _managed(conn, entity, project, user)
        values: dict[str, Any] = {}
        if body.public is not None:
            values["public"] = body.public
        if body.name is not None and body.name != row.name:
            if _taken(conn, row.entity_id, body.name):
                raise ApiError(409, f"{entity} already has a project {body.name}")
            values["name"] = body.name
        if values:
            _update(conn, row.id, values, f"{entity} already has a project {body.name}")
        public = bool(values.get("public", row.public))
    return Json(wt.Visibility(entity=entity, name=values.get("name", row.name), public=public))


class Transfer(BaseModel):
    to: str = Field(pattern=ENTITY, description="A team the caller administers.")


@router.post(
    "/projects/{entity}/{project}/transfer",
    summary="Give a project to a team",
    responses=answers(wt.Project, 409),
)
def transfer_project(
    entity: Entity, project: ProjectName, body: Transfer, ctx: Ctx, user: User
) -> Json:
    """The team gets the project with its runs; the content the runs name goes with them
    (the team holds what the old owner held of it), so nothing becomes unreadable."""
    with ctx.db.write() as conn:
        row = _managed(conn, entity, project, user)
        team = auth.entity_by_name(conn, body.to)
        if team is None or team.kind != "team" or not (user.is_admin or team.id in user.teams):
            raise ApiError(404, f"no team {body.to}")
        if not user.can_manage(team.id):
            raise ApiError(403, f"{user.name} may not manage team {body.to}")
        if team.id == row.entity_id:
            raise ApiError(409, f"{entity}/{project} already belongs to {body.to}")
        if _taken(conn, team.id, row.name):
            raise ApiError(409, f"{body.to} already has a project {row.name}")
        possession.grant(
            conn, team.id, possession.held(conn, row.entity_id, _content(conn, row.id))
        )
        _update(conn, row.id, {"entity_id": team.id}, f"{body.to} already has a project {row.name}")
        moved = query.project_row(conn, team.name, row.name)
        count = conn.execute(
            sa.select(sa.func.count()).where(runs.c.project_id == row.id)
        ).scalar_one()
    return Json(wt.Project(**query.project_dict(moved, count)))


def _content(conn: sa.Connection, project_id: int) -> set[str]:
    """The sha256 of every file the project's runs and artifact versions name."""
    project_runs = sa.select(runs.c.id).where(runs.c.project_id == project_id)
    shas = set(
        conn.execute(
            sa.select(run_files.c.sha256)
            .where(run_files.c.run_pk.in_(project_runs), run_files.c.sha256.is_not(None))
            .distinct()
        ).scalars()
    )
    manifests = conn.execute(
        sa.select(artifact_versions.c.manifest)
        .join(artifacts, artifacts.c.id == artifact_versions.c.artifact_id)
        .where(artifacts.c.project_id == project_id)
    ).scalars()
    for manifest in manifests:
        shas.update(entry[1] for entry in unpack(manifest, {}).get("files", []))
    return shas


def delete_project_rows(conn: sa.Connection, project_id: int) -> int:
    """Delete a project and everything the database holds about its runs; how many runs.

    Children before parents, so that PostgreSQL's foreign keys hold at every statement.
    Versions of other projects that runs of this one produced lose their producer; runs
    of other projects that used this project's artifacts lose that lineage.
    """
    run_pks = sa.select(runs.c.id).where(runs.c.project_id == project_id)
    # Ingest holds a run's row while it applies records: wait for those in flight, and
    # keep new ones out until the runs are gone (PostgreSQL; SQLite has one writer).
    count = len(conn.execute(run_pks.with_for_update()).all())
    artifact_ids = sa.select(artifacts.c.id).where(artifacts.c.project_id == project_id)
    version_ids = sa.select(artifact_versions.c.id).where(
        artifact_versions.c.artifact_id.in_(artifact_ids)
    )
    conn.execute(
        artifact_usage.delete().where(
            sa.or_(
                artifact_usage.c.run_pk.in_(run_pks), artifact_usage.c.version_id.in_(version_ids)
            )
        )
    )
    conn.execute(artifact_aliases.delete().where(artifact_aliases.c.artifact_id.in_(artifact_ids)))
    conn.execute(
        artifact_versions.update()
        .where(artifact_versions.c.producer_run_pk.in_(run_pks))
        .values(producer_run_pk=None)
    )
    conn.execute(
        artifact_versions.delete().where(artifact_versions.c.artifact_id.in_(artifact_ids))
    )
    conn.execute(artifacts.delete().where(artifacts.c.project_id == project_id))
    trash.delete_run_rows(conn, run_pks)
    conn.execute(view_settings.delete().where(view_settings.c.project_id == project_id))
    report_ids = sa.select(reports.c.id).where(reports.c.project_id == project_id)
    for table in (report_shares, report_versions):
        conn.execute(table.delete().where(table.c.report_id.in_(report_ids)))
    conn.execute(reports.delete().where(reports.c.project_id == project_id))
    conn.execute(projects.delete().where(projects.c.id == project_id))
    return count


@router.delete(
    "/projects/{entity}/{project}",
    summary="Delete a project and its runs",
    responses=answers(wt.ProjectDeleted),
)
def delete_project(
    entity: Entity,
    project: ProjectName,
    ctx: Ctx,
    user: User,
    confirm: Annotated[
        str, Query(max_length=200, description="The project's full name, ENTITY/PROJECT, again.")
    ],
) -> Json:
    """Cannot be undone: ``confirm`` must repeat the project's full name (else 422)."""
    path = f"{entity}/{project}"
    with ctx.db.write() as conn:
        row = _managed(conn, entity, project, user)
        if confirm != path:
            raise ApiError(422, f"to delete {path}, send confirm={path}")
        deleted = delete_project_rows(conn, row.id)
    ctx.forget_deleted()  # SQLite may hand the deleted rows' ids to new ones
    return Json(wt.ProjectDeleted(deleted=path, runs=deleted))
