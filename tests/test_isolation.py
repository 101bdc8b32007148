"""Tenants are isolated (issue 9, items 5 and 6), on a real server over HTTP.

Naming content by its sha256 grants nothing: content counts for an entity only after
it uploaded the bytes, and reading by hash goes through a run or artifact version the
caller can read. What a caller may not read answers exactly as what does not exist.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
import trackline
from _server import (  # noqa: F401
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    fixture_shared_server,
    frames_bytes,
    log_bytes,
    wait_for,
)
from trackline import Api, ApiError
from trackline._transport import Shipper
from trackline.artifacts import manifest_digest
from trackline.records import (
    ArtifactFile,
    ArtifactLogged,
    ArtifactUsed,
    FileSaved,
    GitInfo,
    MediaRecord,
    Record,
    RunStart,
)
from trackline.server import migrations, schema
from trackline.server.db import Database

pytest.importorskip("pyarrow")

SECRET = b"alice's private weights " * 64
SECRET_ARTIFACT = b"alice's private dataset " * 64


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ship(run_dir: Path, server: ServerProcess, key: str) -> None:
    """Upload a run directory with the client's own shipper, files included."""
    with Shipper(run_dir, server.url, api_key=key, live=False) as shipper:
        # A pump stops after its time budget, or waits out a retry: pump until done.
        wait_for(lambda: shipper.pump(final=True), timeout=120, what=f"shipping {run_dir}")
        assert not shipper.files_failed and not shipper.failed, shipper.error


@dataclass
class Tenants:
    """Alice, with a private run that has a file, media and an artifact; Bob, a stranger."""

    server: ServerProcess
    alice: str  # names
    bob: str
    alice_key: str
    bob_key: str
    run: str  # alice's run
    image: dict[str, Any]  # a media item of alice's run
    table: dict[str, Any]

    def client(self, key: str | None) -> httpx.Client:
        return self.server.client(key)


@pytest.fixture
def tenants(
    shared_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tenants]:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    suffix = uuid.uuid4().hex[:8]
    alice, bob = f"alice{suffix}", f"bob{suffix}"
    with shared_server.client() as admin:
        alice_key = admin.post("/users", json={"name": alice}).json()["api_key"]
        bob_key = admin.post("/users", json={"name": bob}).json()["api_key"]
    source = tmp_path / "weights.bin"
    source.write_bytes(SECRET)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_bytes(SECRET_ARTIFACT)
    run = trackline.init(project="secret", mode="offline")
    run.save(source, base_path=tmp_path)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    table = trackline.Table(columns=["i"], data=[[i] for i in range(3)])
    run.log({"loss": 0.5, "img": trackline.Image(red), "preds": table})
    artifact = trackline.Artifact("net", "dataset")
    artifact.add_dir(data)
    run.log_artifact(artifact)
    run.finish()
    ship(run.dir, shared_server, alice_key)
    local = trackline.open_run(run.dir)
    yield Tenants(
        shared_server,
        alice,
        bob,
        alice_key,
        bob_key,
        run.id,
        local.media("img")[0].items[0],
        local.media("preds")[0].items[0],
    )


def post_log(
    client: httpx.Client, run_id: str, data: bytes, stream: str = "main"
) -> httpx.Response:
    return client.post(
        f"/runs/{run_id}/streams/{stream}",
        params={"offset": 0},
        content=zlib.compress(data),
        headers={"content-encoding": "deflate"},
    )


def forge(t: Tenants, records: list[Record], project: str = "mine") -> tuple[str, dict[str, Any]]:
    """Bob ships hand-made records in a run of his own; returns its id and the answer."""
    run_id = f"bob-{uuid.uuid4().hex[:12]}"
    start = RunStart(run_id=run_id, project=project, name="b", start_time=time.time())
    with t.client(t.bob_key) as bob:
        answer = post_log(bob, run_id, log_bytes([start, *records]))
        assert answer.status_code == 200, answer.text
        return run_id, answer.json()


