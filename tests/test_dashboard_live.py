"""Live charts in a real browser: a `log` of a running run shows without a reload.

A real training process logs online to a real server; the workspace and the run page
follow the server's change feeds (server/routes_live.py), so the new point is drawn
within a second or two of the `log` call (the agent ships every second). The measured
latency is printed; the bound asserted is a deadline, not a benchmark.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ServerProcess, wait_for
from test_dashboard import CHROMIUM, Page, sdk_env
from test_dashboard import browser as browser  # the module's own chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

# Logs step N when the file say-N appears, and writes when its log() returned.
TRAINER = textwrap.dedent(
    """
    import os, sys, time
    import trackline

    here = sys.argv[1]
    run = trackline.init(project="live", name="follower")
    run.log({"train/loss": 1.0}, step=0)
    step = 1
    while not os.path.exists(os.path.join(here, "stop")):
        if os.path.exists(os.path.join(here, f"say-{step}")):
            run.log({"train/loss": 1.0 / (step + 1)}, step=step)
            with open(os.path.join(here, f"said-{step}"), "w") as f:
                f.write(repr(time.time()))
            step += 1
        time.sleep(0.01)
    run.finish()
    """
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, str]]:
    root = tmp_path_factory.mktemp("dashboard-live")
    server = ServerProcess(root / "server").start()
    (root / "trainer.py").write_text(TRAINER)
    trainer = subprocess.Popen(
        [sys.executable, str(root / "trainer.py"), str(root)],
        cwd=root,
        env=sdk_env(server, root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with server.client() as admin:

            def started() -> str | None:
                answer = admin.post("/projects/admin/live/runs/query", json={})
                found = answer.json().get("runs", []) if answer.status_code == 200 else []
                return found[0]["id"] if found and found[0]["last_step"] >= 0 else None

            wait_for(started, timeout=60, what="the live run on the server")
            yield server, root, str(started())
    finally:
        (root / "stop").write_text("")
        try:
            trainer.wait(60)
        finally:
            if trainer.poll() is None:
                trainer.kill()
            server.stop()


@pytest.fixture
def page(browser: Any, live: tuple[ServerProcess, Path, str]) -> Iterator[Page]:
    p = Page(browser, live[0].url)
    yield p
    p.close()
    p.check_clean()


def last_x(p: Any, selector: str) -> float:
    """The largest step the chart at ``selector`` draws (-1 before it has data)."""
    value = p.evaluate(
        """(selector) => {
            const host = document.querySelector(selector);
            const u = host && host.chart && host.chart.plot;
            if (!u || !u.data || !u.data[0] || !u.data[0].length) return -1;
            const xs = u.data[0];
            return xs[xs.length - 1];
        }""",
        selector,
    )
    return float(value)


def log_and_time(p: Any, root: Path, step: int, selector: str) -> float:
    """Seconds from the trainer's ``log`` of ``step`` returning to the chart drawing it."""
    (root / f"say-{step}").write_text("")
    wait_for(lambda: (root / f"said-{step}").exists(), timeout=30, what=f"step {step} logged")
    said = float((root / f"said-{step}").read_text())
    wait_for(
        lambda: last_x(p, selector) >= step,
        timeout=15,
        interval=0.05,
        what=f"step {step} drawn without a reload",
    )
    return time.time() - said


def test_workspace_and_run_page_draw_a_new_point_without_reloading(
    page: Page, live: tuple[ServerProcess, Path, str]
) -> None:
    _, root, run_id = live
    chart = '.panel[data-key="train/loss"] .panel-chart'
    p = page.goto("/p/admin/live")
    wait_for(lambda: last_x(p, chart) >= 0, timeout=30, what="the first chart")
    p.evaluate("window.__notReloaded = true")
    step = int(last_x(p, chart)) + 1
    latencies = [log_and_time(p, root, step + i, chart) for i in range(3)]
    assert p.evaluate("window.__notReloaded") is True
    page.shot("live-workspace")

    p = page.goto(f"/p/admin/live/r/{run_id}")
    p.get_by_role("tab", name="Charts").click()
    wait_for(lambda: last_x(p, chart) >= step + 2, timeout=30, what="the run page's chart")
    p.evaluate("window.__notReloaded = true")
    latencies.append(log_and_time(p, root, step + 3, chart))
    assert p.evaluate("window.__notReloaded") is True
    # Printed for the record (run with -s); the target (<= 2 s) is bench/'s to hold.
    print(f"\nlog -> drawn: {', '.join(f'{s:.2f}s' for s in latencies)}", file=sys.__stderr__)
