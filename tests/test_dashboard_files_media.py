"""HTML pages, 3D objects and molecules in a real browser: offered as downloads of exactly
what was logged, never rendered in the dashboard's page."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _procs import AGENT_GONE
from _server import ServerProcess
from test_dashboard import CHROMIUM, Page, sdk_env
from test_dashboard import browser as browser  # the module's own chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

PAGE = "<h1 id='injected'>report</h1><script>window.__pwned = 1</script>"
SCRIPT = textwrap.dedent(
    f"""
    import time, numpy as np, psutil, trackline
    run = trackline.init(project="files")
    run.log({{"report": trackline.Html({PAGE!r}), "cloud": trackline.Object3D(np.ones((4, 3)))}})
    run.finish()
    <agent gone>
    print(run.id)
    """
).replace("<agent gone>\n", AGENT_GONE)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    work = tmp_path_factory.mktemp("files-media")
    server = ServerProcess(work / "server").start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=work,
            env=sdk_env(server, work),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        yield server, done.stdout.strip().splitlines()[-1]
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, logged: tuple[ServerProcess, str]) -> Iterator[Page]:
    p = Page(browser, logged[0].url)
    yield p
    p.close()
    p.check_clean()


def test_html_and_3d_objects_are_downloads(page: Page, logged: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import expect

    _, run_id = logged
    p = page.goto(f"/p/admin/files/r/{run_id}")
    p.get_by_role("tab", name="Media").click()
    report = p.locator('.media-panel[data-key="report"]')
    expect(report.locator(".panel-status")).to_have_text("HTML page · 1 step")
    with p.expect_download() as download:
        report.get_by_role("button").click()
    assert Path(download.value.path()).read_text() == PAGE
    assert p.locator("#injected").count() == 0 and p.evaluate("window.__pwned") is None
    cloud = p.locator('.media-panel[data-key="cloud"]')
    expect(cloud.locator(".panel-status")).to_have_text("3D object · 1 step")
    with p.expect_download() as download:
        cloud.get_by_role("button").click()
    assert download.value.suggested_filename.endswith(".pts.json")
    page.shot("media-downloads")
