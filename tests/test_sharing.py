"""Teams, users and project settings (issue 10), on a real server over HTTP.

On SQLite and PostgreSQL, with an owner, a team member, a stranger and anonymous callers:
who may list and read teams, take members out, deactivate users, make a project private,
rename, transfer and delete it. What a caller may not read answers as a missing thing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    wait_for,
)
from trackline._transport import Shipper
from trackline.server import migrations, schema
from trackline.server.db import Database

WEIGHTS = b"the owner's weights " * 100


def ship(run_dir: Path, server: ServerProcess, key: str) -> None:
    with Shipper(run_dir, server.url, api_key=key, live=False) as shipper:
        wait_for(lambda: shipper.pump(final=True), timeout=120, what=f"shipping {run_dir}")
        assert not shipper.files_failed and not shipper.failed, shipper.error


@dataclass
class People:
    server: ServerProcess
    owner: str
    member: str
    stranger: str
    keys: dict[str, str]
    team: str

    def client(self, who: str | None) -> httpx.Client:
        return self.server.client(None if who is None else self.keys[who])


@pytest.fixture
def people(database_url: str, tmp_path: Path) -> Iterator[People]:
    server = ServerProcess(tmp_path / "server", database_url=database_url).start()
    suffix = uuid.uuid4().hex[:6]
    names = {"owner": f"owner{suffix}", "member": f"member{suffix}", "stranger": f"str{suffix}"}
    keys = {"admin": ADMIN_KEY}
    with server.client() as admin:
        for name in names.values():
            answer = admin.post("/users", json={"name": name})
            assert answer.status_code == 201, answer.text
            keys[name] = answer.json()["api_key"]
    team = f"lab{suffix}"
    with server.client(keys[names["owner"]]) as owner:
        assert owner.post("/teams", json={"name": team}).status_code == 201
        added = owner.post(f"/teams/{team}/members", json={"user": names["member"]})
        assert added.status_code == 200, added.text
    try:
        yield People(server, names["owner"], names["member"], names["stranger"], keys, team)
    finally:
        server.stop()


def run_in(
    p: People, who: str, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A finished run with metrics, a saved file and an artifact, shipped by ``who``."""
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    source = tmp_path / f"weights-{uuid.uuid4().hex[:6]}.bin"
    source.write_bytes(WEIGHTS)
    run = trackline.init(project=project, mode="offline")
    run.save(source, base_path=tmp_path)
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)})
    artifact = trackline.Artifact("model", "model")
    artifact.add_file(source)
    run.log_artifact(artifact)
    run.finish()
    ship(run.dir, p.server, p.keys[who])
    return run.id


def same_as_missing(seen: httpx.Response, like: httpx.Response, name: str, ghost: str) -> None:
    assert seen.status_code == like.status_code == 404, (seen.text, like.text)
    assert seen.content == like.content.replace(ghost.encode(), name.encode())


# -- teams -------------------------------------------------------------------------------


def test_teams_are_listed_to_their_members_and_read_as_missing_by_others(
    people: People,
) -> None:
    p = people
    with p.client(p.owner) as owner:
        teams = owner.get("/teams").json()["teams"]
        assert teams == [{"name": p.team, "role": "admin", "members": 2, "projects": 0}]
        team = owner.get(f"/teams/{p.team}").json()
        assert team["role"] == "admin"
        assert team["members"] == sorted(
            [{"user": p.owner, "role": "admin"}, {"user": p.member, "role": "member"}],
            key=lambda m: m["user"],
        )
    with p.client(p.member) as member:
        assert [t["role"] for t in member.get("/teams").json()["teams"]] == ["member"]
        assert member.get(f"/teams/{p.team}").status_code == 200
    with p.client(p.stranger) as stranger:
        assert stranger.get("/teams").json() == {"teams": []}
        ghost = "noteam" + uuid.uuid4().hex[:6]
        same_as_missing(
            stranger.get(f"/teams/{p.team}"), stranger.get(f"/teams/{ghost}"), p.team, ghost
        )
        removal = stranger.delete(f"/teams/{p.team}/members/{p.member}")
        same_as_missing(
            removal, stranger.delete(f"/teams/{ghost}/members/{p.member}"), p.team, ghost
        )
    with p.client("admin") as admin:
        seen = {t["name"]: t["role"] for t in admin.get("/teams").json()["teams"]}
        assert seen == {p.team: None}
        assert admin.get(f"/teams/{p.team}").json()["role"] is None
    with p.client(None) as anonymous:
        assert anonymous.get("/teams").status_code == 401
        assert anonymous.get(f"/teams/{p.team}").status_code == 401


