"""File storage on S3: the server against moto's standalone S3 server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ADMIN_KEY, MotoS3, ServerProcess, wait_for
from trackline import runlog
from trackline._client import Api
from trackline._transport import Shipper
from trackline.records import FileSaved, Finish, Metrics, RunStart
from trackline.runlog import LogFile

boto3 = pytest.importorskip("boto3", reason="S3 storage needs boto3 (trackline[s3])")
pytest.importorskip("moto", reason="the S3 tests need moto[server]")

pytestmark = pytest.mark.slow

AWS_ENV = MotoS3.env


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """moto's S3 server on a free port, with a bucket; (endpoint URL, boto3 client)."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    with MotoS3(tmp_path / "moto") as moto:
        yield moto.url, boto3.client("s3", endpoint_url=moto.url)


def test_files_go_to_s3_once(s3: tuple[str, Any], tmp_path: Path) -> None:
    endpoint, client = s3
    server = ServerProcess(
        tmp_path / "server",
        files="s3://tl-bucket/trackline",
        extra_args=("--s3-endpoint-url", endpoint),
        env=AWS_ENV,
    ).start()
    try:
        content = b"model weights " * 5000
        sha = hashlib.sha256(content).hexdigest()
        run_dir = tmp_path / "s3run"
        (run_dir / "files").mkdir(parents=True)
        (run_dir / "files" / "a.bin").write_bytes(content)
        (run_dir / "files" / "b.bin").write_bytes(content)
        log = LogFile(run_dir / "main.tlog")
        log.write(
            runlog.frame_record(r)
            for r in [
                RunStart("s3run", "s3", "n", time.time()),
                Metrics(0, time.time(), {"x": 1.0}),
                FileSaved("a.bin", "now", len(content), sha, time.time()),
                FileSaved("b.bin", "now", len(content), sha, time.time()),
                Finish(time.time(), "finished"),
            ]
        )
        log.close()
        with Shipper(run_dir, server.url, ADMIN_KEY, live=False) as shipper:
            wait_for(lambda: shipper.pump(final=True), 60, what="upload")
            assert not shipper.files_failed
        objects = client.list_objects_v2(Bucket="tl-bucket", Prefix="trackline/")["Contents"]
        assert [o["Key"] for o in objects] == [f"trackline/blobs/{sha[:2]}/{sha}"]
        with Api(server.url, ADMIN_KEY) as api:
            run = api.run("s3run")
            assert run.file("files/a.bin") == content
            assert run.file("files/b.bin") == content
            assert all(f["uploaded"] for f in run.files())
    finally:
        server.stop()


def test_uploads_in_parts_on_s3(s3: tuple[str, Any], tmp_path: Path) -> None:
    """Parts are objects any server can read; the whole is checked, stored as a blob, and
    the parts are gone."""
    endpoint, client = s3
    server = ServerProcess(
        tmp_path / "server",
        files="s3://tl-bucket/trackline",
        extra_args=("--s3-endpoint-url", endpoint, "--upload-part-mb", "0.25"),
        env=AWS_ENV,
    ).start()
    part = 256 * 1024
    content = bytes(range(256)) * (part * 5 // 256) + b"tail"
    sha = hashlib.sha256(content).hexdigest()
    try:
        with server.client() as api:
            upload = api.post(f"/blobs/{sha}/uploads", json={"size": len(content)}).json()
            assert upload["parts"] == 6
            for n in reversed(range(6)):  # any order
                piece = content[n * part : (n + 1) * part]
                api.put(
                    f"/uploads/{upload['id']}/parts/{n}",
                    content=piece,
                    headers={"x-part-sha256": hashlib.sha256(piece).hexdigest()},
                ).raise_for_status()
            listed = client.list_objects_v2(Bucket="tl-bucket", Prefix="trackline/uploads/")
            assert len(listed.get("Contents", [])) == 6
            done = api.post(f"/uploads/{upload['id']}/complete")
            assert done.status_code == 200, done.text
            assert done.json() == {"sha256": sha, "size": len(content), "stored": True}
        stored = client.get_object(Bucket="tl-bucket", Key=f"trackline/blobs/{sha[:2]}/{sha}")
        assert stored["Body"].read() == content
        listed = client.list_objects_v2(Bucket="tl-bucket", Prefix="trackline/uploads/")
        assert listed.get("Contents", []) == []
    finally:
        server.stop()
