"""Artifacts end to end: real runs, their agents, a uvicorn server, ``trackline.Api`` and the CLI.

Versions and aliases assigned at ingest (also by concurrent runs, on SQLite and
PostgreSQL), the same content stored once, lineage from a producer to a consumer,
downloads checked by hash, access control, and names that cannot be paths.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_postgres,
    fixture_server,
    log_bytes,
    wait_for,
)
from click.testing import CliRunner
from trackline._cli import main as cli
from trackline._client import Api, ApiError
from trackline.artifacts import manifest_digest
from trackline.records import ArtifactFile, ArtifactLogged, Finish, RunStart

pytestmark = pytest.mark.slow


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def online(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    monkeypatch.setenv("TRACKLINE_SERVER", server.url)
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_UPLOAD_BACKOFF_MAX", "0.5")
    return server


@pytest.fixture
def api(online: ServerProcess) -> Iterator[Api]:
    with Api(online.url, ADMIN_KEY) as client:
        yield client


def agent_done(run: trackline.Run, timeout: float = 120.0) -> None:
    """Wait until the run's agent exits: it leaves once everything is uploaded."""
    assert run._agent is not None
    pid = run._agent.pid

    def gone() -> bool:
        try:
            return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout, what=f"agent {pid} to exit")


def artifact_of(tmp_path: Path, name: str, files: dict[str, bytes], **kwargs: object) -> Any:
    folder = tmp_path / f"src-{time.monotonic_ns()}"
    folder.mkdir()
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    artifact = trackline.Artifact(name, "model", **kwargs)  # type: ignore[arg-type]
    artifact.add_dir(folder)
    return artifact