def test_members_are_removed_by_team_admins_and_the_last_admin_stays(people: People) -> None:
    p = people
    with p.client(p.member) as member:
        refused = member.delete(f"/teams/{p.team}/members/{p.owner}")
        assert refused.status_code == 403, refused.text
        # A member cannot promote itself either.
        assert (
            member.post(
                f"/teams/{p.team}/members", json={"user": p.member, "role": "admin"}
            ).status_code
            == 403
        )
    with p.client(p.owner) as owner:
        last = owner.delete(f"/teams/{p.team}/members/{p.owner}")
        assert last.status_code == 409 and "last admin" in last.json()["detail"]
        demoted = owner.post(f"/teams/{p.team}/members", json={"user": p.owner, "role": "member"})
        assert demoted.status_code == 409, demoted.text
        missing = owner.delete(f"/teams/{p.team}/members/{p.stranger}")
        assert missing.status_code == 404
        assert missing.json() == {"detail": f"no member {p.stranger} in team {p.team}"}
        promoted = owner.post(f"/teams/{p.team}/members", json={"user": p.member, "role": "admin"})
        assert promoted.json() == {"team": p.team, "user": p.member, "role": "admin"}
        # Now there is another admin: the owner may step down, then leave.
        assert (
            owner.post(
                f"/teams/{p.team}/members", json={"user": p.owner, "role": "member"}
            ).status_code
            == 200
        )
        assert owner.get(f"/teams/{p.team}").json()["role"] == "member"
        left = owner.delete(f"/teams/{p.team}/members/{p.owner}")
        assert left.json() == {"team": p.team, "user": p.owner}
        assert owner.get(f"/teams/{p.team}").status_code == 404
    with p.client(p.member) as member:
        assert member.get(f"/teams/{p.team}").json()["members"] == [
            {"user": p.member, "role": "admin"}
        ]
    with p.client("admin") as admin:  # an admin removes anyone but the last admin
        assert admin.delete(f"/teams/{p.team}/members/{p.member}").status_code == 409


# -- users -------------------------------------------------------------------------------


def test_an_admin_lists_deactivates_and_reactivates_users(people: People) -> None:
    p = people
    with p.client(p.owner) as owner:
        assert owner.get("/users").status_code == 403
        assert owner.post(f"/users/{p.stranger}/deactivate").status_code == 403
        assert owner.post("/keys").status_code == 201  # a second key
    with p.client("admin") as admin:
        users = {u["name"]: u for u in admin.get("/users").json()["users"]}
        assert users["admin"]["admin"] is True
        assert users[p.owner]["keys"] == 2 and users[p.member]["keys"] == 1
        assert not users[p.owner]["deactivated"] and users[p.owner]["deactivated_at"] is None
        assert p.team not in users  # teams are not users
        done = admin.post(f"/users/{p.owner}/deactivate")
        assert done.json() == {"name": p.owner, "deactivated": True}
        first = admin.get("/users").json()["users"]
        when = {u["name"]: u for u in first}[p.owner]["deactivated_at"]
        assert isinstance(when, float)
        admin.post(f"/users/{p.owner}/deactivate")  # again: the first time stays
        again = {u["name"]: u for u in admin.get("/users").json()["users"]}
        assert again[p.owner]["deactivated_at"] == when
    with p.client(p.owner) as owner:
        refused = owner.get("/viewer")
        assert refused.status_code == 401 and refused.json() == {"detail": "invalid API key"}
        assert owner.post("/teams", json={"name": "x" + uuid.uuid4().hex[:6]}).status_code == 401
    with p.client("admin") as admin:
        assert admin.post(f"/users/{p.owner}/reactivate").json() == {
            "name": p.owner,
            "deactivated": False,
        }
        assert admin.post("/users/admin/deactivate").status_code == 409
        assert admin.post(f"/users/{p.team}/deactivate").json() == {"detail": f"no user {p.team}"}
        assert admin.post("/users/nobody-here/reactivate").status_code == 404
    with p.client(p.owner) as owner:
        assert owner.get("/viewer").json()["name"] == p.owner


