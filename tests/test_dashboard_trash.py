"""The trash in a real browser: delete a selection from the run table and a run from its
page (confirmed in the page), find them in the trash, restore one, delete one for good."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _server import ADMIN_KEY, ServerProcess, log_bytes, post_log
from test_dashboard import CHROMIUM, Page
from test_dashboard import browser as browser  # the module's own chromium
from trackline.records import Metrics, RunStart

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture
def server(tmp_path: Any) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "server").start()
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=proc.url, headers=headers) as client:
        for name in ("alpha", "beta", "gamma"):
            start = RunStart(run_id=name, project="bin", name=name, start_time=time.time())
            rows = [Metrics(s, time.time(), {"loss": 1 / (s + 1)}) for s in range(20)]
            post_log(client, name, log_bytes([start, *rows])).raise_for_status()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, server.url)
    yield p
    p.close()
    p.check_clean()


def test_delete_restore_and_purge_in_the_browser(page: Page, server: ServerProcess) -> None:
    from playwright.sync_api import expect

    p = page.goto("/p/admin/bin")
    expect(p.locator(".count-line")).to_have_text("3 runs")
    p.get_by_label("Select alpha").check()
    p.get_by_label("Select beta").check()
    p.locator(".delete-selection").click()
    dialog = p.locator("dialog.confirm-dialog")
    expect(dialog).to_contain_text("Delete 2 runs?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(p.locator(".count-line")).to_have_text("3 runs")
    p.locator(".delete-selection").click()
    p.locator("dialog.confirm-dialog").get_by_role("button", name="Move to trash").click()
    expect(p.locator(".count-line")).to_have_text("1 run")
    # One more, from its page.
    p = page.goto("/p/admin/bin/r/gamma")
    p.locator(".delete-run").click()
    p.locator("dialog.confirm-dialog").get_by_role("button", name="Move to trash").click()
    expect(p.locator(".count-line")).to_have_text("0 runs")
    p.get_by_role("link", name="Trash").click()
    rows = p.locator(".trash-table tbody tr")
    expect(rows).to_have_count(3)
    page.shot("trash")
    p.locator('tr[data-run="beta"]').get_by_role("button", name="Restore").click()
    expect(rows).to_have_count(2)
    p.locator('tr[data-run="alpha"]').get_by_role("button", name="Delete for good").click()
    p.locator("dialog.confirm-dialog").get_by_role("button", name="Delete for good").click()
    expect(rows).to_have_count(1)
    with server.client() as admin:
        assert [r["id"] for r in admin.get("/projects/admin/bin/runs").json()["runs"]] == ["beta"]
        assert [r["id"] for r in admin.get("/projects/admin/bin/trash").json()["runs"]] == ["gamma"]
        assert admin.post("/runs/alpha/restore").status_code == 404
