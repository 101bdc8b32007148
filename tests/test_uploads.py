"""Uploads in parts on a real server over real HTTP: a file larger than a proxy's body
limit arrives whole (every request under the limit), resumed at part granularity after a
kill of the client or of the server; bad parts are refused; the whole is checked before
it becomes visible; unfinished uploads expire; parts also work on S3 (moto)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trackline
from _server import ADMIN_KEY, ServerProcess, post_log
from trackline._transport import Shipper
from trackline.server import schema
from trackline.server.db import Database

PART = 256 * 1024
PROXY_LIMIT = 300 * 1024  # a proxy's body limit: above one part, far below the file
SIZE = 3 * 1024 * 1024 + 12345  # 13 parts, the last one short


class Proxy(httpx.BaseTransport):
    """In front of the real transport, like nginx's client_max_body_size: a body above the
    limit gets 413 without reaching the server. Counts what it lets through."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inner = httpx.HTTPTransport()
        self.parts: list[int] = []
        self.largest = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        length = int(request.headers.get("content-length") or 0)
        if length > self.limit:
            return httpx.Response(413, json={"detail": "Request Entity Too Large (proxy)"})
        self.largest = max(self.largest, length)
        if "/parts/" in request.url.path:
            self.parts.append(int(request.url.path.rsplit("/", 1)[1]))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "server", extra_args=("--upload-part-mb", "0.25")).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def big_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, bytes, Path]:
    """An offline run that saved a file of SIZE random bytes."""
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRACKLINE_UPLOAD_PART_MB", "0.25")
    data = os.urandom(SIZE)
    source = tmp_path / "checkpoint.bin"
    source.write_bytes(data)
    run = trackline.init(project="big", mode="offline")
    run.save(str(source), policy="now")
    run.log({"loss": 1.0})
    run.finish()
    return run, data, source


def _server_file(server: ServerProcess, run_id: str) -> bytes:
    with server.client() as admin:
        files = {f["path"]: f for f in admin.get(f"/runs/{run_id}/files").json()["files"]}
        path = next(p for p in files if p.endswith("checkpoint.bin"))
        return admin.get(f"/runs/{run_id}/files/{path}").content


def _ship(run_dir: Path, server: ServerProcess, proxy: Proxy) -> Shipper:
    shipper = Shipper(run_dir, server.url, budget=60, transport=proxy)
    for _ in range(20):
        if shipper.pump(final=True):
            break
        time.sleep(0.2)
    shipper.close()
    return shipper