# -- project settings ----------------------------------------------------------------------


def test_who_may_change_a_projects_visibility_and_name(
    people: People, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = people
    run_id = run_in(p, p.owner, "mine", tmp_path, monkeypatch)
    path, ghost = f"{p.owner}/mine", f"{p.owner}/ghost"
    with p.client(p.stranger) as stranger:
        for method, suffix, body in (
            ("GET", "", None),
            ("PATCH", "", {"public": True}),
            ("PATCH", "", {"name": "stolen"}),
            ("POST", "/transfer", {"to": p.team}),
        ):
            seen = stranger.request(method, f"/projects/{path}{suffix}", json=body)
            like = stranger.request(method, f"/projects/{ghost}{suffix}", json=body)
            same_as_missing(seen, like, path, ghost)
        seen = stranger.delete(f"/projects/{path}", params={"confirm": path})
        like = stranger.delete(f"/projects/{ghost}", params={"confirm": ghost})
        same_as_missing(seen, like, path, ghost)
    with p.client(None) as anonymous:
        assert anonymous.patch(f"/projects/{path}", json={"public": True}).status_code == 401
        assert anonymous.get(f"/projects/{path}").status_code == 401
    with p.client(p.owner) as owner:
        unchanged = {"entity": p.owner, "name": "mine", "public": False}
        assert owner.patch(f"/projects/{path}", json={}).json() == unchanged
        assert owner.patch(f"/projects/{path}", json={"name": "bad name"}).status_code == 422
        made = owner.patch(f"/projects/{path}", json={"public": True})
        assert made.json() == {"entity": p.owner, "name": "mine", "public": True}
    with p.client(p.stranger) as stranger:  # public: read, but not change (403)
        assert stranger.get(f"/projects/{path}").json()["runs"] == 1
        assert stranger.patch(f"/projects/{path}", json={"public": False}).status_code == 403
    with p.client(None) as anonymous:
        assert anonymous.get(f"/runs/{run_id}").json()["project"] == path
    run_in(p, p.owner, "other", tmp_path, monkeypatch)
    with p.client(p.owner) as owner:
        taken = owner.patch(f"/projects/{path}", json={"name": "other"})
        assert taken.status_code == 409 and "already has a project other" in taken.text
        renamed = owner.patch(f"/projects/{path}", json={"name": "renamed", "public": False})
        assert renamed.json() == {"entity": p.owner, "name": "renamed", "public": False}
        assert owner.get(f"/runs/{run_id}").json()["project"] == f"{p.owner}/renamed"
        assert owner.get(f"/projects/{path}").status_code == 404
        runs = owner.get(f"/projects/{p.owner}/renamed/runs").json()["runs"]
        assert [r["id"] for r in runs] == [run_id]
    with p.client(None) as anonymous:  # private again
        assert anonymous.get(f"/runs/{run_id}").status_code == 401
    with p.client(p.stranger) as stranger:
        assert stranger.get(f"/runs/{run_id}").status_code == 404


def test_a_project_transferred_to_a_team_is_the_teams_with_its_files(
    people: People, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = people
    run_id = run_in(p, p.owner, "net", tmp_path, monkeypatch)
    path = f"{p.owner}/net"
    with p.client(p.member) as member:
        assert member.get(f"/projects/{path}").status_code == 404
    with p.client(p.stranger) as stranger:  # a team of its own: not the owner's to give to
        other = "solo" + uuid.uuid4().hex[:6]
        assert stranger.post("/teams", json={"name": other}).status_code == 201
    with p.client(p.owner) as owner:
        assert owner.post(f"/projects/{path}/transfer", json={"to": other}).status_code == 404
        assert owner.post(f"/projects/{path}/transfer", json={"to": p.stranger}).status_code == 404
        assert owner.post(f"/projects/{path}/transfer", json={"to": "a b"}).status_code == 422
        moved = owner.post(f"/projects/{path}/transfer", json={"to": p.team})
        assert moved.status_code == 200, moved.text
        body = moved.json()
        assert (body["path"], body["public"], body["runs"]) == (f"{p.team}/net", False, 1)
        again = owner.post(f"/projects/{p.team}/net/transfer", json={"to": p.team})
        assert again.status_code == 409
    with p.client(p.member) as member:
        team = member.get(f"/teams/{p.team}").json()
        assert [x["path"] for x in team["projects"]] == [f"{p.team}/net"]
        run = member.get(f"/runs/{run_id}").json()
        assert run["project"] == f"{p.team}/net"
        files = {f["path"]: f for f in member.get(f"/runs/{run_id}/files").json()["files"]}
        saved = next(name for name in files if name.endswith(".bin"))
        assert files[saved]["uploaded"], files
        assert member.get(f"/runs/{run_id}/files/{saved}").content == WEIGHTS
        version = member.get(f"/projects/{p.team}/net/artifacts/model/v0").json()
        assert version["complete"] is True
        # A member reads and writes the team's project but does not manage it.
        assert member.patch(f"/projects/{p.team}/net", json={"public": True}).status_code == 403
        assert (
            member.post(f"/projects/{p.team}/net/transfer", json={"to": p.team}).status_code == 403
        )
    run_in(p, p.owner, "net", tmp_path, monkeypatch)  # the owner's name is free again
    with p.client(p.owner) as owner:
        clash = owner.post(f"/projects/{p.owner}/net/transfer", json={"to": p.team})
        assert clash.status_code == 409 and "already has a project net" in clash.text


def test_deleting_a_project_removes_its_runs_and_everything_about_them(
    people: People, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = people
    doomed = run_in(p, p.owner, "doomed", tmp_path, monkeypatch)
    kept = run_in(p, p.owner, "kept", tmp_path, monkeypatch)
    path = f"{p.owner}/doomed"
    with p.client(p.owner) as owner:
        assert owner.put(f"/projects/{path}/view", json={"smoothing": 0.5}).status_code == 200
        for confirm in (None, "doomed", f"{p.owner}/kept"):
            params = {} if confirm is None else {"confirm": confirm}
            refused = owner.delete(f"/projects/{path}", params=params)
            assert refused.status_code == 422, refused.text
        assert owner.get(f"/runs/{doomed}").status_code == 200  # nothing was deleted
        assert owner.post(f"/projects/{path}/transfer", json={"to": p.team}).status_code == 200
    path = f"{p.team}/doomed"
    with p.client(p.member) as member:  # a member of the owning team: 403, not its to delete
        assert member.delete(f"/projects/{path}", params={"confirm": path}).status_code == 403
    with p.client(p.owner) as owner:  # the team's admin
        done = owner.delete(f"/projects/{path}", params={"confirm": path})
        assert done.json() == {"deleted": path, "runs": 1}
        assert owner.get(f"/projects/{path}").status_code == 404
        assert owner.get(f"/runs/{doomed}").status_code == 404
        assert owner.get(f"/projects/{path}/artifacts/model/v0").status_code == 404
        assert owner.delete(f"/projects/{path}", params={"confirm": path}).status_code == 404
        # The other project and the content both shared are untouched.
        files = owner.get(f"/runs/{kept}/files").json()["files"]
        saved = next(f["path"] for f in files if f["path"].endswith(".bin"))
        assert owner.get(f"/runs/{kept}/files/{saved}").content == WEIGHTS
        assert owner.get(f"/runs/{kept}/history").json()["steps"] == [0, 1, 2, 3, 4]
    db = Database(database_url)
    try:
        with db.read() as conn:
            assert (
                conn.execute(
                    sa.select(schema.runs.c.id).where(schema.runs.c.run_id == doomed)
                ).first()
                is None
            )
            kept_pk = conn.execute(
                sa.select(schema.runs.c.id).where(schema.runs.c.run_id == kept)
            ).scalar_one()
            for table in (
                schema.streams,
                schema.series,
                schema.run_files,
                schema.histograms,
                schema.media,
                schema.console_lines,
                schema.artifact_usage,
            ):
                pks = set(conn.execute(sa.select(table.c.run_pk).distinct()).scalars())
                assert pks <= {kept_pk}, table.name
            series_ids = set(conn.execute(sa.select(schema.series.c.id)).scalars())
            chunk_series = set(conn.execute(sa.select(schema.chunks.c.series_id)).scalars())
            assert chunk_series <= series_ids
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(schema.artifacts)).scalar() == 1
            )
            assert (
                conn.execute(
                    sa.select(sa.func.count()).select_from(schema.artifact_versions)
                ).scalar()
                == 1
            )
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(schema.view_settings)).scalar()
                == 0
            )
            digest = hashlib.sha256(WEIGHTS).hexdigest()
            assert (
                conn.execute(
                    sa.select(schema.blobs.c.sha256).where(schema.blobs.c.sha256 == digest)
                ).first()
                is not None
            )
    finally:
        db.dispose()