def absent(response: httpx.Response, like: httpx.Response, name: str, other: str) -> None:
    """``response`` (about ``name``) is ``like`` (about the missing ``other``), to the byte
    but for the name asked about."""
    assert response.status_code == like.status_code, (response.text, like.text)
    assert response.content == like.content.replace(other.encode(), name.encode())


# -- 5: naming content never grants access to it ------------------------------------------


def test_a_file_named_by_hash_is_missing_until_uploaded(tenants: Tenants) -> None:
    t = tenants
    stolen = FileSaved("stolen.bin", "now", len(SECRET), sha(SECRET), time.time())
    run_id, answer = forge(t, [stolen])
    assert answer["applied"] == 2
    assert answer["missing"] == [{"path": "files/stolen.bin", "sha256": sha(SECRET)}]
    unknown = sha(b"nobody has this")
    with t.client(t.bob_key) as bob:
        listing = bob.get(f"/runs/{run_id}/files").json()["files"]
        assert [(f["path"], f["uploaded"]) for f in listing] == [("files/stolen.bin", False)]
        assert bob.get(f"/runs/{run_id}/files/files/stolen.bin").status_code == 404
        assert bob.get(f"/runs/{run_id}/streams").json()["missing"] == answer["missing"]
        # By hash: through his run, as if the content did not exist; through hers, as if
        # her run did not exist; without a run or version, not at all.
        for method in ("GET", "HEAD"):
            mine = bob.request(method, f"/blobs/{sha(SECRET)}", params={"run": run_id})
            absent(
                mine,
                bob.request(method, f"/blobs/{unknown}", params={"run": run_id}),
                sha(SECRET),
                unknown,
            )
            assert mine.status_code == 404
            hers = bob.request(method, f"/blobs/{sha(SECRET)}", params={"run": t.run})
            absent(
                hers,
                bob.request(method, f"/blobs/{sha(SECRET)}", params={"run": "nope"}),
                t.run,
                "nope",
            )
            assert hers.status_code == 404
            bare = bob.request(method, f"/blobs/{sha(SECRET)}")
            absent(bare, bob.request(method, f"/blobs/{unknown}"), sha(SECRET), unknown)
            assert bare.status_code == 400
        # A file declared without a hash cannot be linked to content he never uploaded.
        diff = GitInfo(commit="abc", diff_file="git.diff", diff_bytes=len(SECRET))
        assert post_log(bob, run_id, log_bytes([diff]), stream="system").status_code == 200
        link = {"path": "git.diff", "sha256": sha(SECRET)}
        assert bob.post(f"/runs/{run_id}/files", json=link).status_code == 409
        # Uploading the bytes proves possession: stored once, now his run's content too.
        put = f"/blobs/{sha(SECRET)}"
        assert bob.put(put, params={"run": run_id}, content=b"guess").status_code == 400
        uploaded = bob.put(put, params={"run": run_id}, content=SECRET)
        # Stored once on disk, but whether anyone else had it is not told.
        assert uploaded.status_code == 200 and uploaded.json()["stored"] is True
        assert bob.put(put, params={"run": run_id}, content=SECRET).json()["stored"] is False
        assert bob.get(f"/runs/{run_id}/files/files/stolen.bin").content == SECRET
        assert bob.get(put, params={"run": run_id}).content == SECRET
        assert bob.post(f"/runs/{run_id}/files", json=link).status_code == 200
        assert bob.get(f"/runs/{run_id}/streams").json()["missing"] == []
    with t.client(t.alice_key) as alice:
        assert alice.get(f"/runs/{t.run}/files/files/weights.bin").content == SECRET
        assert alice.get(f"/blobs/{sha(SECRET)}", params={"run": t.run}).content == SECRET
        assert alice.head(f"/blobs/{sha(SECRET)}", params={"run": t.run}).status_code == 200


