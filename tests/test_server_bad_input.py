"""Bad input: each answered with a clear 4xx, never a 500, and nothing already stored lost.

Ends with a fuzz of every operation of the OpenAPI spec (schemathesis): any
input, authenticated or not, must not make the server fail.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    frames_bytes,
    log_bytes,
    post_log,
)
from fastapi.testclient import TestClient
from trackline import _wire_types as wt
from trackline import runlog
from trackline._client import _rows
from trackline.records import DefineMetric, FileSaved, MediaRecord, Metrics, Record, RunStart
from trackline.server.app import create_app
from trackline.server.config import ServerConfig

RUN = "stored"
#: Cases per operation and mode (TRACKLINE_FUZZ_EXAMPLES raises it for a longer hunt).
FUZZ_EXAMPLES = int(os.environ.get("TRACKLINE_FUZZ_EXAMPLES", "15"))


def stored_records() -> list[Record]:
    records: list[Record] = [RunStart(run_id=RUN, project="bad", name="n", start_time=1.0)]
    records += [Metrics(s, 1.0 + s, {"x": float(s)}) for s in range(20)]
    return records


def snapshot(client: TestClient) -> Any:
    return (
        client.get(f"/api/v1/runs/{RUN}/streams").json(),
        _rows(wt.decode(client.get(f"/api/v1/runs/{RUN}/history").content, wt.Columns)),
        client.get(f"/api/v1/runs/{RUN}").json()["summary"],
    )


@pytest.fixture
def stored(app_client: TestClient) -> Iterator[tuple[TestClient, int]]:
    """A run with data on the server; after the test, the data is all still there."""
    data = log_bytes(stored_records())
    assert post_log(app_client, RUN, data).status_code == 200
    before = snapshot(app_client)
    yield app_client, len(data)
    assert snapshot(app_client) == before


def expect(response: Any, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert text.lower() in detail.lower(), detail


def test_malformed_bodies(stored: tuple[TestClient, int]) -> None:
    client, end = stored
    url = f"/api/v1/runs/{RUN}/streams/main"
    garbage = b"\x00\xff" * 50
    expect(
        client.post(
            url, params={"offset": end}, content=garbage, headers={"content-encoding": "deflate"}
        ),
        400,
        "not valid deflate",
    )
    expect(
        client.post(url, params={"offset": end}, content=b"x", headers={"content-encoding": "br"}),
        415,
    )
    truncated = zlib.compress(frames_bytes([Metrics(99, 1.0, {"x": 1.0})]))[:-3]
    expect(
        client.post(
            url, params={"offset": end}, content=truncated, headers={"content-encoding": "deflate"}
        ),
        400,
        "truncated",
    )
    expect(client.post(url, params={"offset": end}, content=garbage), 400, "corrupt frame")
    bad = client.post(
        "/api/v1/projects/admin/bad/runs/query",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 422
    wrong = client.post("/api/v1/metrics/series", json={"runs": "x", "keys": 5})
    assert wrong.status_code == 422 and wrong.json()["errors"]
    assert (
        client.post("/api/v1/projects/admin/bad/runs/query", json={"limit": 10**9}).status_code
        == 422
    )
    assert (
        client.post(
            "/api/v1/projects/admin/bad/runs/query", json={"filters": {"state": 5}}
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/v1/projects/admin/bad/runs/query", json={"filters": {"config.a": {"in": 3}}}
        ).status_code
        == 400
    )


def test_wrong_offsets(stored: tuple[TestClient, int]) -> None:
    client, end = stored
    more = frames_bytes([Metrics(50, 1.0, {"x": 5.0})])
    gap = post_log(client, RUN, more, end + len(more))
    expect(gap, 409, "gap")
    assert gap.json()["expected"] == end
    expect(post_log(client, RUN, more, 3), 400, "inside the run log header")
    assert post_log(client, RUN, more, -1).status_code == 422
    assert (
        client.post(f"/api/v1/runs/{RUN}/streams/main", params={"offset": "abc"}).status_code == 422
    )
    assert client.post(f"/api/v1/runs/{RUN}/streams/main").status_code == 422  # no offset
    straddle = post_log(client, RUN, more, end - 10)  # a frame across the committed end
    assert straddle.status_code in (400, 409)
    assert client.post(f"/api/v1/runs/{RUN}/streams/other", params={"offset": 0}).status_code == 422
    assert client.post("/api/v1/runs/a.b/streams/main", params={"offset": 0}).status_code == 422


def test_truncated_or_corrupt_frames(stored: tuple[TestClient, int]) -> None:
    client, end = stored
    frames = frames_bytes([Metrics(60 + i, 1.0, {"x": 6.0}) for i in range(3)])
    expect(post_log(client, RUN, frames[:-5], end), 400, "truncated or corrupt")
    flipped = bytearray(frames)
    # In the last frame: nothing whole follows. (Bad bytes between frames are skipped: Resync.)
    flipped[-3] ^= 0xFF
    expect(post_log(client, RUN, bytes(flipped), end), 400, "corrupt")
    not_a_record = runlog.frame(b"\x93\xa3who\x01\x02")  # valid crc, unknown record
    expect(post_log(client, RUN, not_a_record, end), 400, "corrupt")
    huge_length = b"\xff\xff\xff\x7f" + b"\x00" * 8
    expect(post_log(client, RUN, huge_length, end), 400)
    bad_magic = b"XLOG" + log_bytes([])[4:]
    expect(post_log(client, "fresh1", bad_magic), 400, "header")
    newer = runlog.HEADER.pack(runlog.MAGIC, 99, 0)
    expect(post_log(client, "fresh2", newer), 400, "newer")
    bad_rule = frames_bytes([DefineMetric("x", "median")])
    expect(post_log(client, RUN, bad_rule, end), 422, "define_metric")
    far_step = frames_bytes([Metrics(2**63 - 1, 1.0, {"x": 1.0})])
    expect(post_log(client, RUN, far_step, end), 422, "steps")
    bad_project = log_bytes([RunStart(run_id="fresh3", project="a/b/c", name="n", start_time=1.0)])
    expect(post_log(client, "fresh3", bad_project), 422, "project")
    nobody = log_bytes([RunStart(run_id="fresh4", project="nobody/p", name="n", start_time=1.0)])
    expect(post_log(client, "fresh4", nobody), 404, "nobody")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    config = ServerConfig.build(
        tmp_path / "srv", admin_key=ADMIN_KEY, max_body=4096, max_decompressed=65536, max_blob=1000
    )
    app = create_app(config, announce=False)
    with TestClient(app, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield client
    app.state.ctx.db.dispose()


def test_bodies_over_the_size_limit(limited: TestClient) -> None:
    records = [RunStart(run_id="lim", project="p", name="n", start_time=1.0)]
    assert post_log(limited, "lim", log_bytes(records)).status_code == 200
    offset = len(log_bytes(records))
    big = frames_bytes([Metrics(s, 1.0, {"x": float(s) * 1.234567}) for s in range(400)])
    raw = limited.post("/api/v1/runs/lim/streams/main", params={"offset": offset}, content=big)
    expect(raw, 413, "limit")
    bomb = gzip.compress(b"\x00" * 1_000_000)
    expect(
        limited.post(
            "/api/v1/runs/lim/streams/main",
            params={"offset": offset},
            content=bomb,
            headers={"content-encoding": "gzip"},
        ),
        413,
        "decompressed",
    )

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"\x00" * 1000

    expect(
        limited.post("/api/v1/runs/lim/streams/main", params={"offset": offset}, content=chunked()),
        413,
    )
    content = b"y" * 2000
    sha = hashlib.sha256(content).hexdigest()
    expect(limited.put(f"/api/v1/blobs/{sha}", content=content), 413)
    assert limited.get("/api/v1/runs/lim/streams").json()["offsets"]["main"] == offset


def test_missing_or_wrong_keys(stored: tuple[TestClient, int]) -> None:
    client, end = stored
    more = frames_bytes([Metrics(70, 1.0, {"x": 7.0})])
    for headers in (
        {"authorization": ""},
        {"authorization": "Bearer tl_nope"},
        {"authorization": "Basic abc"},
    ):
        response = post_log(client, RUN, more, end, headers=headers)
        assert response.status_code == 401, response.text
        assert client.get(f"/api/v1/runs/{RUN}", headers=headers).status_code == 401
    assert (
        client.get(
            f"/api/v1/runs/{RUN}", headers={"x-api-key": ADMIN_KEY, "authorization": ""}
        ).status_code
        == 200
    )
    assert (
        client.post(f"/api/v1/runs/{RUN}/heartbeat", headers={"authorization": ""}).status_code
        == 401
    )
    other = client.post("/api/v1/users", json={"name": "other"}).json()["api_key"]
    denied = {"authorization": f"Bearer {other}"}
    # A private run or project is to another user what a missing one is: 404.
    assert client.get(f"/api/v1/runs/{RUN}", headers=denied).status_code == 404
    assert client.get(f"/api/v1/runs/{RUN}/history", headers=denied).status_code == 404
    assert client.get("/api/v1/projects/admin/bad/runs", headers=denied).status_code == 404
    assert (
        client.post(
            "/api/v1/metrics/series", json={"runs": [RUN], "keys": ["x"]}, headers=denied
        ).status_code
        == 404
    )
    assert post_log(client, RUN, more, end, headers=denied).status_code == 404
    assert client.get(f"/api/v1/runs/{RUN}/streams", headers=denied).status_code == 404


def test_path_like_file_names(stored: tuple[TestClient, int]) -> None:
    client, end = stored
    sha = hashlib.sha256(b"x").hexdigest()
    for name in ("../../etc/passwd", "/etc/passwd", "a/../../b", "..", "c:\\x", "a\x00b"):
        record = FileSaved(name, "now", 1, sha, 1.0)
        expect(post_log(client, RUN, frames_bytes([record]), end), 422, "unsafe")
    media = MediaRecord(1, 1.0, "img", "image", [{"path": "../../etc/passwd", "sha256": sha}])
    expect(post_log(client, RUN, frames_bytes([media]), end), 422, "unsafe")
    no_hash = MediaRecord(1, 1.0, "img", "image", [{"path": "media/a.png"}])
    expect(post_log(client, RUN, frames_bytes([no_hash]), end), 422, "sha256")
    expect(client.get(f"/api/v1/runs/{RUN}/files/%2e%2e/%2e%2e/etc/passwd"), 400, "unsafe")
    expect(client.get(f"/api/v1/runs/{RUN}/files/..%2F..%2Fetc%2Fpasswd"), 400, "unsafe")
    expect(client.get(f"/api/v1/runs/{RUN}/files/etc/passwd"), 404)
    link = client.post(f"/api/v1/runs/{RUN}/files", json={"path": "../x", "sha256": sha})
    expect(link, 400, "unsafe")
    assert 400 <= client.put("/api/v1/blobs/../../etc/passwd", content=b"x").status_code < 500
    assert client.put("/api/v1/blobs/ABC", content=b"x").status_code == 422


def test_unknown_things_are_404(stored: tuple[TestClient, int]) -> None:
    client, _ = stored
    expect(client.get("/api/v1/runs/nosuchrun"), 404, "no run")
    expect(client.get("/api/v1/projects/admin/nosuch/runs"), 404, "no project")
    expect(client.post("/api/v1/runs/nosuchrun/heartbeat"), 404)
    assert client.get("/api/v1/nothing/here").status_code == 404


# -- fuzzing the whole API from its OpenAPI spec ------------------------------------------


def _fuzz(operation: Any, mode: Any, counter: list[int]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        for headers in ({"authorization": f"Bearer {ADMIN_KEY}"}, {"authorization": ""}):
            response = case.call(headers=headers)
            counter[0] += 1
            assert response.status_code < 500, (
                f"{operation.label}: {case.as_curl_command()} -> "
                f"{response.status_code} {response.text[:300]}"
            )

    with contextlib.suppress(Unsatisfiable):  # no invalid form of an operation without inputs
        check()


def test_fuzz_every_operation(tmp_path: Path) -> None:
    """Generated requests for every operation, valid and invalid, with and without a key:
    never a 5xx. (schemathesis makes the cases from the spec; hypothesis drives them.)"""
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode

    config = ServerConfig.build(tmp_path / "fuzz", admin_key=ADMIN_KEY)
    app = create_app(config, announce=False)
    with TestClient(app, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        assert post_log(client, RUN, log_bytes(stored_records())).status_code == 200
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    # Revoking keys may revoke the admin's own: fuzzed last, so the others run with a key.
    operations.sort(key=lambda op: op.method.upper() == "DELETE" and op.path.startswith("/keys"))
    counter = [0]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, counter)
    assert counter[0] > 500
    app.state.ctx.db.dispose()
    # A restart with TRACKLINE_ADMIN_KEY set brings that key back if the fuzz revoked it.
    restarted = create_app(config, announce=False)
    with TestClient(restarted, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as client:
        rows = _rows(wt.decode(client.get(f"/api/v1/runs/{RUN}/history").content, wt.Columns))
        assert [r["x"] for r in rows[:20]] == [float(s) for s in range(20)]
    restarted.state.ctx.db.dispose()


def test_the_bomb_pre_check_inflates_whole_only_what_starts_like_a_bomb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bodies.check_inflated_size``: a body that starts at a bomb's ratio is inflated whole
    and refused (413) before decoding; one that starts like a run log is not inflated twice,
    and if it turns into a bomb later, decoding's own inflate refuses it past the limit."""
    import io
    import os
    import zlib

    from trackline.server import bodies
    from trackline.server.deps import ApiError

    limit = 8 << 20
    passes: list[int] = []
    real = bodies.inflate

    def counted(*args: Any) -> Any:
        passes.append(1)
        return real(*args)

    monkeypatch.setattr(bodies, "inflate", counted)
    zeros = zlib.compress(bytes(64 << 20), 9)
    with pytest.raises(ApiError) as refused:
        bodies.check_inflated_size(io.BytesIO(zeros), "deflate", limit)
    assert refused.value.status == 413 and passes == [1]

    passes.clear()
    logish = os.urandom(1 << 20).hex().encode()  # ~2x, as run logs deflate 2-10x
    packer = zlib.compressobj(1)
    sneaky = packer.compress(logish) + packer.compress(bytes(64 << 20)) + packer.flush()
    body = io.BytesIO(sneaky)
    bodies.check_inflated_size(body, "deflate", limit)  # starts like a log: no whole pass
    assert passes == [] and body.tell() == 0
    with pytest.raises(ApiError) as late:
        for _ in real(bodies.read_pieces(body), "deflate", limit):
            pass
    assert late.value.status == 413