def stored_blobs(server: ServerProcess) -> dict[str, int]:
    """sha256 -> size of every blob in the server's file store."""
    root = server.data_dir / "files" / "blobs"
    return {p.name: p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_versions_aliases_dedup_and_idempotent_relog(
    online: ServerProcess, api: Api, tmp_path: Path
) -> None:
    shared = os.urandom(50_000)
    first = {"weights.bin": b"first" * 1000, "shared.bin": shared}
    second = {"weights.bin": b"second" * 1000, "shared.bin": shared}
    run = trackline.init(project="arts")
    run.log_artifact(artifact_of(tmp_path, "net", first, metadata={"epoch": 1}))
    run.log_artifact(
        artifact_of(tmp_path, "net", second, metadata={"epoch": 2}), ["latest", "best"]
    )
    # The first content again: no new version; its aliases move.
    run.log_artifact(artifact_of(tmp_path, "net", first), aliases=["latest", "stable"])
    run.finish()
    agent_done(run)

    versions = api.artifact_versions("arts/net")
    assert [v.version for v in versions] == [0, 1]
    assert [v.metadata for v in versions] == [{"epoch": 1}, {"epoch": 2}]
    assert versions[0].aliases == ["latest", "stable"] and versions[1].aliases == ["best"]
    assert {v.producer for v in versions} == {run.id}
    latest = api.artifact("arts/net:latest")
    assert latest.version == 0 and latest.complete
    assert latest.manifest == {
        "shared.bin": {"sha256": sha(shared), "size": len(shared), "uploaded": True},
        "weights.bin": {"sha256": sha(first["weights.bin"]), "size": 5000, "uploaded": True},
    }
    assert api.artifact("admin/arts/net:v1").digest == versions[1].digest
    (listed,) = api.artifacts("arts")
    assert (listed.name, listed.type, listed.version_count) == ("net", "model", 2)
    assert listed.aliases == {"best": "v1", "latest": "v0", "stable": "v0"}
    # The same file in two versions: stored once on the server and once in the run directory.
    contents = {sha(first["weights.bin"]), sha(second["weights.bin"]), sha(shared)}
    blobs = stored_blobs(online)
    assert contents <= blobs.keys()
    assert sorted(p.name for p in (run.dir / "artifacts" / "blobs").iterdir()) == sorted(contents)
    assert sum(1 for p in (online.data_dir / "files" / "blobs").rglob(sha(shared))) == 1
    with pytest.raises(ApiError) as missing:
        api.artifact("arts/net:v7")
    assert missing.value.status == 404


_PRODUCER = textwrap.dedent(
    """
    import sys, trackline
    project, path = sys.argv[1], sys.argv[2]
    run = trackline.init(project=project)
    artifact = trackline.Artifact("shared", "dataset")
    artifact.add_file(path)
    run.log_artifact(artifact)
    run.finish()
    print(run.id)
    """
)


def test_two_concurrent_processes_get_distinct_versions(
    online: ServerProcess, api: Api, tmp_path: Path
) -> None:
    env = {**os.environ, "TRACKLINE_DIR": str(tmp_path / "procs")}
    procs = []
    for i in range(2):
        path = tmp_path / f"data-{i}.bin"
        path.write_bytes(os.urandom(10_000))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _PRODUCER, "conc", str(path)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    run_ids = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    versions = wait_for(
        lambda: (v := api.artifact_versions("conc/shared")) and len(v) == 2 and v,
        timeout=60,
        what="two versions",
    )
    assert [v.version for v in versions] == [0, 1]
    assert {v.producer for v in versions} == run_ids
    assert api.artifact("conc/shared:latest").version == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_versions_under_concurrent_ingest(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Many runs logging the same name at once: versions 0..N-1, each once; `latest` = highest."""
    url = None
    if backend == "postgresql":
        url = request.getfixturevalue("postgres").new_database()
    server = ServerProcess(tmp_path / "srv", database_url=url).start()
    try:
        count = 12
        errors: list[str] = []

        def log_one(i: int) -> None:
            files = [ArtifactFile("data.bin", f"{i:064x}", 10)]
            records = [
                RunStart(run_id=f"conc{i}", project="race", name=f"r{i}", start_time=time.time()),
                ArtifactLogged(
                    "shared",
                    "dataset",
                    manifest_digest(files, {}),
                    files,
                    {},
                    {},
                    ["latest"],
                    time.time(),
                ),
                Finish(time.time(), "finished"),
            ]
            with server.client() as client:
                response = client.post(
                    f"/runs/conc{i}/streams/main",
                    params={"offset": 0},
                    content=zlib.compress(log_bytes(records)),
                    headers={"content-encoding": "deflate"},
                )
            if response.status_code != 200:
                errors.append(response.text)

        threads = [threading.Thread(target=log_one, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        with Api(server.url, ADMIN_KEY) as client:
            versions = client.artifact_versions("race/shared")
            assert sorted(v.version for v in versions) == list(range(count))
            assert len({v.producer for v in versions}) == count
            assert client.artifact("race/shared:latest").version == count - 1
            # Not uploaded: a download says so.
            with pytest.raises(ApiError, match="not fully uploaded"):
                client.artifact("race/shared:v0").download(tmp_path / "dl")
    finally:
        server.stop()


def test_lineage_download_cache_and_cli(
    online: ServerProcess, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TRACKLINE_CACHE_DIR", str(cache))
    data = {"train.csv": b"x,y\n1,2\n" * 100, "meta/info.json": b'{"rows": 100}'}
    producer = trackline.init(project="lin", name="make-data")
    producer.log_artifact(artifact_of(tmp_path, "data", data, metadata={"rows": 100}))
    producer.finish()
    agent_done(producer)

    consumer = trackline.init(project="lin", name="train")
    used = consumer.use_artifact("data:latest", type="model")
    assert (used.version, used.metadata, used.path) == (0, {"rows": 100}, "admin/lin/data")
    root = used.download(tmp_path / "got")
    assert {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    } == data
    assert sorted(p.name for p in (cache / "artifacts").iterdir()) == sorted(
        sha(d) for d in data.values()
    )
    # A corrupted cache file is noticed (by its hash) and fetched again.
    (cache / "artifacts" / sha(data["train.csv"])).write_bytes(b"corrupt")
    again = used.download(tmp_path / "again")
    assert (again / "train.csv").read_bytes() == data["train.csv"]
    assert (cache / "artifacts" / sha(data["train.csv"])).read_bytes() == data["train.csv"]
    with pytest.raises(ValueError, match="type"):
        consumer.use_artifact("data:v0", type="dataset")
    consumer.finish()
    agent_done(consumer)

    lineage = api.artifact("lin/data:v0").lineage()
    assert lineage["producer"]["id"] == producer.id
    assert [r["id"] for r in lineage["consumers"]] == [consumer.id]
    assert api.run(consumer.id).artifacts()["used"][0]["path"] == "admin/lin/data"
    assert api.run(producer.id).artifacts()["logged"][0]["version"] == 0
    assert [u.path for u in trackline.open_run(consumer.id).artifacts_used()] == ["admin/lin/data"]

    runner = CliRunner()
    listed = runner.invoke(cli, ["artifact", "ls", "lin"])
    assert listed.exit_code == 0, listed.output
    assert "data" in listed.output and "latest=v0" in listed.output
    versions = runner.invoke(cli, ["artifact", "ls", "lin", "data"])
    assert versions.exit_code == 0 and "v0" in versions.output and producer.id in versions.output
    got = runner.invoke(cli, ["artifact", "get", "lin/data:v0", "--root", str(tmp_path / "cli")])
    assert got.exit_code == 0, got.output
    assert (tmp_path / "cli" / "meta" / "info.json").read_bytes() == data["meta/info.json"]
    shown = runner.invoke(cli, ["artifact", "lineage", "lin/data:latest"])
    assert shown.exit_code == 0, shown.output
    assert producer.id in shown.output and consumer.id in shown.output
    missing = runner.invoke(cli, ["artifact", "get", "lin/nothing:v0"])
    assert missing.exit_code != 0 and "no artifact" in missing.output


def test_private_artifacts_and_names_that_are_not_paths(
    online: ServerProcess, api: Api, tmp_path: Path
) -> None:
    secret = b"secret weights" * 100
    run = trackline.init(project="private")
    run.log_artifact(artifact_of(tmp_path, "net", {"w.bin": secret}))
    run.finish()
    agent_done(run)
    with online.client() as admin:
        bob_key = admin.post("/users", json={"name": "bob"}).json()["api_key"]
    with Api(online.url, bob_key) as bob:
        for call in (
            lambda: bob.artifacts("admin/private"),
            lambda: bob.artifact("admin/private/net:latest"),
        ):
            with pytest.raises(ApiError) as refused:
                call()
            assert refused.value.status == 404  # as if there were none
        with pytest.raises(ApiError) as hidden:
            bob.fetch_blob(sha(secret), artifact="admin/private/net:v0")
        assert hidden.value.status == 404
    blob_url = f"{online.url}/api/v1/blobs/{sha(secret)}"
    assert httpx.get(blob_url, params={"artifact": "admin/private/net:v0"}).status_code == 401
    assert api.fetch_blob(sha(secret), artifact="admin/private/net:v0").read_bytes() == secret
    with online.client() as admin:
        for url in (
            "/projects/admin/private/artifacts/..%2Fnet",
            "/projects/admin/private/artifacts/.net/latest",
            "/projects/admin/private/artifacts/net/%2E%2E",
            "/projects/admin/private/artifacts/net/a%2Fb",
            "/blobs/../../etc/passwd",
        ):
            assert admin.get(url).status_code in (404, 422), url

        def ship(name: str, path: str, digest: str | None = None) -> httpx.Response:
            files = [ArtifactFile(path, sha(b"x"), 1)]
            record = ArtifactLogged(name, "model", digest or manifest_digest(files, {}), files)
            start = RunStart(run_id="bad", project="private", name="bad", start_time=time.time())
            return admin.post(
                "/runs/bad/streams/main",
                params={"offset": 0},
                content=zlib.compress(log_bytes([start, record])),
                headers={"content-encoding": "deflate"},
            )

        assert ship("../net", "w.bin").status_code == 422
        assert ship("a/b", "w.bin").status_code == 422
        assert ship("net", "../../etc/passwd").status_code == 422
        assert ship("net", "/abs").status_code == 422
        assert ship("net", "w.bin", digest="0" * 64).status_code == 422
        assert ship("net", "w.bin").status_code == 200
