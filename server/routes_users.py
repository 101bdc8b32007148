"""Users, teams and API keys (and the liveness probe): who may do what."""

from __future__ import annotations

from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from trackline import _wire_types as wt
from trackline._names import ENTITY

from . import auth, ingest, routes_teams
from .deps import ApiError, Ctx, User
from .openapi import ERRORS, answers, errors
from .routes_query import Entity
from .schema import entities, members
from .wire import Json

router = APIRouter(prefix="/api/v1", tags=["users"], responses=errors(*ERRORS))


@router.get(
    "/health",
    tags=["server"],
    summary="Liveness",
    responses=answers(wt.Health),
    openapi_extra={"security": [{}]},
)
def health() -> Json:
    return Json(wt.Health(ok=True, api="v1"))


@router.get(
    "/viewer", tags=["users"], summary="Who the API key belongs to", responses=answers(wt.Viewer)
)
def viewer(ctx: Ctx, user: User) -> Json:
    with ctx.db.read() as conn:
        teams = conn.execute(
            sa.select(entities.c.name).where(entities.c.id.in_(list(user.teams)))
        ).scalars()
        team_names = sorted(teams)
        used = ingest.storage_used(conn, user.id)
    storage = wt.Storage(used_bytes=used, quota_bytes=ctx.config.quota_bytes)
    return Json(wt.Viewer(name=user.name, admin=user.is_admin, teams=team_names, storage=storage))


class NewUser(BaseModel):
    name: str = Field(pattern=ENTITY)
    admin: bool = False


@router.post(
    "/users",
    summary="Create a user and its first API key (admin)",
    status_code=201,
    responses=answers(wt.CreatedUser, 409, status=201),
)
def create_user(body: NewUser, ctx: Ctx, user: User) -> Json:
    if not user.is_admin:
        raise ApiError(403, "only an admin may create users")
    with ctx.db.write() as conn:
        try:
            user_id = auth.create_named(conn, body.name, "user", is_admin=body.admin)
        except auth.NameTaken:
            raise ApiError(409, f"the name {body.name!r} is taken") from None
        key = auth.add_key(conn, user_id)
    return Json(wt.CreatedUser(name=body.name, api_key=key), status_code=201)


@router.post(
    "/keys",
    summary="A new API key for the caller (or, for an admin, a user)",
    status_code=201,
    responses=answers(wt.CreatedKey, status=201),
)
def create_key(
    ctx: Ctx,
    user: User,
    of: Annotated[str | None, Query(alias="user", description="A user's name (admin)")] = None,
) -> Json:
    """The key is in this answer only (it is stored hashed)."""
    with ctx.db.write() as conn:
        owner_id, owner = user.id, user.name
        if of is not None and of != user.name:
            if not user.is_admin:
                raise ApiError(403, "only an admin may create another user's keys")
            found = auth.entity_by_name(conn, of)
            if found is None or found.kind != "user":
                raise ApiError(404, f"no user {of!r}")
            owner_id, owner = found.id, found.name
        key_id, key = auth.create_key(conn, owner_id)
    return Json(wt.CreatedKey(id=key_id, name=owner, api_key=key), status_code=201)


@router.get(
    "/keys",
    summary="API keys of the caller (or, for an admin, a user)",
    responses=answers(wt.KeyList),
)
def list_keys(
    ctx: Ctx,
    user: User,
    of: Annotated[str | None, Query(alias="user", description="A user's name (admin)")] = None,
) -> Json:
    """Each key's id, first characters and creation time; keys are stored hashed."""
    with ctx.db.read() as conn:
        owner_id, owner = user.id, user.name
        if of is not None and of != user.name:
            if not user.is_admin:
                raise ApiError(403, "only an admin may list another user's keys")
            found = auth.entity_by_name(conn, of)
            if found is None or found.kind != "user":
                raise ApiError(404, f"no user {of!r}")
            owner_id, owner = found.id, found.name
        return Json({"user": owner, "keys": auth.keys_of(conn, owner_id)})


#: Key ids are database integers: a larger number names no key (422, not an overflow).
KeyId = Annotated[int, PathParam(ge=1, le=2**31 - 1, description="The key's id.")]


@router.delete(
    "/keys/{key_id}",
    summary="Revoke an API key",
    responses=answers(wt.Revoked, 409),
)
def delete_key(key_id: KeyId, ctx: Ctx, user: User) -> Json:
    """The caller's own key, or any key for an admin; a user's last key stays (409), and
    so does the key of the request (409): revoke it with another key."""
    with ctx.db.write() as conn:
        owner = auth.key_owner(conn, key_id)
        if owner is None or (owner != user.id and not user.is_admin):
            raise ApiError(404, f"no API key {key_id} of yours")
        auth.lock_entity(conn, owner)
        if len(auth.keys_of(conn, owner)) == 1:
            raise ApiError(409, "that is the user's last API key: create another one first")
        if key_id == user.key_id:
            raise ApiError(409, "a key cannot revoke itself: revoke it with another key")
        auth.revoke_key(conn, key_id)
    return Json(wt.Revoked(revoked=key_id))


class NewTeam(BaseModel):
    name: str = Field(pattern=ENTITY)


@router.post(
    "/teams",
    summary="Create a team; the caller manages it",
    status_code=201,
    responses=answers(wt.CreatedTeam, 409, status=201),
)
def create_team(body: NewTeam, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        try:
            team_id = auth.create_named(conn, body.name, "team")
        except auth.NameTaken:
            raise ApiError(409, f"the name {body.name!r} is taken") from None
        conn.execute(members.insert().values(team_id=team_id, user_id=user.id, role="admin"))
    return Json(wt.CreatedTeam(name=body.name), status_code=201)


class NewMember(BaseModel):
    user: str = Field(max_length=64)
    role: Literal["member", "admin"] = "member"


@router.post(
    "/teams/{team}/members",
    summary="Add a user to a team, or change a member's role",
    responses=answers(wt.Membership, 409),
)
def add_member(team: Entity, body: NewMember, ctx: Ctx, user: User) -> Json:
    with ctx.db.write() as conn:
        found = auth.entity_by_name(conn, team)
        if found is None or found.kind != "team":
            raise ApiError(404, f"no team {team}")
        if not user.can_manage(found.id):
            raise ApiError(403, f"{user.name} may not manage team {team}")
        member = auth.entity_by_name(conn, body.user)
        if member is None or member.kind != "user":
            raise ApiError(404, f"no user {body.user}")
        auth.lock_entity(conn, found.id)
        demoted = (
            body.role != "admin" and routes_teams.role_of(conn, found.id, member.id) == "admin"
        )
        if demoted and routes_teams.admins_left(conn, found.id, member.id) == 0:
            raise ApiError(409, f"{body.user} is the last admin of team {team}: make another first")
        conn.execute(
            members.delete().where(members.c.team_id == found.id, members.c.user_id == member.id)
        )
        conn.execute(members.insert().values(team_id=found.id, user_id=member.id, role=body.role))
    return Json(wt.Membership(team=team, user=body.user, role=body.role))
