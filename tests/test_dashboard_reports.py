"""Reports in a real browser: built from the workspace ("Add to report"), one panel of each
kind, reordered by dragging, autosaved, reloaded, an older version compared and restored;
read anonymously through a share link that then stops working when revoked; exported
as one HTML file that opens with no network and shows the charts; hostile text stays text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
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

HOSTILE = '<img src=x onerror=alert(1)><script>alert("t")</script>'


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[str]]]:
    """Project admin/lab: three runs with a loss curve, lr in the config."""
    server = ServerProcess(tmp_path_factory.mktemp("dashboard-reports") / "server").start()
    ids = []
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    ) as client:
        for i, lr in enumerate((0.001, 0.01, 0.1)):
            run_id = f"rep{i}"
            start = RunStart(
                run_id=run_id,
                project="lab",
                name=f"lr-{lr}",
                start_time=time.time() - 100,
                config={"lr": lr, "arch": "mlp"},
            )
            rows = [
                Metrics(s, time.time() - 100 + s, {"loss": 2 / (1 + s * lr * 10), "acc": s / 200})
                for s in range(200)
            ]
            post_log(client, run_id, log_bytes([start, *rows])).raise_for_status()
            ids.append(run_id)
    try:
        yield server, ids
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, lab: tuple[ServerProcess, list[str]]) -> Iterator[Page]:
    p = Page(browser, lab[0].url)
    yield p
    p.close()
    p.check_clean()


def source_with_every_kind(run_id: str) -> str:
    blocks = [
        ("runset", {"name": "all", "where": ["config.lr>0"]}),
        ("line", {"keys": ["loss"], "smoothing": 0.5, "title": HOSTILE}),
        ("table", {"columns": ["config.lr", "summary.loss"]}),
        ("bar", {"key": "summary.loss"}),
        ("scatter", {"x": "config.lr", "y": "summary.loss"}),
        ("parcoords", {"columns": ["config.lr", "summary.acc", "summary.loss"]}),
        ("diff", {"run": run_id}),
        ("math", {"tex": r"\mathcal{L} = -\sum_i y_i \log p_i"}),
    ]
    parts = ["# Learning rates", "", f"Lower is better. {HOSTILE}", ""]
    for kind, settings in blocks:
        parts += [f"```trackline {kind}", json.dumps(settings), "```", ""]
    return "\n".join(parts)


def kinds_in_order(p: Any) -> list[str]:
    return p.locator(".report-body .report-panel").evaluate_all(
        "(els) => els.map((e) => e.dataset.kind)"
    )


def test_build_edit_reorder_version_and_restore(
    page: Page, lab: tuple[ServerProcess, list[str]]
) -> None:
    from playwright.sync_api import expect

    server, ids = lab
    p = page.goto("/p/admin/lab")
    panel = p.locator('.panel[data-key="loss"]')
    expect(panel.locator(".panel-chart")).to_have_attribute("data-series", "3")
    panel.locator(".panel-menu-btn").click()
    p.get_by_role("button", name="Add to report").click()
    p.get_by_label("New report title").fill("Learning rates")
    p.locator("dialog.add-report").get_by_role("button", name="Add").click()
    # The editor, with the chart's run set and line panel already in it.
    source = p.get_by_label("Markdown")
    expect(source).to_have_value(re.compile("```trackline line"))
    expect(p.locator('.report-body .report-panel[data-kind="line"] .rp-chart')).to_have_attribute(
        "data-series", "3"
    )
    # Every kind, typed as markdown; autosaved as version 2.
    source.fill(source_with_every_kind(ids[0]))
    expect(p.locator(".save-status")).to_have_text("Saved · version 2", timeout=20_000)
    expect(p.locator(".report-body .report-panel")).to_have_count(7)
    assert kinds_in_order(p) == ["line", "table", "bar", "scatter", "parcoords", "diff", "math"]
    body = p.locator(".report-body")
    expect(body.locator('[data-kind="line"] .rp-chart')).to_have_attribute("data-series", "3")
    expect(body.locator(".rp-table tbody tr")).to_have_count(3)
    expect(body.locator(".rp-bar")).to_have_count(3)
    expect(body.locator(".rp-scatter circle")).to_have_count(3)
    expect(body.locator(".parcoords-canvas")).to_have_count(1)
    expect(body.locator('[data-kind="diff"]')).to_contain_text("No git information")
    expect(body.locator('[data-kind="line"] .rp-title')).to_have_text(HOSTILE)
    page.shot("report-editor")
    # Drag the table above the line chart: the markdown follows, and is saved.
    table = body.locator('.report-panel[data-kind="table"]')
    table.drag_to(body.locator('.report-panel[data-kind="line"]'))
    expect(p.locator(".save-status")).to_have_text("Saved · version 3", timeout=20_000)
    assert kinds_in_order(p)[:2] == ["table", "line"]
    assert source.input_value().index("trackline table") < source.input_value().index(
        "trackline line"
    )
    # A panel's settings, changed in place.
    bar = body.locator('.report-panel[data-kind="bar"]')
    bar.get_by_role("button", name="Settings").click()
    bar.get_by_label("Panel settings (JSON)").fill('{"key": "summary.acc", "title": "Accuracy"}')
    bar.get_by_role("button", name="Apply").click()
    expect(p.locator(".save-status")).to_have_text("Saved · version 4", timeout=20_000)
    expect(source).to_have_value(re.compile('"key": "summary.acc"'))
    p.get_by_role("button", name="Done").click()
    # Reload: the saved report, as readers see it.
    p.reload()
    expect(p.locator(".report-title")).to_have_text("Learning rates")
    assert kinds_in_order(p) == ["table", "line", "bar", "scatter", "parcoords", "diff", "math"]
    expect(p.locator('.report-body [data-kind="bar"] .rp-title')).to_have_text("Accuracy")
    page.shot("report-view")
    # Versions: compare 2 with 4, restore 2.
    p.get_by_role("button", name="Versions").click()
    side = p.locator(".report-side")
    expect(side.locator(".version-item")).to_have_count(4)
    side.get_by_label("Choose version 2").check()
    side.get_by_label("Choose version 4").check()
    side.get_by_role("button", name="Compare two").click()
    expect(side.locator(".version-diff .d-add").first).to_be_visible()
    expect(side.locator(".version-diff")).to_contain_text('"key": "summary.acc"')
    page.shot("report-versions")
    side.locator('.version-item[data-version="2"] .version-restore').click()
    expect(p.locator(".report-meta")).to_contain_text("version 5")
    assert kinds_in_order(p)[0] == "line"
    with server.client() as admin:
        reports = admin.get("/projects/admin/lab/reports").json()["reports"]
        slug = next(r["slug"] for r in reports if r["title"] == "Learning rates")
        v2 = admin.get(f"/projects/admin/lab/reports/{slug}", params={"version": 2}).json()
        v5 = admin.get(f"/projects/admin/lab/reports/{slug}").json()
    assert v5["body"] == v2["body"] and v5["version"] == 5


def _report(server: ServerProcess, ids: list[str], slug: str) -> None:
    with server.client() as admin:
        answer = admin.post(
            "/projects/admin/lab/reports",
            json={
                "title": f"Shared {HOSTILE}",
                "body": source_with_every_kind(ids[0]),
                "slug": slug,
            },
        )
        assert answer.status_code == 201, answer.text


def test_share_link_reads_the_report_without_a_key_until_revoked(
    browser: Any, page: Page, lab: tuple[ServerProcess, list[str]]
) -> None:
    from playwright.sync_api import expect

    server, ids = lab
    _report(server, ids, "shared-one")
    p = page.goto("/p/admin/lab/reports/shared-one")
    p.get_by_role("button", name="Share").click()
    side = p.locator(".report-side")
    side.get_by_role("button", name="Create link").click()
    url = side.get_by_label("Share link").input_value()
    assert "#/shared/tlshare_" in url
    stranger = Page(browser, server.url, key=None)
    try:
        s = stranger.page
        s.goto(url)
        expect(s.locator(".report-title")).to_have_text(f"Shared {HOSTILE}")
        expect(s.locator('.report-body [data-kind="line"] .rp-chart')).to_have_attribute(
            "data-series", "3"
        )
        expect(s.locator(".report-actions")).not_to_contain_text("Edit")
        # Run names are not links: the link reads the report, not the runs.
        expect(s.locator(".rp-table a")).to_have_count(0)
        stranger.shot("report-shared")
        side.locator(".share-revoke").first.click()
        expect(side.locator(".share-item.revoked")).to_have_count(1)
        s.reload()
        expect(s.locator("h2")).to_have_text("Link not valid")
        stranger.errors = [e for e in stranger.errors if "404" not in e]
        stranger.check_clean()
    finally:
        stranger.close()


def test_html_export_opens_offline_with_the_charts(
    browser: Any, page: Page, lab: tuple[ServerProcess, list[str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server, ids = lab
    _report(server, ids, "exported")
    p = page.goto("/p/admin/lab/reports/exported")
    expect(p.locator('.report-body [data-kind="line"] .rp-chart')).to_have_attribute(
        "data-series", "3"
    )
    with p.expect_download() as download:
        p.get_by_role("button", name="Download HTML").click()
    saved = tmp_path / "report.html"
    download.value.save_as(saved)
    html = saved.read_text()
    # The hostile text is text: escaped in the markup, \u003c in the embedded JSON.
    assert html.count("<script") == 1 and "<img src=x" not in html
    offline = browser.new_context(offline=True)
    try:
        asked: list[str] = []

        def guard(route: Any) -> None:
            if route.request.url.startswith("file:"):
                route.continue_()
                return
            asked.append(route.request.url)
            route.abort()

        offline.route("**/*", guard)
        o = offline.new_page()
        o.goto(saved.as_uri())
        expect(o.locator(".report-title")).to_have_text(f"Shared {HOSTILE}")
        assert o.locator('[data-kind="line"] img[src^="data:image/png"]').count() >= 1
        assert o.locator('[data-kind="parcoords"] img[src^="data:image/png"]').count() == 1
        expect(o.locator(".rp-table tbody tr")).to_have_count(3)
        embedded = json.loads(o.locator("#trackline-report-data").text_content() or "{}")
        assert len(embedded["runsets"][0]["runs"]) == 3
        assert [u for u in asked if not u.startswith("file:")] == []
        assert o.locator("img:not([src^='data:'])").count() == 0
        o.screenshot(
            path=str(
                Path(__file__).parent.parent / "test-artifacts" / "dashboard-report-export.png"
            )
        )
    finally:
        offline.close()


def test_links_reproduce_a_workspace_view_and_a_run_tab(
    browser: Any, page: Page, lab: tuple[ServerProcess, list[str]]
) -> None:
    from playwright.sync_api import expect

    server, _ = lab
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    p = page.goto("/p/admin/lab")
    where = p.get_by_label("Filter expression")
    where.fill("lr < 0.05")
    where.press("Enter")
    expect(p.locator(".count-line")).to_have_text("2 of 3 runs match")
    p.locator('.panel[data-key="loss"] .panel-menu-btn').click()
    p.get_by_label("Log scale (y)").check()
    p.get_by_role("button", name="Close").click()
    p.get_by_role("button", name="Copy link").click()
    expect(p.locator(".toast")).to_contain_text("Link copied")
    url = p.evaluate("navigator.clipboard.readText()")
    assert "#/p/admin/lab?view=" in url
    other = Page(browser, server.url)  # the same user in a fresh browser: its own settings
    try:
        o = other.page
        o.goto(url)
        expect(o.locator(".linked-view")).to_be_visible()
        expect(o.get_by_label("Filter expression")).to_have_value("lr < 0.05")
        expect(o.locator(".count-line")).to_have_text("2 of 3 runs match")
        o.locator('.panel[data-key="loss"] .panel-menu-btn').click()
        expect(o.get_by_label("Log scale (y)")).to_be_checked()
        o.get_by_role("button", name="Close").click()
        other.shot("workspace-linked-view")
        o.get_by_role("button", name="Back to mine").click()
        expect(o.locator(".linked-view")).to_have_count(0)
        other.check_clean()
    finally:
        other.close()
    # A run page's tab is in its URL.
    p = page.goto("/p/admin/lab/r/rep0?tab=System")
    expect(p.get_by_role("tab", name="System")).to_have_attribute("aria-selected", "true")
    p.get_by_role("tab", name="Logs").click()
    assert p.url.endswith("/p/admin/lab/r/rep0?tab=Logs")


def test_media_panels_through_a_share_link(
    browser: Any,
    page: Page,
    lab: tuple[ServerProcess, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    import trackline
    from playwright.sync_api import expect
    from trackline._transport import Shipper

    server, _ = lab
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    run = trackline.init(project="gallery", mode="offline")
    for step in range(3):
        picture = np.zeros((16, 16, 3), np.uint8)
        picture[..., step] = 255
        run.log(
            {
                "samples": trackline.Image(picture, caption=f"colour {step}"),
                "weights": trackline.Histogram(np.random.default_rng(step).normal(size=500)),
            },
            step=step,
        )
    run.finish()
    shipper = Shipper(run.dir, server.url)
    assert shipper.pump(final=True), (shipper.error, shipper.files_failed)
    shipper.close()
    body = "".join(
        f'```trackline media\n{{"run": "{run.id}", "key": "{key}"}}\n```\n\n'
        for key in ("samples", "weights")
    )
    with server.client() as admin:
        base = "/projects/admin/gallery/reports"
        admin.post(base, json={"title": "Gallery", "body": body}).raise_for_status()
        token = admin.post(f"{base}/gallery/shares", json={}).json()["token"]
    stranger = Page(browser, server.url, key=None)
    try:
        s = stranger.goto(f"/shared/{token}")
        images = s.locator('[data-kind="media"] .rp-media-frame img')
        expect(images).to_have_count(1)
        expect(s.locator(".rp-media-item figcaption")).to_have_text("colour 2")
        s.get_by_role("button", name="Previous step").first.click()
        expect(s.locator(".rp-media-item figcaption")).to_have_text("colour 1")
        expect(images).to_have_js_property("complete", True)
        assert images.evaluate("(img) => img.naturalWidth") == 16
        expect(s.locator(".hist-canvas")).to_have_count(1)
        stranger.shot("report-media-shared")
        stranger.check_clean()
    finally:
        stranger.close()


def test_readers_who_may_not_write_see_no_edit(
    browser: Any, page: Page, lab: tuple[ServerProcess, list[str]]
) -> None:
    from playwright.sync_api import expect

    server, ids = lab
    _report(server, ids, "readonly")
    with server.client() as admin:
        admin.patch("/projects/admin/lab", json={"public": True}).raise_for_status()
    reader = Page(browser, server.url, key=None)
    try:
        r = reader.goto("/p/admin/lab/reports/readonly")
        expect(r.locator(".report-title")).to_contain_text("Shared")
        expect(r.get_by_role("button", name="Versions")).to_be_visible()
        expect(r.get_by_role("link", name="Edit")).to_have_count(0)
        expect(r.get_by_role("button", name="Share")).to_have_count(0)
        reader.errors = [e for e in reader.errors if "401" not in e]  # the viewer check
        reader.check_clean()
    finally:
        reader.close()
        with server.client() as admin:
            admin.patch("/projects/admin/lab", json={"public": False}).raise_for_status()
    p = page.goto("/p/admin/lab/reports/readonly")  # the owner does
    expect(p.get_by_role("link", name="Edit")).to_be_visible()
