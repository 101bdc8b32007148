"""Console capture on real processes: a training script prints, the run log keeps it,
the agent ships it to a real server, and the logs API pages, searches and filters it.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
import trackline
from _server import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ServerProcess,
    fixture_app_client,
    fixture_database_url,
    fixture_postgres,
    fixture_server,
    log_bytes,
    post_log,
    wait_for,
)
from trackline import _console, runlog
from trackline.records import Console

SCRIPT = r"""
import os, sys, time
import trackline

run = trackline.init(project="console", id=os.environ["RUN_ID"])
print("hello from training")
for pct in (10, 20, 30):
    print(f"{pct}%", end="\r", flush=True)
print()
print("\x1b[32mepoch 1 done\x1b[0m")
print("HF_TOKEN=hf_abcdef123 MY_SECRET=s3cr3t", flush=True)
print("Authorization: Bearer tl_verysecret")
print("a warning on stderr", file=sys.stderr)
for step in range(int(os.environ.get("LINES", "5"))):
    print(f"step {step} loss {1 / (step + 1):.3f}")
    run.log({"loss": 1 / (step + 1)})
if os.environ.get("CRASH"):
    raise ValueError("boom in training")
"""


def train(tmp_path: Path, run_id: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    environ = {
        **os.environ,
        "TRACKLINE_DIR": str(tmp_path / "tl"),
        "RUN_ID": run_id,
        "TRACKLINE_MODE": "offline",
        **env,
    }
    return subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=120
    )


def test_console_is_in_the_run_log(tmp_path: Path) -> None:
    done = train(tmp_path, "local1", CRASH="1")
    assert done.returncode == 1
    # The process's own output is untouched by the tee.
    assert "hello from training" in done.stdout and "30%" in done.stdout
    assert "boom in training" in done.stderr
    run = trackline.open_run(tmp_path / "tl" / "runs" / "local1")
    lines = run.console()
    assert lines[:3] == ["hello from training", "30%", "\x1b[32mepoch 1 done\x1b[0m"]
    assert "HF_TOKEN=**** MY_SECRET=****" in lines
    assert "Authorization: ****" in lines
    assert "hf_abcdef123" not in run.output_log() and "tl_verysecret" not in run.output_log()
    assert "step 4 loss 0.200" in lines
    errors = run.console("stderr")
    assert errors[0] == "a warning on stderr"
    assert errors[1] == "Traceback (most recent call last):"
    assert errors[-1] == "ValueError: boom in training"
    assert run.state == "failed"
    # The console has a log of its own: main.tlog holds no record an older server refuses.
    main = runlog.read_records(tmp_path / "tl" / "runs" / "local1" / "main.tlog")
    assert not [r for r in main if type(r) is Console]


def test_console_off(tmp_path: Path) -> None:
    done = train(tmp_path, "quiet1", TRACKLINE_CONSOLE="off")
    assert done.returncode == 0 and "hello from training" in done.stdout
    assert not (tmp_path / "tl" / "runs" / "quiet1" / "console.tlog").exists()
    assert trackline.open_run(tmp_path / "tl" / "runs" / "quiet1").console() == []


def test_console_bound_drops_the_middle_and_says_so(tmp_path: Path) -> None:
    # 2000 characters: the head is written as it comes, the newest 1000 at the end.
    done = train(tmp_path, "loud1", LINES="500", TRACKLINE_CONSOLE_MAX_MB="0.002")
    assert done.returncode == 0
    lines = trackline.open_run(tmp_path / "tl" / "runs" / "loud1").console()
    assert lines[0] == "hello from training"
    summary = [line for line in lines if line.startswith("[trackline: ")]
    assert len(summary) == 1 and "lines / 0.0 MB of output dropped" in summary[0]
    assert lines[-1] == "step 499 loss 0.002"
    kept = sum(len(line) + 1 for line in lines if line is not summary[0])
    assert kept <= 3000
    assert "step 250 loss 0.004" not in lines


def test_console_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLINE_CONSOLE", "on")
    original = sys.stdout
    run = trackline.init(project="console", dir=tmp_path, mode="offline", console=False)
    assert sys.stdout is original
    print("not recorded")
    run.finish()
    assert trackline.open_run(run.dir).console() == []


def test_reinit_does_not_tee_twice_and_finish_restores(tmp_path: Path) -> None:
    original = sys.stdout
    first = trackline.init(project="console", dir=tmp_path, mode="offline")
    assert isinstance(sys.stdout, _console.Tee)
    print("to the first run")
    second = trackline.init(project="console", dir=tmp_path, mode="offline")  # finishes first
    tee = sys.stdout
    assert isinstance(tee, _console.Tee) and not isinstance(tee._original, _console.Tee)
    print("to the second run")
    second.finish()
    assert sys.stdout is original
    print("after both")
    assert trackline.open_run(first.dir).console() == ["to the first run"]
    assert trackline.open_run(second.dir).console() == ["to the second run"]


def test_collapse_and_mask() -> None:
    assert _console.collapse("10%\r20%\r30%") == "30%"
    assert _console.collapse("abc\r") == "abc"
    assert _console.collapse("abcdef\rXY") == "XYcdef"
    assert (
        _console.mask("export AWS_SECRET_ACCESS_KEY=abc/def") == "export AWS_SECRET_ACCESS_KEY=****"
    )
    assert _console.mask("lr=0.1 key_count=3") == "lr=0.1 key_count=3"
    assert _console.mask("authorization = Basic dXNlcg==") == "authorization = ****"


# -- shipped to a server -------------------------------------------------------------------


def _logs(client: Any, run_id: str, **params: Any) -> Any:
    return client.get(f"/runs/{run_id}/logs", params=params)


def test_console_on_the_server(server: ServerProcess, tmp_path: Path) -> None:
    done = train(
        tmp_path,
        "shipped1",
        CRASH="1",
        LINES="30",
        TRACKLINE_MODE="online",
        TRACKLINE_SERVER=server.url,
        TRACKLINE_API_KEY=ADMIN_KEY,
        TRACKLINE_UPLOAD_BACKOFF_MAX="0.5",
    )
    assert done.returncode == 1
    local = trackline.open_run(tmp_path / "tl" / "runs" / "shipped1").console()
    with server.client() as admin:

        def shipped() -> bool:
            answer = _logs(admin, "shipped1", limit=1)
            return answer.status_code == 200 and answer.json()["total"] == len(local)

        wait_for(shipped, 60, what="the console on the server")
        every = _logs(admin, "shipped1", limit=5000).json()
        assert [line["text"] for line in every["lines"]] == local
        assert [line["line"] for line in every["lines"]] == list(range(len(local)))
        assert every["more"] is False and every["next"] == len(local) - 1

        # Paging with the after cursor.
        first = _logs(admin, "shipped1", limit=10).json()
        assert first["more"] is True and first["next"] == 9
        second = _logs(admin, "shipped1", limit=10, after=first["next"]).json()
        assert [line["line"] for line in second["lines"]] == list(range(10, 20))
        tail = _logs(admin, "shipped1", after=len(local) - 1).json()
        assert tail["lines"] == [] and tail["next"] == len(local) - 1

        # Search: case-insensitive substring, past ANSI codes; LIKE characters are literal.
        found = _logs(admin, "shipped1", q="EPOCH 1").json()["lines"]
        assert [line["text"] for line in found] == ["\x1b[32mepoch 1 done\x1b[0m"]
        found = _logs(admin, "shipped1", q="0%").json()["lines"]
        assert [line["text"] for line in found] == ["30%"]
        assert len(_logs(admin, "shipped1", q="loss 0.0").json()["lines"]) == 20  # steps 10..29

        # Errors only: stderr lines and the traceback.
        errors = _logs(admin, "shipped1", level="error").json()["lines"]
        assert errors[0]["text"] == "a warning on stderr" and errors[0]["stream"] == "stderr"
        assert errors[-1]["text"] == "ValueError: boom in training"
        assert all(line["error"] for line in errors)
        assert not any("step" in line["text"] for line in errors)

        # The download, with and without colour.
        text = admin.get("/runs/shipped1/logs.txt")
        assert text.status_code == 200 and text.text == "\n".join(local) + "\n"
        assert "attachment" in text.headers["content-disposition"]
        plain = admin.get("/runs/shipped1/logs.txt", params={"ansi": "false"}).text
        assert "epoch 1 done\n" in plain and "\x1b" not in plain

        # A re-shipped log is applied once: the lines are not stored twice.
        data = (tmp_path / "tl" / "runs" / "shipped1" / "console.tlog").read_bytes()
        again = admin.post(
            "/runs/shipped1/streams/console",
            params={"offset": 0},
            content=zlib.compress(data),
            headers={"content-encoding": "deflate"},
        )
        assert again.status_code == 200, again.text
        assert _logs(admin, "shipped1", limit=1).json()["total"] == len(local)

        made = admin.post("/users", json={"name": "stranger"})
        stranger_key = made.json()["api_key"]
    with server.client(stranger_key) as stranger:
        for path in ("/runs/shipped1/logs", "/runs/shipped1/logs.txt", "/runs/nosuch/logs"):
            refused = stranger.get(path)
            assert refused.status_code == 404, path
            assert refused.json() == {"detail": f"no run {path.split('/')[2]}"}
    with server.client(None) as anonymous:
        assert anonymous.get("/runs/shipped1/logs").status_code == 401


def test_lines_join_writes_and_bound_unfinished_lines() -> None:
    pending: collections.deque[tuple[str, str]] = collections.deque()
    lines = _console.Lines(pending, 10**6)
    for piece in ("ep", "och 1", "\n", "10%\r", "20%\r", "30%"):
        pending.append(("stdout", piece))
    pending.append(("stderr", "warn\n"))
    got = lines.records()
    assert [(r.stream, r.lines) for r in got] == [("stdout", ["epoch 1"]), ("stderr", ["warn"])]
    for pct in range(100_000):  # a progress bar that redraws without ending its line
        pending.append(("stdout", f"\r{pct}%"))
    assert lines.records() == []
    assert len(lines._partial["stdout"]) < 20  # earlier states are gone already
    pending.append(("stdout", " done\n"))
    assert lines.records()[0].lines == ["99999% done"]
    pending.append(("stdout", "." * (_console.MAX_LINE + 1)))  # dots, never a newline
    assert [len(line) for line in lines.records()[0].lines] == [_console.MAX_LINE + 1]
    pending.append(("stdout", "last words"))
    assert lines.records(final=True)[0].lines == ["last words"]


def test_a_forked_child_prints_to_its_own_streams(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(
        "import os, sys, trackline\n"
        "run = trackline.init(project='console', id='fork1')\n"
        "print('parent before')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child says', type(sys.stdout).__name__, flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent after')\n"
    )
    environ = {**os.environ, "TRACKLINE_DIR": str(tmp_path / "tl"), "TRACKLINE_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "child says TextIOWrapper" in done.stdout
    lines = trackline.open_run(tmp_path / "tl" / "runs" / "fork1").console()
    assert lines == ["parent before", "parent after"]


def test_the_server_caps_the_lines_of_a_run(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trackline.server import ingest

    monkeypatch.setattr(ingest, "CONSOLE_MAX_LINES", 5)
    start = runlog.frame_record(
        trackline.records.RunStart(run_id="capped1", project="p", name="n", start_time=1.0)
    )
    assert post_log(app_client, "capped1", runlog.header_bytes() + start).status_code == 200
    data = log_bytes([Console("stdout", [f"line {i}" for i in range(3)], 2.0)])
    assert post_log(app_client, "capped1", data, stream="console").status_code == 200
    more = runlog.frame_record(Console("stdout", [f"line {i}" for i in range(3, 9)], 3.0))
    answer = post_log(app_client, "capped1", more, offset=len(data), stream="console")
    assert answer.status_code == 200
    later = runlog.frame_record(Console("stdout", ["line 9"], 4.0))
    post_log(app_client, "capped1", later, offset=len(data) + len(more), stream="console")
    page = app_client.get("/api/v1/runs/capped1/logs").json()
    texts = [line["text"] for line in page["lines"]]
    assert texts[:4] == ["line 0", "line 1", "line 2", "line 3"]
    assert len(texts) == 5 and texts[4].startswith("[trackline server: this run printed more")


def test_a_failing_console_stops_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trackline._warn import TracklineWarning, reset

    reset()
    original = sys.stdout
    run = trackline.init(project="console", dir=tmp_path, mode="offline")
    assert run._console is not None

    def broken(final: bool = False) -> list[Console]:
        raise RuntimeError("a bug in the console")

    monkeypatch.setattr(run._console.log.lines, "records", broken)
    print("printed all the same")
    run.log({"x": 1.0})
    with pytest.warns(TracklineWarning, match="stopped recording the console"):
        run.finish()
    assert sys.stdout is original
    local = trackline.open_run(run.dir)
    assert local.state == "finished" and [row["x"] for row in local.history()] == [1.0]
    assert local.console() == []
