"""Teams and users as the dashboard manages them: who is in which team, and user accounts.

Creating users, keys and teams and adding members are in ``routes_users.py``; this module
reads teams and users and takes members out, deactivates and reactivates users. A team
the caller is not in answers as a missing one does (404), unless the caller is an admin.
A team keeps at least one admin: removing or demoting its last one is refused (409).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi import Path as PathParam
from trackline import _wire_types as wt

from . import auth, query
from .deps import ApiError, Ctx, User
from .openapi import ERRORS, answers, errors
from .routes_query import Entity
from .schema import api_keys, entities, members, projects, runs
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["users"], responses=errors(*ERRORS))

UserName = Annotated[str, PathParam(max_length=64, description="The user's name.")]


def team_for(conn: sa.Connection, name: str, user: auth.User) -> Any:
    """The team, if the caller is in it or an admin; else what a missing one gets (404)."""
    found = auth.entity_by_name(conn, name)
    if found is None or found.kind != "team" or not (user.is_admin or found.id in user.teams):
        raise ApiError(404, f"no team {name}")
    return found


def admins_left(conn: sa.Connection, team_id: int, without: int) -> int:
    """How many admins ``team_id`` has besides the user ``without``."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                members.c.team_id == team_id,
                members.c.role == "admin",
                members.c.user_id != without,
            )
        ).scalar_one()
    )


def role_of(conn: sa.Connection, team_id: int, user_id: int) -> str | None:
    """The user's role in the team, ``None`` when not a member."""
    role = conn.execute(
        sa.select(members.c.role).where(members.c.team_id == team_id, members.c.user_id == user_id)
    ).scalar_one_or_none()
    return None if role is None else str(role)


def _role(user: auth.User, team_id: int) -> str | None:
    if team_id in user.team_admin:
        return "admin"
    return "member" if team_id in user.teams else None


@router.get(
    "/teams", summary="The caller's teams (every team for an admin)", responses=answers(wt.TeamList)
)
def list_teams(ctx: Ctx, user: User) -> Json:
    member_count = (
        sa.select(members.c.team_id, sa.func.count().label("n"))
        .group_by(members.c.team_id)
        .subquery()
    )
    project_count = (
        sa.select(projects.c.entity_id, sa.func.count().label("n"))
        .group_by(projects.c.entity_id)
        .subquery()
    )
    statement = (
        sa.select(
            entities.c.id,
            entities.c.name,
            member_count.c.n.label("members"),
            project_count.c.n.label("projects"),
        )
        .select_from(
            entities.outerjoin(member_count, member_count.c.team_id == entities.c.id).outerjoin(
                project_count, project_count.c.entity_id == entities.c.id
            )
        )
        .where(entities.c.kind == "team")
        .order_by(entities.c.name)
    )
    if not user.is_admin:
        statement = statement.where(entities.c.id.in_(list(user.teams)))
    with ctx.db.read() as conn:
        rows = conn.execute(statement).all()
    teams = [
        wt.TeamSummary(
            name=row.name,
            role=_role(user, row.id),
            members=int(row.members or 0),
            projects=int(row.projects or 0),
        )
        for row in rows
    ]
    return Json(wt.TeamList(teams=teams))


@router.get("/teams/{team}", summary="A team's members and projects", responses=answers(wt.Team))
def get_team(team: Entity, ctx: Ctx, user: User) -> Json:
    with ctx.db.read() as conn:
        found = team_for(conn, team, user)
        rows = conn.execute(
            sa.select(entities.c.name, members.c.role)
            .select_from(members.join(entities, entities.c.id == members.c.user_id))
            .where(members.c.team_id == found.id)
            .order_by(entities.c.name)
        ).all()
        counts = (
            sa.select(
                runs.c.project_id,
                sa.func.count().label("runs"),
                sa.func.max(runs.c.updated_at).label("updated_at"),
            )
            .group_by(runs.c.project_id)
            .subquery()
        )
        owned = conn.execute(
            sa.select(
                projects.c.name,
                projects.c.public,
                projects.c.created_at,
                sa.literal(found.name).label("entity"),
                counts.c.runs,
                counts.c.updated_at,
            )
            .select_from(projects.outerjoin(counts, counts.c.project_id == projects.c.id))
            .where(projects.c.entity_id == found.id)
            .order_by(projects.c.name)
        ).all()
    answer = wt.Team(
        name=found.name,
        role=_role(user, found.id),
        members=[wt.TeamMember(user=r.name, role=r.role) for r in rows],
        projects=[wt.Project(**query.project_dict(p, p.runs or 0, p.updated_at)) for p in owned],
    )
    return Json(answer)