def test_a_version_7_database_gets_the_deactivation_column(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn:  # a database as a version-7 server left it
            schema.metadata.create_all(conn)
            conn.execute(sa.text("ALTER TABLE entities DROP COLUMN deactivated_at"))
            conn.execute(schema.schema_version.insert().values(id=1, version=7, applied_at=0.0))
            conn.execute(
                sa.text(
                    "INSERT INTO entities (name, kind, is_admin, created_at) "
                    "VALUES ('old', 'user', false, 0)"
                )
            )
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            assert migrations.current_version(conn) == schema.SCHEMA_VERSION
            columns = {c["name"] for c in sa.inspect(conn).get_columns("entities")}
            assert "deactivated_at" in columns
            row = conn.execute(
                sa.select(schema.entities.c.deactivated_at).where(schema.entities.c.name == "old")
            ).one()
            assert row.deactivated_at is None
    finally:
        db.dispose()


def test_a_name_taken_by_a_concurrent_request_is_a_409(database_url: str) -> None:
    """The unique (owner, name) constraint, hit after the check passed: 409, and the
    transaction goes on (a savepoint), on both databases."""
    from trackline.server.deps import ApiError
    from trackline.server.routes_projects import _update

    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:
            owner = conn.execute(
                schema.entities.insert()
                .values(name="racer", kind="user", is_admin=False, created_at=0.0)
                .returning(schema.entities.c.id)
            ).scalar_one()
            ids = [
                conn.execute(
                    schema.projects.insert()
                    .values(entity_id=owner, name=name, public=False, created_at=0.0)
                    .returning(schema.projects.c.id)
                ).scalar_one()
                for name in ("a", "b")
            ]
            with pytest.raises(ApiError) as refused:
                _update(conn, ids[0], {"name": "b"}, "racer already has a project b")
            assert (refused.value.status, refused.value.message) == (
                409,
                "racer already has a project b",
            )
            _update(conn, ids[0], {"name": "c"}, "unused")
        with db.read() as conn:
            names = conn.execute(
                sa.select(schema.projects.c.name).order_by(schema.projects.c.name)
            ).scalars()
            assert list(names) == ["b", "c"]
    finally:
        db.dispose()