def test_the_client_uploads_content_others_stored(tenants: Tenants, tmp_path: Path) -> None:
    """Bob has the same bytes as Alice, in a run of his team: his shipper is told they are
    missing and uploads them for the run, which makes them the team's content."""
    t = tenants
    team = f"lab{uuid.uuid4().hex[:8]}"
    with t.client(t.bob_key) as bob:
        assert bob.post("/teams", json={"name": team}).status_code == 201
    copy = tmp_path / "mine" / "weights.bin"
    copy.parent.mkdir()
    copy.write_bytes(SECRET)
    run = trackline.init(project=f"{team}/shared", mode="offline")
    run.save(copy, base_path=copy.parent)
    run.finish()
    ship(run.dir, t.server, t.bob_key)
    with t.client(t.bob_key) as bob:
        assert bob.get(f"/runs/{run.id}/files/files/weights.bin").content == SECRET
        assert bob.get(f"/runs/{run.id}/streams").json()["missing"] == []


def test_a_writer_vouches_for_content_it_uploaded(tenants: Tenants) -> None:
    """Content Bob uploaded counts for his team's runs when his records name it, also when
    the run's start record (naming the team's project) comes after the upload; a name
    alone still counts for nothing."""
    t = tenants
    team = f"lab{uuid.uuid4().hex[:8]}"
    with t.client(t.bob_key) as bob:
        assert bob.post("/teams", json={"name": team}).status_code == 201
        mine = b"bob's own checkpoint " * 50
        saved = FileSaved("ckpt.bin", "now", len(mine), sha(mine), time.time())
        # The system stream first: the run has no project yet, Bob uploads for it.
        early = f"bob-{uuid.uuid4().hex[:12]}"
        first = post_log(bob, early, log_bytes([saved]), stream="system")
        assert first.json()["missing"] == [{"path": "files/ckpt.bin", "sha256": sha(mine)}]
        assert bob.put(f"/blobs/{sha(mine)}", params={"run": early}, content=mine).json()["stored"]
        start = RunStart(run_id=early, project=f"{team}/shared", name="b", start_time=time.time())
        assert post_log(bob, early, log_bytes([start])).json()["missing"] == []
        # Content Bob uploaded on its own, named by a started run of the team: not missing.
        second = b"bob's other checkpoint " * 50
        assert bob.put(f"/blobs/{sha(second)}", content=second).status_code == 200
        saved = FileSaved("second.bin", "now", len(second), sha(second), time.time())
        later, _ = forge(t, [], project=f"{team}/other")
        size = bob.get(f"/runs/{later}/streams").json()["offsets"]["main"]
        more = bob.post(
            f"/runs/{later}/streams/main",
            params={"offset": size},
            content=zlib.compress(frames_bytes([saved])),
            headers={"content-encoding": "deflate"},
        )
        assert more.json()["applied"] == 1 and more.json()["missing"] == []
        # Alice's content, named in the team's run, is still missing.
        stolen = FileSaved("stolen.bin", "now", len(SECRET), sha(SECRET), time.time())
        _, tried = forge(t, [stolen], project=f"{team}/other")
        assert tried["missing"] == [{"path": "files/stolen.bin", "sha256": sha(SECRET)}]
    with t.server.client() as admin:
        added = admin.post(f"/teams/{team}/members", json={"user": t.alice})
        assert added.status_code == 200
    with t.client(t.alice_key) as alice:  # now a member: she reads the team's run
        assert alice.get(f"/runs/{early}/files/files/ckpt.bin").content == mine


