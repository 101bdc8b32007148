"""The run page's Logs tab in a real browser, on a real server fed by the real SDK.

Lines show with their ANSI colours as styled spans, search finds and highlights a line,
"jump to first error" scrolls to the traceback, the download is the text, and a live
run's new line appears without a reload.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _procs import AGENT_GONE
from _server import ServerProcess, wait_for
from test_dashboard import CHROMIUM, TIMEOUT_MS, Page, sdk_env
from test_dashboard import browser as browser  # the module's own chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

PRINTER = textwrap.dedent(
    """
    import sys, time
    import psutil, trackline

    run = trackline.init(project="logs", name="printer")
    for i in range(3000):
        if i % 100 == 0:
            print(f"\\x1b[1;32mepoch {i // 100}\\x1b[0m done")
        elif i == 1550:
            print("the needle-in-the-log is here")
        elif i == 2550:
            print("Traceback (most recent call last):", file=sys.stderr)
            print("RuntimeError: something broke", file=sys.stderr)
        else:
            print(f"step {i} loss {1 / i:.5f}")
    run.finish()
    <agent gone>
    print("RUN", run.id, file=sys.__stderr__)
    """
).replace("<agent gone>\n", AGENT_GONE)

LIVE = textwrap.dedent(
    """
    import os, sys, time
    import trackline

    say, stop = sys.argv[1], sys.argv[2]
    run = trackline.init(project="logs", name="live-printer")
    print("started", flush=True)
    while not os.path.exists(say):
        time.sleep(0.05)
    print("a-fresh-line-from-the-live-run", flush=True)
    while not os.path.exists(stop):
        time.sleep(0.05)
    run.finish()
    """
)


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("dashboard-logs")
    server = ServerProcess(root / "server").start()
    try:
        (root / "printer.py").write_text(PRINTER)
        done = subprocess.run(
            [sys.executable, str(root / "printer.py")],
            cwd=root,
            env=sdk_env(server, root),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        run_id = done.stderr.split("RUN ")[-1].strip()
        yield server, run_id
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, printed: tuple[ServerProcess, str]) -> Iterator[Page]:
    p = Page(browser, printed[0].url)
    yield p
    p.close()
    p.check_clean()


def open_logs(page: Page, run_id: str) -> Any:
    p = page.goto(f"/p/admin/logs/r/{run_id}")
    p.get_by_role("tab", name="Logs").click()
    return p


def test_logs_tab_colours_search_error_and_download(
    page: Page, printed: tuple[ServerProcess, str]
) -> None:
    from playwright.sync_api import expect

    _, run_id = printed
    p = open_logs(page, run_id)
    expect(p.locator(".log-status")).to_have_text("3,001 lines")
    first = p.locator('.log-line[data-line="0"]')
    expect(first.locator(".log-no")).to_have_text("1")
    green = first.locator(".ansi.ansi-fg-2.ansi-bold")
    expect(green).to_have_text("epoch 0")
    assert green.evaluate("el => getComputedStyle(el).color") == "rgb(152, 195, 121)"
    # Virtualised: lines far below are not in the DOM.
    assert p.locator(".log-line").count() < 200

    p.locator(".log-search").fill("NEEDLE-in")
    current = p.locator(".log-line.log-current")
    expect(current).to_contain_text("the needle-in-the-log is here")
    expect(current).to_be_in_viewport()
    expect(current.locator("mark.log-hit")).to_have_text("needle-in")
    expect(p.locator(".log-count")).to_have_text("1 / 1")
    p.locator(".log-search").fill("epoch 2")
    expect(p.locator(".log-count")).to_have_text("1 / 11")  # epoch 2, 20..29
    p.locator(".log-next").click()
    expect(p.locator(".log-count")).to_have_text("2 / 11")
    expect(current).to_contain_text("epoch 20 done")

    p.locator(".log-jump-error").click()
    target = p.locator(".log-line.log-error-target")
    expect(target).to_contain_text("Traceback (most recent call last):")
    expect(target).to_be_in_viewport()
    expect(target).to_have_class("log-line log-stderr log-error-target")

    with p.expect_download() as info:
        p.locator(".log-download").click()
    text = Path(info.value.path()).read_text()
    assert text.startswith("epoch 0 done\nstep 1 loss 1.00000\n") and "\x1b" not in text
    page.shot("logs")


def test_live_run_new_line_appears(
    page: Page, printed: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server, _ = printed
    say, stop = tmp_path / "say", tmp_path / "stop"
    (tmp_path / "live.py").write_text(LIVE)
    with open(tmp_path / "live.log", "wb") as output:
        child = subprocess.Popen(
            [sys.executable, str(tmp_path / "live.py"), str(say), str(stop)],
            cwd=tmp_path,
            env=sdk_env(server, tmp_path),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with server.client() as client:

            def started() -> bool:
                runs = client.get("/projects/admin/logs/runs", params={"search": "live"}).json()
                if not runs["runs"]:
                    return False
                live_id = runs["runs"][0]["id"]
                return bool(client.get(f"/runs/{live_id}/logs").json()["total"])

            wait_for(started, timeout=60, what="the live run's first line on the server")
            live_id = client.get("/projects/admin/logs/runs", params={"search": "live"}).json()[
                "runs"
            ][0]["id"]
        p = open_logs(page, live_id)
        expect(p.locator(".log-line", has_text="started")).to_be_visible()
        expect(p.locator(".log-status")).to_have_text("1 line · live")
        say.touch()
        fresh = p.locator(".log-line", has_text="a-fresh-line-from-the-live-run")
        expect(fresh).to_be_visible(timeout=TIMEOUT_MS)
        expect(fresh.locator(".log-no")).to_have_text("2")
        stop.touch()
        assert child.wait(60) == 0, (tmp_path / "live.log").read_text()
    finally:
        say.touch()
        stop.touch()
        if child.poll() is None:
            child.kill()
            child.wait(30)
