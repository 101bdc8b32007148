"""Each user's dashboard settings per project, saved on a real server over real HTTP.

On SQLite and on PostgreSQL (where its binaries are installed): save, load and reset;
one user never sees another's document; anonymous callers cannot save; a project the
caller may not read answers as a missing one; a document over the cap is refused.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _server import (  # noqa: F401 - fixtures
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    log_bytes,
)
from trackline.records import RunStart
from trackline.server import migrations, schema
from trackline.server.db import Database
from trackline.server.routes_views import MAX_DOCUMENT

DOCUMENT = {
    "smoothing": 0.6,
    "panels": {"train/loss": {"smoothAlgo": "gaussian", "smoothing": 3, "log": True}},
    "customPanels": [{"id": "c1", "keys": ["train/loss", "val/loss"], "runs": None}],
    "note": "ünïcode ✓",
}


@dataclass
class Users:
    server: ServerProcess
    alice: str
    bob: str
    alice_key: str
    bob_key: str

    def client(self, key: str | None) -> httpx.Client:
        return self.server.client(key)


def _start_project(client: httpx.Client, project: str) -> None:
    """A run in ``project`` of the client's user (which creates the project)."""
    run_id = f"r{uuid.uuid4().hex[:12]}"
    start = RunStart(run_id=run_id, project=project, name="r", start_time=time.time())
    answer = client.post(
        f"/runs/{run_id}/streams/main",
        params={"offset": 0},
        content=zlib.compress(log_bytes([start])),
        headers={"content-encoding": "deflate"},
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture(name="users")
def fixture_users(database_url: str, tmp_path: Path) -> Iterator[Users]:
    """A server on each backend; Alice owns ``alice/mine`` and ``alice/open`` (public),
    Bob owns ``bob/private``."""
    server = ServerProcess(tmp_path / "server", database_url=database_url).start()
    try:
        with server.client() as admin:
            alice_key = admin.post("/users", json={"name": "alice"}).json()["api_key"]
            bob_key = admin.post("/users", json={"name": "bob"}).json()["api_key"]
        with server.client(alice_key) as alice:
            _start_project(alice, "mine")
            _start_project(alice, "open")
            alice.patch("/projects/alice/open", json={"public": True}).raise_for_status()
        with server.client(bob_key) as bob:
            _start_project(bob, "private")
        yield Users(server, "alice", "bob", alice_key, bob_key)
    finally:
        server.stop()


VIEW = "/projects/alice/mine/view"


def test_save_load_and_reset(users: Users) -> None:
    with users.client(users.alice_key) as alice:
        empty = alice.get(VIEW)
        assert empty.status_code == 200, empty.text
        assert empty.json() == {"settings": {}, "updated_at": None}
        saved = alice.put(VIEW, json=DOCUMENT)
        assert saved.status_code == 200, saved.text
        assert saved.json()["settings"] == DOCUMENT
        loaded = alice.get(VIEW).json()
        assert loaded["settings"] == DOCUMENT
        assert loaded["updated_at"] == saved.json()["updated_at"] > 0
        replaced = {"x": "time"}
        assert alice.put(VIEW, json=replaced).status_code == 200
        assert alice.get(VIEW).json()["settings"] == replaced  # replaced, not merged
        reset = alice.put(VIEW, json={})  # a reset saves the empty document
        assert reset.status_code == 200, reset.text
        assert reset.json()["settings"] == {}
        assert alice.get(VIEW).json()["settings"] == {}
        assert alice.delete(VIEW).status_code == 405  # no DELETE: nothing to "still find"


def test_each_user_sees_only_their_own_document(users: Users) -> None:
    public = "/projects/alice/open/view"
    with users.client(users.alice_key) as alice, users.client(users.bob_key) as bob:
        assert alice.put(public, json=DOCUMENT).status_code == 200
        # Bob may read Alice's public project: he gets his own (empty) settings, not hers.
        assert bob.get(public).json() == {"settings": {}, "updated_at": None}
        assert bob.put(public, json={"bob": 1}).status_code == 200
        assert bob.get(public).json()["settings"] == {"bob": 1}
        assert alice.get(public).json()["settings"] == DOCUMENT
        # Bob's reset is his own.
        assert bob.put(public, json={}).status_code == 200
        assert alice.get(public).json()["settings"] == DOCUMENT


def test_anonymous_callers_cannot_save_or_read_settings(users: Users) -> None:
    public = "/projects/alice/open/view"
    with users.client(None) as anonymous:
        assert anonymous.get("/projects/alice/open").status_code == 200  # readable...
        for answer in (
            anonymous.get(public),
            anonymous.put(public, json=DOCUMENT),
        ):
            assert answer.status_code == 401, answer.text  # ...but no settings without a key
    with users.client(users.alice_key) as alice:
        assert alice.get(public).json()["settings"] == {}


def test_an_unreadable_project_answers_as_a_missing_one(users: Users) -> None:
    with users.client(users.alice_key) as alice:
        for path in ("/projects/bob/private/view", "/projects/bob/nothing/view"):
            answers = [
                alice.get(path),
                alice.put(path, json=DOCUMENT),
            ]
            for answer in answers:
                assert answer.status_code == 404, answer.text
        private = alice.get("/projects/bob/private/view").json()["detail"]
        missing = alice.get("/projects/bob/nothing/view").json()["detail"]
        assert private.replace("private", "nothing") == missing
    with users.client(users.bob_key) as bob:
        assert bob.get("/projects/bob/private/view").json()["settings"] == {}


def test_documents_are_objects_under_the_size_cap(users: Users) -> None:
    with users.client(users.alice_key) as alice:
        big = {"blob": "x" * MAX_DOCUMENT}
        refused = alice.put(VIEW, json=big)
        assert refused.status_code == 413, refused.text
        assert str(MAX_DOCUMENT) in refused.json()["detail"]
        streamed = alice.put(  # no Content-Length: refused as the bytes arrive
            VIEW,
            content=iter([b'{"blob": "', b"x" * MAX_DOCUMENT, b'"}']),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413, streamed.text
        for body, status in ((b"[1, 2]", 422), (b'"text"', 422), (b"{nope", 400), (b"", 400)):
            answer = alice.put(VIEW, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == status, (body, answer.text)
        deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
        assert alice.put(VIEW, content=deep).status_code == 422
        assert alice.get(VIEW).json()["settings"] == {}  # nothing refused was kept
        fits = {"blob": "x" * (MAX_DOCUMENT - 100)}
        assert alice.put(VIEW, json=fits).status_code == 200
        assert alice.get(VIEW).json()["settings"] == fits


def test_a_version_4_database_gets_the_view_settings_table(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn:  # a database as a version-4 server left it
            older = [t for t in schema.metadata.sorted_tables if t.name != "view_settings"]
            schema.metadata.create_all(conn, tables=older)
            conn.execute(schema.schema_version.insert().values(id=1, version=4, applied_at=0.0))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            assert sa.inspect(conn).has_table("view_settings")
            assert migrations.current_version(conn) == schema.SCHEMA_VERSION
    finally:
        db.dispose()
