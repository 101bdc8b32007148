"""The trash, on a real server over real HTTP, on SQLite and PostgreSQL: a deleted run is
missing everywhere but the trash, keeps receiving what its agent ships, comes back whole
when restored, and is purged after 30 days (or at once, on request); who may do what;
a version-9 database gains the trash's columns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_database_url,
    fixture_postgres,
    frames_bytes,
    log_bytes,
    post_log,
)
from trackline.records import Metrics, RunStart
from trackline.server import schema
from trackline.server.db import Database


@dataclass
class Lab:
    server: ServerProcess
    database_url: str
    keys: dict[str, str]

    def client(self, who: str | None = "owner") -> httpx.Client:
        return self.server.client(self.keys[who] if who else None)


def _start(raw: httpx.Client, run_id: str, project: str, steps: range) -> int:
    records = [RunStart(run_id=run_id, project=project, name=run_id, start_time=time.time())]
    records += [Metrics(s, time.time(), {"loss": 1.0 / (s + 1)}) for s in steps]
    data = log_bytes(records)
    post_log(raw, run_id, data).raise_for_status()
    return len(data)


@pytest.fixture(name="lab")
def fixture_lab(database_url: str, tmp_path: Path) -> Iterator[Lab]:
    """owner/vision (public) with runs a, b, c; reader is another user."""
    server = ServerProcess(tmp_path / "server", database_url=database_url).start()
    try:
        keys = {}
        with server.client() as admin:
            for name in ("owner", "reader"):
                keys[name] = admin.post("/users", json={"name": name}).json()["api_key"]
        lab = Lab(server, database_url, keys)
        headers = {"authorization": f"Bearer {keys['owner']}"}
        with httpx.Client(base_url=server.url, headers=headers) as raw:
            for run_id in ("runa", "runb", "runc"):
                _start(raw, run_id, "vision", range(10))
        with lab.client() as owner:
            owner.patch("/projects/owner/vision", json={"public": True}).raise_for_status()
        yield lab
    finally:
        server.stop()


def _ids(client: httpx.Client) -> list[str]:
    return sorted(r["id"] for r in client.get("/projects/owner/vision/runs").json()["runs"])


def test_delete_restore_and_data_arriving_meanwhile(lab: Lab) -> None:
    with lab.client() as owner:
        gone = owner.delete("/runs/runa")
        assert gone.status_code == 200, gone.text
        assert gone.json()["runs"] == ["runa"]
        assert abs(gone.json()["purge_at"] - (time.time() + 30 * 86400)) < 60
        assert _ids(owner) == ["runb", "runc"]
        assert owner.get("/projects/owner/vision").json()["runs"] == 2
        assert owner.get("/runs/runa").status_code == 404
        series = owner.post("/metrics/series", json={"runs": ["runa"], "keys": ["loss"]})
        assert series.status_code == 404
        assert owner.delete("/runs/runa").status_code == 404  # already in the trash
        listed = owner.get("/projects/owner/vision/trash").json()["runs"]
        assert [(r["id"], r["deleted_by"]) for r in listed] == [("runa", "owner")]
    # The agent keeps shipping: nothing is lost while the run is in the trash.
    headers = {"authorization": f"Bearer {lab.keys['owner']}"}
    with httpx.Client(base_url=lab.server.url, headers=headers) as raw:
        head = len(
            log_bytes([RunStart(run_id="runa", project="vision", name="runa", start_time=0.0)])
        )
        first = len(log_bytes([]))
        offsets = raw.get("/api/v1/runs/runa/streams").json()["offsets"]
        more = frames_bytes([Metrics(s, time.time(), {"loss": 0.01}) for s in range(10, 15)])
        post_log(raw, "runa", more, offset=offsets["main"]).raise_for_status()
        assert head > first
    with lab.client() as owner:
        assert owner.post("/runs/runa/restore").json() == {"restored": "runa"}
        assert _ids(owner) == ["runa", "runb", "runc"]
        history = owner.get("/runs/runa/history", params={"keys": "loss"}).json()
        assert history["steps"] == list(range(15))
        assert owner.post("/runs/runa/restore").status_code == 404  # not in the trash
        assert owner.get("/projects/owner/vision/trash").json()["runs"] == []


def test_selection_and_who_may(lab: Lab) -> None:
    with lab.client("reader") as reader, lab.client(None) as anonymous:
        # The project is public: the reader sees the runs but may not delete them.
        assert reader.delete("/runs/runb").status_code == 403
        refused = reader.post("/projects/owner/vision/runs/delete", json={"runs": ["runb"]})
        assert refused.status_code == 403
        assert reader.get("/projects/owner/vision/trash").status_code == 403
        assert anonymous.delete("/runs/runb").status_code == 401
    with lab.client() as owner:
        owner.patch("/projects/owner/vision", json={"public": False}).raise_for_status()
        picked = owner.post(
            "/projects/owner/vision/runs/delete", json={"runs": ["runb", "runc", "nope"]}
        )
        assert picked.json()["runs"] == ["runb", "runc"]
        assert _ids(owner) == ["runa"]
        assert (
            owner.post("/projects/owner/vision/runs/delete", json={"runs": []}).status_code == 422
        )
    with lab.client("reader") as reader:
        # Private now: the same answers as for a missing run or project.
        assert reader.delete("/runs/runa").json() == {"detail": "no run runa"}
        assert reader.post("/runs/runb/restore").status_code == 404
        assert reader.get("/projects/owner/vision/trash").status_code == 404


def test_purged_after_thirty_days_or_on_request(lab: Lab) -> None:
    with lab.client() as owner:
        owner.post("/projects/owner/vision/runs/delete", json={"runs": ["runa", "runb"]})
    db = Database(lab.database_url)
    try:
        with db.write() as conn:  # runa went to the trash 31 days ago
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.run_id == "runa")
                .values(deleted_at=time.time() - 31 * 86400)
            )
    finally:
        db.dispose()
    with lab.client() as owner:
        listed = owner.get("/projects/owner/vision/trash").json()["runs"]
        assert [r["id"] for r in listed] == ["runb"]  # runa purged on the way
        assert owner.post("/runs/runa/restore").status_code == 404
        assert owner.delete("/runs/runb/trash").json() == {"deleted": "runb"}
        assert owner.get("/projects/owner/vision/trash").json()["runs"] == []
        assert _ids(owner) == ["runc"]
    db = Database(lab.database_url)
    try:
        with db.read() as conn:
            names = set(conn.execute(sa.select(schema.runs.c.run_id)).scalars())
            live = sa.select(schema.runs.c.id)
            orphans = {
                table.name: conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.run_pk.not_in(live))
                ).scalar_one()
                for table in (schema.series, schema.streams, schema.run_files)
            }
            chunks = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.chunks)
                .where(schema.chunks.c.series_id.not_in(sa.select(schema.series.c.id)))
            ).scalar_one()
        assert names == {"runc"}
        assert orphans == {"series": 0, "streams": 0, "run_files": 0} and chunks == 0
        with db.read() as conn:
            times = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.block_times)
                .where(schema.block_times.c.series_id.not_in(sa.select(schema.series.c.id)))
            ).scalar_one()
        assert times == 0
    finally:
        db.dispose()
    # An agent still holding a purged run is told (410) instead of bringing it back; anyone
    # else gets what a missing run gets.
    more = frames_bytes([Metrics(10, time.time(), {"loss": 0.01})])
    headers = {"authorization": f"Bearer {lab.keys['owner']}"}
    with httpx.Client(base_url=lab.server.url, headers=headers) as raw:
        for run_id in ("runa", "runb"):
            gone = raw.get(f"/api/v1/runs/{run_id}/streams")
            assert gone.status_code == 410 and "deleted for good" in gone.json()["detail"]
            assert post_log(raw, run_id, more, offset=500).status_code == 410
    with lab.client("reader") as reader:
        assert reader.get("/runs/runa/streams").status_code == 404
    with lab.server.client() as admin:
        assert admin.get("/runs/runa/streams").status_code == 410
        assert admin.get("/runs/runa").status_code == 404
    db = Database(lab.database_url)
    try:
        with db.read() as conn:
            assert set(conn.execute(sa.select(schema.runs.c.run_id)).scalars()) == {"runc"}
    finally:
        db.dispose()


def test_a_purged_run_still_training_is_not_uploaded_again(lab: Lab, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import trackline

    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(TRACKLINE_SERVER=lab.server.url, TRACKLINE_API_KEY=lab.keys["owner"])
    env["TRACKLINE_UPLOAD_GIVE_UP"] = "60"  # agents stop soon once the test is over

    def sync() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "trackline", "sync", str(tmp_path / "tl")]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    run = trackline.init(project="vision", mode="offline", dir=tmp_path / "tl", name="long")
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)})
    run.finish()
    first = sync()
    assert first.returncode == 0, first.stderr[-2000:]
    with lab.client() as owner:
        owner.post("/projects/owner/vision/runs/delete", json={"runs": [run.id]}).raise_for_status()
        assert owner.delete(f"/runs/{run.id}/trash").status_code == 200
    again = trackline.init(id=run.id, resume="allow", mode="offline", dir=tmp_path / "tl")
    again.log({"loss": 0.1})
    again.finish()
    done = sync()
    said = " ".join((done.stdout + done.stderr).split())
    assert "deleted for good on the server" in said, said
    with lab.client() as owner:
        assert owner.get(f"/runs/{run.id}").status_code == 404
        assert run.id not in _ids(owner)
    assert len(trackline.open_run(tmp_path / "tl" / "runs" / run.id).history()) == 6  # kept


def test_a_version_9_database_gains_the_trash(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.migrate()
        with db.write() as conn:  # as a version-9 server left it
            conn.execute(sa.text("ALTER TABLE runs DROP COLUMN deleted_by"))
            conn.execute(sa.text("ALTER TABLE runs DROP COLUMN deleted_at"))
            conn.execute(sa.update(schema.schema_version).values(version=9))
        assert db.migrate() == schema.SCHEMA_VERSION
        with db.read() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
        assert {"deleted_at", "deleted_by"} <= columns
    finally:
        db.dispose()
