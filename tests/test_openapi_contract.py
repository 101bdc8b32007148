"""The OpenAPI document is the contract: schemathesis finds no server error and no failure.

A real server, a user that owns a project with a run (made by the admin key, used only
for setup), and the user's own key for every request schemathesis sends. All checks,
all phases, stateful included: the links in the document (``server/openapi.py``) let
it create keys and revoke them, read the runs it finds, and so on. The user's key cannot
revoke itself (409), so the run never locks itself out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from _server import ServerProcess, fixture_server  # noqa: F401 - the `server` fixture

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis.toml"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is not installed"),
]


def _user_with_a_run(server: ServerProcess) -> str:
    """A non-admin user owning a project with one run; its key."""
    from trackline import records, runlog

    with server.client() as admin:
        made = admin.post("/users", json={"name": "fuzz"})
        assert made.status_code == 201, made.text
        key = str(made.json()["api_key"])
    run = records.RunStart(run_id="fuzzrun1", project="contract", name="fuzz", start_time=1.0)
    body = runlog.header_bytes() + runlog.frame_record(run)
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
    report = tmp_path / "report.ndjson"
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
        "--max-examples",
        "30",
        "--seed",
        "1",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--request-timeout",
        "20",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = done.stdout + done.stderr
    print(output[-4000:])
    Path("/tmp/openapi-st.txt").write_text(output)
    assert "Server error" not in output, output[-20000:]
    assert done.returncode == 0, output[-20000:]
    events = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    assert events
