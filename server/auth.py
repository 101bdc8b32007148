"""Users, teams, API keys and who may read or write what.

Keys are long random strings, stored as their sha256 (a slow password hash buys
nothing for 240 random bits). Users and teams share one namespace of
"entities"; a project belongs to one entity and is private unless made public.
Every write needs a key; reading a private project needs a key of its owner,
of a member of the owning team, or of an admin.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from trackline._names import valid_entity

from .schema import api_keys, entities, members

KEY_PREFIX = "tl_"
ADMIN_NAME = "admin"


@dataclass(frozen=True)
class User:
    """The caller, as its API key says."""

    id: int
    name: str
    is_admin: bool
    teams: frozenset[int]
    team_admin: frozenset[int]
    key_id: int | None = None  # the key of this request

    def can_write(self, entity_id: int) -> bool:
        """May this user create and change runs of projects owned by ``entity_id``?"""
        return self.is_admin or entity_id == self.id or entity_id in self.teams

    def can_manage(self, entity_id: int) -> bool:
        """May this user change a project's settings or a team's members?"""
        return self.is_admin or entity_id == self.id or entity_id in self.team_admin


def may_read_project(user: User | None, project: Any) -> bool:
    """Who reads a project (a row with ``public`` and ``entity_id``): anyone if it is
    public, else its owner's writers. Everything the caller may not read answers as a
    missing thing would."""
    return bool(project.public) or (user is not None and user.can_write(project.entity_id))


def may_read_run(user: User | None, run: Any, project: Any | None) -> bool:
    """Who reads a run row: the readers of its ``project`` (its row), or, for a run that
    names no project yet (``project`` ``None``), its creator and admins. The one rule
    of every read of runs (``routes_query.load_run``, series queries, lineage)."""
    if run.project_id is None:
        return user is not None and (user.id == run.creator_id or user.is_admin)
    assert project is not None, "a run in a project is read by its project's rule"
    return may_read_project(user, project)


def valid_name(name: str) -> bool:
    return bool(valid_entity(name))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def user_for_key(conn: sa.Connection, key: str) -> User | None:
    row = conn.execute(
        sa.select(entities.c.id, entities.c.name, entities.c.is_admin, api_keys.c.id.label("key"))
        .select_from(api_keys.join(entities, api_keys.c.user_id == entities.c.id))
        .where(api_keys.c.key_hash == hash_key(key), entities.c.deactivated_at.is_(None))
    ).first()
    if row is None:
        return None
    teams = conn.execute(
        sa.select(members.c.team_id, members.c.role).where(members.c.user_id == row.id)
    ).all()
    return User(
        id=row.id,
        name=row.name,
        is_admin=bool(row.is_admin),
        teams=frozenset(t.team_id for t in teams),
        team_admin=frozenset(t.team_id for t in teams if t.role == "admin"),
        key_id=row.key,
    )


def create_entity(conn: sa.Connection, name: str, kind: str, is_admin: bool = False) -> int:
    result = conn.execute(
        entities.insert()
        .values(name=name, kind=kind, is_admin=is_admin, created_at=time.time())
        .returning(entities.c.id)
    )
    return int(result.scalar_one())


class NameTaken(Exception):
    """Another user or team has the name (perhaps created a moment ago by another server)."""


def create_named(conn: sa.Connection, name: str, kind: str, is_admin: bool = False) -> int:
    """``create_entity``, unless the name is taken: then ``NameTaken``, also when a
    concurrent request (another server on the same PostgreSQL) took it after the check."""
    if entity_by_name(conn, name) is not None:
        raise NameTaken(name)
    try:
        with conn.begin_nested():
            return create_entity(conn, name, kind, is_admin=is_admin)
    except sa.exc.IntegrityError:
        raise NameTaken(name) from None


def add_key(conn: sa.Connection, user_id: int, key: str | None = None) -> str:
    """Store a new key (or the given one) for ``user_id``; returns it in clear, once."""
    return create_key(conn, user_id, key)[1]


def create_key(conn: sa.Connection, user_id: int, key: str | None = None) -> tuple[int, str]:
    """``add_key``, with the new key's id."""
    key = key or new_key()
    inserted = conn.execute(
        api_keys.insert()
        .values(user_id=user_id, key_hash=hash_key(key), prefix=key[:8], created_at=time.time())
        .returning(api_keys.c.id)
    )
    return int(inserted.scalar_one()), key


def keys_of(conn: sa.Connection, user_id: int) -> list[dict[str, Any]]:
    """A user's keys as id, prefix and creation time (the keys themselves are not kept)."""
    rows = conn.execute(
        sa.select(api_keys.c.id, api_keys.c.prefix, api_keys.c.created_at)
        .where(api_keys.c.user_id == user_id)
        .order_by(api_keys.c.id)
    ).all()
    return [{"id": r.id, "prefix": r.prefix, "created_at": r.created_at} for r in rows]


def key_owner(conn: sa.Connection, key_id: int) -> int | None:
    return conn.execute(
        sa.select(api_keys.c.user_id).where(api_keys.c.id == key_id)
    ).scalar_one_or_none()


def lock_entity(conn: sa.Connection, entity_id: int) -> None:
    """Hold the entity's row until the transaction ends (PostgreSQL; SQLite's write lock
    already serialises writers), so two revocations cannot both remove a last key."""
    conn.execute(sa.select(entities.c.id).where(entities.c.id == entity_id).with_for_update())


def revoke_key(conn: sa.Connection, key_id: int) -> None:
    """Delete a key: the next request made with it is refused (no server caches keys)."""
    conn.execute(api_keys.delete().where(api_keys.c.id == key_id))


def entity_by_name(conn: sa.Connection, name: str) -> Any:
    return conn.execute(
        sa.select(entities.c.id, entities.c.name, entities.c.kind).where(entities.c.name == name)
    ).first()


def bootstrap(conn: sa.Connection, admin_key: str | None) -> str | None:
    """On first start: the admin user and its key; returns a key it created, else ``None``.

    ``admin_key`` (``TRACKLINE_ADMIN_KEY``) becomes the admin's key, also on a later
    start, so that automation can rely on it. Servers starting at once take turns, so
    exactly one creates the admin.
    """
    from .migrations import serialize

    serialize(conn)
    admin = conn.execute(
        sa.select(entities.c.id).where(entities.c.is_admin.is_(True)).order_by(entities.c.id)
    ).first()
    if admin is None:
        existing = entity_by_name(conn, ADMIN_NAME)
        if existing is not None:
            user_id = existing.id
            conn.execute(entities.update().where(entities.c.id == user_id).values(is_admin=True))
        else:
            user_id = create_entity(conn, ADMIN_NAME, "user", is_admin=True)
        return add_key(conn, user_id, admin_key)
    if admin_key:
        known = conn.execute(
            sa.select(api_keys.c.id).where(api_keys.c.key_hash == hash_key(admin_key))
        ).first()
        if known is None:
            add_key(conn, admin.id, admin_key)
    return None