@router.delete(
    "/teams/{team}/members/{member}",
    summary="Take a user out of a team (team admin, admin, or the user itself)",
    responses=answers(wt.MemberRemoved, 409),
)
def remove_member(team: Entity, member: UserName, ctx: Ctx, user: User) -> Json:
    """A team admin or an admin removes anyone, a member only itself; the last admin stays."""
    with ctx.db.write() as conn:
        found = team_for(conn, team, user)
        auth.lock_entity(conn, found.id)
        target = auth.entity_by_name(conn, member)
        if member != user.name and not user.can_manage(found.id):
            raise ApiError(403, f"{user.name} may not manage team {team}")
        role = None if target is None else role_of(conn, found.id, target.id)
        if target is None or role is None:
            raise ApiError(404, f"no member {member} in team {team}")
        if role == "admin" and admins_left(conn, found.id, target.id) == 0:
            raise ApiError(409, f"{member} is the last admin of team {team}: make another first")
        conn.execute(
            members.delete().where(members.c.team_id == found.id, members.c.user_id == target.id)
        )
    return Json(wt.MemberRemoved(team=team, user=member))


# -- users (admin) -----------------------------------------------------------------------


def _admin(user: auth.User) -> None:
    if not user.is_admin:
        raise ApiError(403, "only an admin may manage users")


@router.get("/users", summary="Every user (admin)", responses=answers(wt.UserList))
def list_users(ctx: Ctx, user: User) -> Json:
    _admin(user)
    keys = (
        sa.select(api_keys.c.user_id, sa.func.count().label("n"))
        .group_by(api_keys.c.user_id)
        .subquery()
    )
    with ctx.db.read() as conn:
        rows = conn.execute(
            sa.select(
                entities.c.name,
                entities.c.is_admin,
                entities.c.created_at,
                entities.c.deactivated_at,
                keys.c.n,
            )
            .select_from(entities.outerjoin(keys, keys.c.user_id == entities.c.id))
            .where(entities.c.kind == "user")
            .order_by(entities.c.name)
        ).all()
    users = [
        wt.UserInfo(
            name=r.name,
            admin=bool(r.is_admin),
            deactivated=r.deactivated_at is not None,
            keys=int(r.n or 0),
            created_at=r.created_at,
            deactivated_at=r.deactivated_at,
        )
        for r in rows
    ]
    return Json(wt.UserList(users=users))


def _set_deactivated(ctx: Ctx, user: auth.User, name: str, when: float | None) -> Json:
    _admin(user)
    with ctx.db.write() as conn:
        target = auth.entity_by_name(conn, name)
        if target is None or target.kind != "user":
            raise ApiError(404, f"no user {name}")
        if target.id == user.id and when is not None:
            raise ApiError(409, "an admin cannot deactivate itself: ask another admin")
        # Deactivating again keeps the first time.
        stamp = None if when is None else sa.func.coalesce(entities.c.deactivated_at, when)
        conn.execute(
            entities.update().where(entities.c.id == target.id).values(deactivated_at=stamp)
        )
    return Json(wt.Activation(name=name, deactivated=when is not None))


@router.post(
    "/users/{name}/deactivate",
    summary="Deactivate a user: its keys are refused (admin)",
    responses=answers(wt.Activation, 409),
)
def deactivate_user(name: UserName, ctx: Ctx, user: User) -> Json:
    """The user's keys, projects and memberships stay; every request with its keys gets 401."""
    return _set_deactivated(ctx, user, name, time.time())


@router.post(
    "/users/{name}/reactivate",
    summary="Reactivate a user: its keys work again (admin)",
    responses=answers(wt.Activation),
)
def reactivate_user(name: UserName, ctx: Ctx, user: User) -> Json:
    return _set_deactivated(ctx, user, name, None)