def test_media_named_by_hash_stay_missing(tenants: Tenants) -> None:
    t = tenants
    image, table = t.image, t.table
    records: list[Record] = [
        MediaRecord(
            0, time.time(), "img", "image", [{"path": "media/x.png", "sha256": image["sha256"]}]
        ),
        MediaRecord(
            0, time.time(), "t", "table", [{"path": "media/t.parquet", "sha256": table["sha256"]}]
        ),
    ]
    run_id, answer = forge(t, records)
    assert sorted(m["sha256"] for m in answer["missing"]) == sorted(
        [image["sha256"], table["sha256"]]
    )
    with t.client(t.bob_key) as bob:
        assert bob.get(f"/runs/{run_id}/files/media/x.png").status_code == 404
        assert bob.get(f"/runs/{run_id}/media/{table['sha256']}/table").status_code == 404
        for item in (image, table):
            assert bob.get(f"/blobs/{item['sha256']}", params={"run": run_id}).status_code == 404
    with t.client(t.alice_key) as alice:
        assert alice.get(f"/runs/{t.run}/media/{table['sha256']}/table").json()["total"] == 3
        assert alice.get(f"/runs/{t.run}/files/{image['path']}").status_code == 200


def test_an_artifact_naming_content_by_hash_is_incomplete(tenants: Tenants) -> None:
    t = tenants
    files = [ArtifactFile("train.csv", sha(SECRET_ARTIFACT), len(SECRET_ARTIFACT))]
    record = ArtifactLogged("stolen", "dataset", manifest_digest(files, {}), files)
    _, answer = forge(t, [record])
    assert [m["sha256"] for m in answer["missing"]] == [sha(SECRET_ARTIFACT)]
    mine, hers = f"{t.bob}/mine/stolen:v0", f"{t.alice}/secret/net:v0"
    with Api(t.server.url, t.bob_key) as bob:
        version = bob.artifact(mine)
        assert not version.complete and not version.manifest["train.csv"]["uploaded"]
        with pytest.raises(ApiError) as incomplete:
            version.download()
        assert incomplete.value.status == 409
        for where in (mine, hers):
            with pytest.raises(ApiError) as hidden:
                bob.fetch_blob(sha(SECRET_ARTIFACT), artifact=where)
            assert hidden.value.status == 404
    with t.client(t.bob_key) as bob:
        unknown = f"{t.alice}/nothing/net:v0"
        for method in ("GET", "HEAD"):
            url = f"/blobs/{sha(SECRET_ARTIFACT)}"
            absent(
                bob.request(method, url, params={"artifact": hers}),
                bob.request(method, url, params={"artifact": unknown}),
                f"{t.alice}/secret",
                f"{t.alice}/nothing",
            )
    with Api(t.server.url, t.alice_key) as alice:
        path = alice.fetch_blob(sha(SECRET_ARTIFACT), artifact=hers)
        assert path.read_bytes() == SECRET_ARTIFACT


# -- 6: what a caller may not read looks missing -------------------------------------------


def requests_about(t: Tenants, run: str, project: str) -> list[tuple[str, str, Any]]:
    """Every read of a project, run, artifact and their content (and the writes that name
    a run): (method, path, JSON body)."""
    table = t.table["sha256"]
    return [
        ("GET", f"/projects/{project}", None),
        ("PATCH", f"/projects/{project}", {"public": True}),
        ("GET", f"/projects/{project}/runs", None),
        ("POST", f"/projects/{project}/runs/query", {}),
        ("GET", f"/projects/{project}/artifacts", None),
        ("GET", f"/projects/{project}/artifacts/net", None),
        ("GET", f"/projects/{project}/artifacts/net/latest", None),
        ("GET", f"/projects/{project}/artifacts/net/v0/lineage", None),
        ("GET", f"/blobs/{sha(SECRET_ARTIFACT)}?artifact={project}/net:v0", None),
        ("HEAD", f"/blobs/{sha(SECRET_ARTIFACT)}?artifact={project}/net:v0", None),
        ("GET", f"/runs/{run}", None),
        ("PATCH", f"/runs/{run}", {"name": "mine now"}),
        ("GET", f"/runs/{run}/history", None),
        ("GET", f"/runs/{run}/history?format=csv", None),
        ("GET", f"/runs/{run}/system", None),
        ("GET", f"/runs/{run}/histograms", None),
        ("GET", f"/runs/{run}/media", None),
        ("GET", f"/runs/{run}/media/{table}/table", None),
        ("GET", f"/runs/{run}/files", None),
        ("GET", f"/runs/{run}/files/files/weights.bin", None),
        ("GET", f"/runs/{run}/artifacts", None),
        ("POST", "/metrics/keys", {"runs": [run]}),
        ("POST", "/metrics/series", {"runs": [run], "keys": ["loss"]}),
        ("GET", f"/blobs/{sha(SECRET)}?run={run}", None),
        ("HEAD", f"/blobs/{sha(SECRET)}?run={run}", None),
        ("GET", f"/runs/{run}/streams", None),
        ("POST", f"/runs/{run}/heartbeat", None),
        ("POST", f"/runs/{run}/files", {"path": "git.diff", "sha256": sha(SECRET)}),
        ("PUT", f"/blobs/{sha(SECRET)}?run={run}", SECRET),
    ]


