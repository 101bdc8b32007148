"""The OpenAPI document is the contract: schemathesis finds no server error and no failure.

A real server, a user that owns a project with a run (made by the admin key, used only
for setup), and the user's own key for every request schemathesis sends. All checks,
all phases, stateful included: the links in the document (``server/openapi.py``) let
it create keys and revoke them, read the runs it finds, and so on. The user's key cannot
revoke itself (409), so the run never locks itself out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _server import (  # noqa: F401 - fixtures
    ServerProcess,
    fixture_server,
    fixture_shared_server,
)

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis.toml"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is not installed"),
]


def _user_with_a_run(server: ServerProcess) -> str:
    """A non-admin user owning a project with one run that logged metrics; its key."""
    from trackline import records, runlog

    with server.client() as admin:
        made = admin.post("/users", json={"name": "fuzz"})
        assert made.status_code == 201, made.text
        key = str(made.json()["api_key"])
    logged = [
        records.RunStart(run_id="fuzzrun1", project="contract", name="fuzz", start_time=1.0),
        *(
            records.Metrics(step, 1.0 + step, {"loss": 1 / (step + 1), "note": "x"})
            for step in range(20)
        ),
        records.Metrics(20, 21.0, {"loss": float("nan")}),
    ]
    body = runlog.header_bytes() + b"".join(runlog.frame_record(r) for r in logged)
    with server.client(key) as user:
        sent = user.post(
            "/runs/fuzzrun1/streams/main",
            params={"offset": 0},
            content=zlib.compress(bytes(body)),
            headers={"content-encoding": "deflate"},
        )
        assert sent.status_code == 200, sent.text
    return key


def test_schemathesis_finds_nothing(server: ServerProcess, tmp_path: Path) -> None:
    key = _user_with_a_run(server)
    argv = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "-H",
        f"Authorization: Bearer {key}",
        "--seed",
        os.environ.get("TRACKLINE_SCHEMATHESIS_SEED", "1"),  # another seed explores further
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "20",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    cases = re.search(r"Test cases:\s*\n\s*(\d+) generated", output)
    print(f"schemathesis: {cases[1] if cases else '?'} cases, exit status {done.returncode}")
    assert "Server error" not in output, output[-20000:]
    assert done.returncode == 0, output[-20000:]
    assert cases is not None and int(cases[1]) > 1000, output[-5000:]
    assert re.search(r"Stateful \(in", output), output[-5000:]


# -- what schemathesis found, one test each --------------------------------------------


@pytest.fixture(scope="module", name="api")
def fixture_api(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with shared_server.client() as client:
        yield client


def test_every_answer_has_a_schema(api: httpx.Client) -> None:
    """Each operation documents its JSON success body and the shared errors."""
    doc = api.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert {"401", "403", "404", "422", "503"} <= set(answers), (method, path)
            ok = next(status for status in answers if status.startswith("2"))
            content = answers[ok].get("content", {})
            if "application/json" in content:
                ref = content["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in schemas, (method, path)
            else:
                assert method == "head" or content, (method, path)
    error = answers["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorBody")
    ingest = doc["paths"]["/api/v1/runs/{run_id}/streams/{stream}"]["post"]["responses"]
    assert {"409", "413", "507"} <= set(ingest)


def test_405_names_the_allowed_methods(api: httpx.Client) -> None:
    refused = api.post("/health")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"
    assert refused.json() == {"detail": "Method Not Allowed"}
    blob = api.request("TRACE", "/blobs/" + "0" * 64)
    assert blob.status_code == 405 and blob.headers["allow"] == "GET, HEAD, PUT"
    unknown = api.get("/no-such-thing")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}


def test_created_key_has_its_id_and_cannot_revoke_itself(shared_server: ServerProcess) -> None:
    with shared_server.client() as admin:
        first = admin.post("/users", json={"name": "selfish"}).json()["api_key"]
    with shared_server.client(first) as user:
        made = user.post("/keys")
        assert made.status_code == 201
        second = made.json()
        assert second["id"] in [k["id"] for k in user.get("/keys").json()["keys"]]
    with shared_server.client(second["api_key"]) as newer:
        itself = newer.delete(f"/keys/{second['id']}")
        assert itself.status_code == 409 and "itself" in itself.json()["detail"]
        assert newer.get("/viewer").status_code == 200
    with shared_server.client(first) as user:
        assert user.delete(f"/keys/{second['id']}").json() == {"revoked": second["id"]}


def test_huge_key_id_is_refused_not_an_overflow(api: httpx.Client) -> None:
    assert api.delete(f"/keys/{2**31}").status_code == 422
    assert api.delete(f"/keys/{10**30}").status_code == 422
    assert api.delete(f"/keys/{2**31 - 1}").status_code == 404


def test_invalid_requests_are_422(api: httpx.Client) -> None:
    base = {"runs": [], "keys": ["loss"]}
    for bad in ([5, 1], [None, False], ["1", 2]):
        answer = api.post("/metrics/series", json={**base, "range": bad})
        assert answer.status_code == 422, (bad, answer.text)
    assert api.post("/metrics/series", json={**base, "range": [1, 5]}).status_code == 200
    empty = api.post("/runs/nobody1/streams/main", params={"offset": 0}, content=b"")
    assert empty.status_code == 422


def test_real_answers_decode_as_their_types(shared_server: ServerProcess) -> None:
    """A run with every kind of record: each answer decodes as the type its schema names."""
    import hashlib

    import msgspec
    from trackline import _wire_types as wt
    from trackline import records, runlog
    from trackline.artifacts import manifest_digest

    content = b"weights"
    sha = hashlib.sha256(content).hexdigest()
    files = [records.ArtifactFile("model.bin", sha, len(content))]
    logged = [
        records.RunStart(
            run_id="typed1", project="typed", name="t", start_time=1.0, tags=["a"], config={"lr": 1}
        ),
        records.Metrics(0, 2.0, {"loss": 0.5, "text": "hi"}),
        records.Metrics(1, 3.0, {"loss": float("inf")}),
        records.Histogram(1, 3.0, "w", [0.0, 0.5, 1.0], [2.0, 3.0]),
        records.MediaRecord(1, 3.0, "img", "image", [{"path": "media/a.png", "sha256": sha}]),
        records.FileSaved("notes.txt", "now", len(content), sha, 3.0),
        records.SystemSample(3.0, {"cpu": 10.0}),
        records.ArtifactLogged(
            "model", "model", manifest_digest(files, {}), files, aliases=["best"], time=3.0
        ),
        records.SummaryUpdate({"best": float("nan")}),
        records.Finish(4.0, "finished", 0),
    ]
    frames = b"".join(runlog.frame_record(r) for r in logged)
    with shared_server.client() as admin:
        assert admin.put(f"/blobs/{sha}", content=content).status_code == 200
        sent = admin.post(
            "/runs/typed1/streams/main",
            params={"offset": 0},
            content=zlib.compress(bytes(runlog.header_bytes() + frames)),
            headers={"content-encoding": "deflate"},
        )
        assert sent.status_code == 200, sent.text
        console = records.Console("stdout", ["\x1b[32mok\x1b[0m", "Error: x"], 3.5)
        sent = admin.post(
            "/runs/typed1/streams/console",
            params={"offset": 0},
            content=zlib.compress(bytes(runlog.header_bytes() + runlog.frame_record(console))),
            headers={"content-encoding": "deflate"},
        )
        assert sent.status_code == 200, sent.text
        answers: list[tuple[str, str, type, dict[str, object]]] = [
            ("GET", "/health", wt.Health, {}),
            ("GET", "/viewer", wt.Viewer, {}),
            ("GET", "/keys", wt.KeyList, {}),
            ("GET", "/projects", wt.ProjectList, {}),
            ("GET", "/projects/admin/typed", wt.Project, {}),
            ("GET", "/projects/admin/typed/runs", wt.RunPage, {"params": {"group_by": "state"}}),
            ("POST", "/projects/admin/typed/runs/query", wt.RunPage, {"json": {}}),
            ("GET", "/runs/typed1", wt.Run, {}),
            ("PATCH", "/runs/typed1", wt.Run, {"json": {"notes": "n"}}),
            ("GET", "/runs/typed1/history", wt.Columns, {}),
            ("GET", "/runs/typed1/system", wt.Columns, {}),
            ("GET", "/runs/typed1/histograms", wt.Histograms, {}),
            ("GET", "/runs/typed1/media", wt.MediaList, {}),
            ("GET", "/runs/typed1/files", wt.RunFiles, {}),
            ("GET", "/runs/typed1/streams", wt.Offsets, {}),
            ("GET", "/runs/typed1/artifacts", wt.RunArtifacts, {}),
            ("GET", "/runs/typed1/logs", wt.LogPage, {"params": {"q": "OK", "level": "all"}}),
            ("POST", "/runs/typed1/heartbeat", wt.Heartbeat, {}),
            ("POST", "/metrics/keys", wt.MetricKeys, {"json": {"runs": ["typed1"]}}),
            (
                "POST",
                "/metrics/series",
                wt.SeriesList,
                {"json": {"runs": ["typed1"], "keys": ["loss"]}},
            ),
            ("GET", "/projects/admin/typed/artifacts", wt.ArtifactList, {}),
            ("GET", "/projects/admin/typed/artifacts/model", wt.Artifact, {}),
            ("GET", "/projects/admin/typed/artifacts/model/best", wt.ArtifactVersion, {}),
            ("GET", "/projects/admin/typed/artifacts/model/best/lineage", wt.Lineage, {}),
            ("PATCH", "/projects/admin/typed", wt.Visibility, {"json": {"public": True}}),
            ("POST", "/teams", wt.CreatedTeam, {"json": {"name": "typed-team"}}),
            (
                "POST",
                "/teams/typed-team/members",
                wt.Membership,
                {"json": {"user": "admin", "role": "admin"}},
            ),
            ("POST", "/users", wt.CreatedUser, {"json": {"name": "typed-user"}}),
            ("POST", "/teams/typed-team/members", wt.Membership, {"json": {"user": "typed-user"}}),
            ("GET", "/teams", wt.TeamList, {}),
            ("GET", "/teams/typed-team", wt.Team, {}),
            ("DELETE", "/teams/typed-team/members/typed-user", wt.MemberRemoved, {}),
            ("GET", "/users", wt.UserList, {}),
            ("POST", "/users/typed-user/deactivate", wt.Activation, {}),
            ("POST", "/users/typed-user/reactivate", wt.Activation, {}),
            ("POST", "/projects/admin/typed/transfer", wt.Project, {"json": {"to": "typed-team"}}),
            (
                "DELETE",
                "/projects/typed-team/typed",
                wt.ProjectDeleted,
                {"params": {"confirm": "typed-team/typed"}},
            ),
        ]
        for method, path, kind, request in answers:
            answer = admin.request(method, path, **request)  # type: ignore[arg-type]
            assert answer.status_code in (200, 201), (path, answer.text)
            msgspec.json.decode(answer.content, type=kind)
        error = admin.get("/runs/nothing1")
        assert msgspec.json.decode(error.content, type=wt.ErrorBody).detail
        invalid = admin.get("/runs/typed1/history", params={"samples": 0})
        assert msgspec.json.decode(invalid.content, type=wt.ErrorBody).errors
