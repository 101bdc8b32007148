"""The README's main job (examples/quickstart.py) runs twice in a row from one directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_main_job_runs_twice_and_its_run_directory_never_shadows_the_package(
    tmp_path: Path,
) -> None:
    """The first run leaves its run directory where it ran; the second must still start
    ``python -m trackline server`` from there (a ``./trackline`` directory shadowed an
    editable install)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env["HOME"] = str(tmp_path / "home")  # the admin key and server data of the main job
    quickstart = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--no-serve"]
    for attempt in (1, 2):
        done = subprocess.run(
            [*quickstart, "--steps", "40", "--port", str(free_port())],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (attempt, done.stdout[-2000:], done.stderr[-4000:])
        assert "Dashboard: http://127.0.0.1:" in done.stdout
    assert not (tmp_path / "trackline").exists()
    assert len(list((tmp_path / ".trackline" / "runs").iterdir())) == 2


def test_a_taken_port_names_the_flag_to_pick_another(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env["HOME"] = str(tmp_path / "home")
    with socket.socket() as taken:  # something that is not a trackline server holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--port", port],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert f"did not start on port {port}" in done.stderr
    assert "--port" in done.stderr


def test_the_server_on_a_taken_port_names_the_flag_and_announces_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "trackline",
                "server",
                "--port",
                port,
                "--data-dir",
                str(tmp_path / "server"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert "--port" in done.stderr and port in done.stderr
    assert "trackline server on" not in done.stdout
