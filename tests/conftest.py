"""Shared fixtures: every test gets its own trackline directory and a clean slate."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trackline
from _procs import Leftovers
from trackline import _api, _warn


@pytest.fixture(autouse=True)
def trackline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TRACKLINE_DIR under tmp_path, no server, fast system sampling."""
    for name in (
        "TRACKLINE_SERVER",
        "TRACKLINE_API_KEY",
        "TRACKLINE_MODE",
        "TRACKLINE_PROJECT",
        "TRACKLINE_RUN_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TRACKLINE_DIR", str(tmp_path / "tl"))
    monkeypatch.setenv("TRACKLINE_SYSTEM_INTERVAL", "0.5")
    # Agents of runs whose test server is gone stop retrying soon after the test.
    monkeypatch.setenv("TRACKLINE_UPLOAD_GIVE_UP", "60")
    _warn.reset()
    yield tmp_path / "tl"
    trackline.finish()
    _api._current = None


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    """Processes (or bare pids) to kill at teardown, should a test fail before they end."""
    procs: Leftovers = []
    yield procs
    for proc in procs:
        if isinstance(proc, int):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc, signal.SIGKILL)
            continue
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed browser test leaves a screenshot of its page in ``test-artifacts/``."""
    report = yield
    page = getattr(item, "funcargs", {}).get("page")
    if report.failed and call.when == "call" and hasattr(page, "shot"):
        with contextlib.suppress(Exception):
            page.shot(f"FAILED-{item.name}")
    return report