def send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return client.request(method, path, content=body)
    return client.request(method, path, json=body)


@pytest.mark.parametrize("with_key", [True, False], ids=["stranger", "no-key"])
def test_private_things_answer_as_missing_ones(tenants: Tenants, with_key: bool) -> None:
    t = tenants
    run, project = t.run, f"{t.alice}/secret"
    ghost_run, ghost_project = f"ghost-{uuid.uuid4().hex[:12]}", f"{t.alice}/ghost"
    private = requests_about(t, run, project)
    missing = requests_about(t, ghost_run, ghost_project)
    with t.client(t.bob_key if with_key else None) as caller:
        for (method, path, body), (_, ghost_path, _) in zip(private, missing, strict=True):
            seen = send(caller, method, path, body)
            like = send(caller, method, ghost_path, body)
            text = like.content.replace(ghost_run.encode(), run.encode())
            text = text.replace(ghost_project.encode(), project.encode())
            where = f"{method} {path}"
            assert seen.status_code == like.status_code, (where, seen.text, like.text)
            assert seen.content == text, (where, seen.text, like.text)
            assert seen.status_code == (404 if with_key else 401), where
            if method != "HEAD":
                assert set(seen.json()) <= {"detail", "offsets"}, where


def test_a_public_run_hides_the_private_versions_it_used(tenants: Tenants) -> None:
    """Bob's public run used a version of his team's private artifact: others don't see it."""
    t = tenants
    team = f"lab{uuid.uuid4().hex[:8]}"
    with t.client(t.bob_key) as bob:
        assert bob.post("/teams", json={"name": team}).status_code == 201
    files = [ArtifactFile("a.txt", sha(b"a"), 1)]
    digest = manifest_digest(files, {})
    forge(t, [ArtifactLogged("ds", "dataset", digest, files)], project=f"{team}/data")
    used = ArtifactUsed(f"{team}/data/ds", 0, digest, time.time())
    run_id, _ = forge(t, [used], project="pub")
    with t.client(t.bob_key) as bob:
        assert bob.patch(f"/projects/{t.bob}/pub", json={"public": True}).status_code == 200
        assert [v["path"] for v in bob.get(f"/runs/{run_id}/artifacts").json()["used"]] == [
            f"{team}/data/ds"
        ]
    for key in (t.alice_key, None):
        with t.client(key) as other:
            assert other.get(f"/runs/{run_id}/artifacts").json() == {"logged": [], "used": []}


def test_a_stranger_cannot_append_to_a_private_run(tenants: Tenants) -> None:
    """A run id taken by a private run: refused as not found, not as forbidden."""
    t = tenants
    start = RunStart(run_id=t.run, project="mine", name="b", start_time=time.time())
    with t.client(t.bob_key) as bob:
        refused = post_log(bob, t.run, log_bytes([start]))
        assert refused.status_code == 404
        assert refused.json() == {"detail": f"no run {t.run}"}