def test_a_file_larger_than_the_proxy_limit_arrives_in_parts(
    server: ServerProcess, big_run: tuple[Any, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, data, _ = big_run
    proxy = Proxy(PROXY_LIMIT)
    shipper = _ship(run.dir, server, proxy)
    assert shipper.done and not shipper.files_failed, (shipper.error, shipper.files_failed)
    assert sorted(proxy.parts) == list(range(13)) and proxy.largest <= PART
    assert _server_file(server, run.id) == data
    # The same file in one PUT (parts only above 64 MB): the proxy refuses it, for good.
    monkeypatch.setenv("TRACKLINE_UPLOAD_PART_MB", "64")
    again = trackline.init(project="big", mode="offline")
    other = big_run[2].with_name("other.bin")
    other.write_bytes(os.urandom(SIZE))
    again.save(str(other), policy="now")
    again.finish()
    whole = _ship(again.dir, server, Proxy(PROXY_LIMIT))
    assert [p for p in whole.files_failed if p.endswith("other.bin")]
    assert "413" in next(iter(whole.files_failed.values()))


def test_resumes_after_the_client_and_the_server_are_killed(
    server: ServerProcess, big_run: tuple[Any, bytes, Path]
) -> None:
    run, data, _ = big_run
    sha = hashlib.sha256(data).hexdigest()
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=headers) as raw:  # the run's log first
        post_log(raw, run.id, (Path(run.dir) / "main.tlog").read_bytes()).raise_for_status()
    with server.client() as client:
        # A client sends 5 of 13 parts and dies.
        upload = client.post(
            f"/blobs/{sha}/uploads", params={"run": run.id}, json={"size": SIZE}
        ).json()
        assert upload["parts"] == 13 and upload["part_size"] == PART and upload["received"] == []
        for n in (0, 3, 4, 7, 12):
            piece = data[n * PART : (n + 1) * PART]
            sent = client.put(
                f"/uploads/{upload['id']}/parts/{n}",
                content=piece,
                headers={"x-part-sha256": hashlib.sha256(piece).hexdigest()},
            )
            assert sent.status_code == 200, sent.text
    # The server is killed and comes back.
    server.process.kill()  # type: ignore[union-attr]
    server.process.wait()  # type: ignore[union-attr]
    server.start()
    proxy = Proxy(PROXY_LIMIT)
    shipper = _ship(run.dir, server, proxy)
    assert shipper.done and not shipper.files_failed, (shipper.error, shipper.files_failed)
    assert sorted(proxy.parts) == [1, 2, 5, 6, 8, 9, 10, 11]  # only what was missing
    assert _server_file(server, run.id) == data


def test_bad_parts_and_a_bad_whole_are_refused(
    server: ServerProcess, big_run: tuple[Any, bytes, Path], tmp_path: Path
) -> None:
    _run, data, _ = big_run
    sha = hashlib.sha256(data).hexdigest()
    with server.client() as client:
        upload = client.post(f"/blobs/{sha}/uploads", json={"size": SIZE}).json()
        url = f"/uploads/{upload['id']}"
        piece = data[:PART]
        good = {"x-part-sha256": hashlib.sha256(piece).hexdigest()}
        assert (
            client.put(
                f"{url}/parts/0", content=piece, headers={"x-part-sha256": "0" * 64}
            ).status_code
            == 400
        )
        assert client.put(f"{url}/parts/0", content=piece[:-1], headers=good).status_code == 400
        assert client.put(f"{url}/parts/0", content=piece + b"x", headers=good).status_code == 413
        assert client.put(f"{url}/parts/13", content=piece, headers=good).status_code == 400
        assert client.put(f"{url}/parts/0", content=piece).status_code == 422
        assert client.put(f"{url}/parts/0", content=piece, headers=good).status_code == 200
        missing = client.post(f"{url}/complete")
        assert missing.status_code == 409 and missing.json()["missing"] == list(range(1, 13))
        assert client.get(url).json()["received"] == [0]
        # The same start again finds this upload.
        assert (
            client.post(f"/blobs/{sha}/uploads", json={"size": SIZE}).json()["id"] == upload["id"]
        )
    # Another user's key: the upload is not there.
    with server.client() as admin:
        other = admin.post("/users", json={"name": "mallory"}).json()["api_key"]
    with server.client(other) as mallory:
        assert mallory.get(url).status_code == 404
        assert (
            mallory.put(f"{url}/parts/1", content=data[PART : 2 * PART], headers=good).status_code
            == 404
        )
        assert mallory.post(f"{url}/complete").status_code == 404
    # A whole that is not the content it claimed to be: dropped, nothing stored.
    liar = hashlib.sha256(b"something else").hexdigest()
    small = data[: PART + 10]
    with server.client() as client:
        upload = client.post(f"/blobs/{liar}/uploads", json={"size": len(small)}).json()
        for n in range(2):
            piece = small[n * PART : (n + 1) * PART]
            client.put(
                f"/uploads/{upload['id']}/parts/{n}",
                content=piece,
                headers={"x-part-sha256": hashlib.sha256(piece).hexdigest()},
            ).raise_for_status()
        wrong = client.post(f"/uploads/{upload['id']}/complete")
        assert wrong.status_code == 400 and "does not match" in wrong.json()["detail"]
        assert client.get(f"/uploads/{upload['id']}").status_code == 404
        assert client.head(f"/blobs/{liar}").status_code in (400, 404)


def test_unfinished_uploads_expire(server: ServerProcess, big_run: tuple[Any, bytes, Path]) -> None:
    _run, data, _ = big_run
    sha = hashlib.sha256(data).hexdigest()
    with server.client() as client:
        upload = client.post(f"/blobs/{sha}/uploads", json={"size": SIZE}).json()
        piece = data[:PART]
        client.put(
            f"/uploads/{upload['id']}/parts/0",
            content=piece,
            headers={"x-part-sha256": hashlib.sha256(piece).hexdigest()},
        ).raise_for_status()
    leftover = server.data_dir / "files" / "uploads" / upload["id"]
    assert leftover.is_file()
    db = Database(f"sqlite:///{server.data_dir / 'trackline.db'}")
    try:
        with db.write() as conn:
            conn.execute(sa.update(schema.uploads).values(updated_at=time.time() - 25 * 3600))
    finally:
        db.dispose()
    with server.client() as client:  # any start drops the expired ones first
        fresh = client.post(f"/blobs/{sha}/uploads", json={"size": SIZE}).json()
        assert fresh["id"] != upload["id"] and fresh["received"] == []
        assert client.get(f"/uploads/{upload['id']}").status_code == 404
    assert not leftover.exists()


def test_downloads_go_on_from_where_they_stopped(
    server: ServerProcess, big_run: tuple[Any, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trackline._client import Api, cache_dir

    run, data, _ = big_run
    _ship(run.dir, server, Proxy(PROXY_LIMIT))
    sha = hashlib.sha256(data).hexdigest()
    with server.client() as client:
        part = client.get(f"/blobs/{sha}", params={"run": run.id}, headers={"range": "bytes=100-"})
        assert part.status_code == 206 and part.content == data[100:]
        assert part.headers["content-range"] == f"bytes 100-{SIZE - 1}/{SIZE}"
        tail = client.get(f"/blobs/{sha}", params={"run": run.id}, headers={"range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        middle = client.get(f"/blobs/{sha}", params={"run": run.id}, headers={"range": "bytes=5-9"})
        assert middle.content == data[5:10]
        beyond = client.get(
            f"/blobs/{sha}", params={"run": run.id}, headers={"range": f"bytes={SIZE}-"}
        )
        assert beyond.status_code == 416
        files = client.get(f"/runs/{run.id}/files").json()["files"]
        path = next(f["path"] for f in files if f["path"].endswith("checkpoint.bin"))
        again = client.get(f"/runs/{run.id}/files/{path}", headers={"range": "bytes=1000-"})
        assert again.status_code == 206 and again.content == data[1000:]
    # trackline.Api: a download cut short goes on from the partial file.
    monkeypatch.setenv("TRACKLINE_CACHE_DIR", str(Path(run.dir).parent / "cache"))
    folder = cache_dir() / "artifacts"
    folder.mkdir(parents=True)
    (folder / f".{sha}.partial").write_bytes(data[: SIZE // 2])
    received: list[int] = []
    with Api(server.url, ADMIN_KEY) as api:
        api._client.event_hooks["response"].append(
            lambda response: received.append(int(response.headers.get("content-length", 0)))
        )
        got = api.fetch_blob(sha, SIZE, run=run.id)
    assert got.read_bytes() == data and received == [SIZE - SIZE // 2]
    assert not (folder / f".{sha}.partial").exists()