def test_writes_to_a_readable_run_are_forbidden(tenants: Tenants) -> None:
    """Once public, Bob reads Alice's run; changing it is a 403, which reveals nothing."""
    t = tenants
    with t.client(t.alice_key) as alice:
        made = alice.patch(f"/projects/{t.alice}/secret", json={"public": True})
        assert made.status_code == 200
    with t.client(t.bob_key) as bob:
        assert bob.get(f"/runs/{t.run}").status_code == 200
        assert bob.get(f"/blobs/{sha(SECRET)}", params={"run": t.run}).content == SECRET
        assert bob.patch(f"/runs/{t.run}", json={"name": "x"}).status_code == 403
        assert bob.post(f"/runs/{t.run}/heartbeat").status_code == 403
        assert bob.get(f"/runs/{t.run}/streams").status_code == 403
        assert bob.patch(f"/projects/{t.alice}/secret", json={"public": False}).status_code == 403
    with t.client(None) as anonymous:
        assert anonymous.get(f"/runs/{t.run}").status_code == 200
        assert anonymous.get(f"/runs/{t.run}/files/files/weights.bin").content == SECRET
        # Through a public run: content it has, and 404 for content it lacks.
        blob = f"/blobs/{sha(SECRET)}"
        assert anonymous.head(blob, params={"run": t.run}).headers["x-size"] == str(len(SECRET))
        other = f"/blobs/{sha(b'nothing')}"
        assert anonymous.get(other, params={"run": t.run}).status_code == 404


# -- upgrading a database ----------------------------------------------------------------


def test_version_3_database_grandfathers_content_its_runs_name(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn:  # as a version-3 server left it
            old = [t for t in schema.metadata.sorted_tables if t.name != "blob_owners"]
            schema.metadata.create_all(conn, tables=old)
            conn.execute(sa.text("DROP INDEX ix_run_files_sha256"))
            conn.execute(schema.schema_version.insert().values(id=1, version=3, applied_at=0.0))
            conn.execute(
                schema.entities.insert(),
                [
                    {"id": i, "name": n, "kind": "user", "is_admin": False, "created_at": 0.0}
                    for i, n in ((1, "alice"), (2, "bob"))
                ],
            )
            conn.execute(
                schema.projects.insert().values(
                    id=1, entity_id=1, name="p", public=False, created_at=0.0
                )
            )
            empty = b"\x80"
            for pk, project in ((1, 1), (2, None)):
                conn.execute(
                    schema.runs.insert().values(
                        id=pk,
                        run_id=f"r{pk}",
                        project_id=project,
                        creator_id=pk,
                        created_at=0.0,
                        updated_at=0.0,
                        last_seen=0.0,
                        meta=empty,
                        config=empty,
                        summary=empty,
                        state_blob=empty,
                    )
                )
            for pk, content in ((1, "a"), (2, "b"), (2, "c")):
                conn.execute(
                    schema.run_files.insert().values(
                        run_pk=pk,
                        path=content,
                        sha256=content * 64,
                        time=0.0,
                        origin="main",
                        meta=empty,
                    )
                )
            stored = [{"sha256": c * 64, "size": 1, "created_at": 0.0} for c in "ab"]
            conn.execute(schema.blobs.insert(), stored)
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            owners = conn.execute(sa.select(schema.blob_owners)).all()
            assert migrations.current_version(conn) == schema.SCHEMA_VERSION
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("run_files")}
        # Alice's project holds "a"; Bob's project-less run "b"; "c" was never uploaded.
        assert sorted(tuple(o) for o in owners) == [(1, "a" * 64), (2, "b" * 64)]
        assert "ix_run_files_sha256" in indexes
    finally:
        db.dispose()


def test_json_bodies_name_only_what_was_asked(tenants: Tenants) -> None:
    """The 404 of a private run names the run the caller asked for, nothing of its owner."""
    t = tenants
    with t.client(t.bob_key) as bob:
        body = bob.get(f"/runs/{t.run}").json()
    assert body == {"detail": f"no run {t.run}"}
    assert t.alice not in json.dumps(body)
