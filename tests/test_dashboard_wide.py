"""A run of 20,000 metric keys (per-layer metrics) in the workspace, in a real browser.

Sections group keys by their prefix (``layer003/block1/grad_norm`` is in
``layer003/block1``) and start collapsed, but the first; panels and sections go on the
page as they scroll in, so the first chart is drawn without building 20,000 panels; the
panel search filters to the matching keys and shows their sections; the run table's
column picker finds any of the 20,000 summary keys. Timings are printed, not asserted
(``bench/bench_dashboard.py`` holds the targets).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ADMIN_KEY, ServerProcess, wait_for
from test_dashboard import CHROMIUM, Page, browser

__all__ = ["browser"]

PROJECT = "admin/wide"
WIDTH = 20_000
STEPS = 20
NAMES = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def wide_key(j: int) -> str:
    return f"layer{j // 50:03d}/block{j // 5 % 10}/{NAMES[j % 5]}"


@pytest.fixture(scope="module")
def wide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from trackline._transport import Shipper
    from trackline.records import Finish, Metrics, RunStart
    from trackline.runlog import LogFile

    root = tmp_path_factory.mktemp("wide")
    server = ServerProcess(root / "server").start()
    try:
        run_dir = root / "wide0001"
        run_dir.mkdir()
        log = LogFile(run_dir / "main.tlog")
        log.append(RunStart(run_id="wide0001", project="wide", name="per-layer", start_time=1000.0))
        keys = [wide_key(j) for j in range(WIDTH)]
        for step in range(STEPS):
            values = {key: step / 10 + j / WIDTH for j, key in enumerate(keys)}
            log.append(Metrics(step, 1000.0 + step, values))
        log.append(Finish(time=1100.0, state="finished"))
        log.close()
        with Shipper(run_dir, server.url, ADMIN_KEY, live=False) as shipper:
            assert wait_for(lambda: shipper.pump(final=True), timeout=120)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, wide_server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, wide_server.url)
    p.context.add_init_script("window.__tracklineMarks = true;")
    yield p
    p.close()
    p.check_clean()


def sections(p: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = p.locator(".panel-section").evaluate_all(
        """(els) => els.map((e) => ({
            name: e.dataset.section, count: Number(e.dataset.count),
            collapsed: e.dataset.collapsed === "true",
            panels: e.querySelectorAll(".panel").length,
        }))"""
    )
    return found


def test_twenty_thousand_keys_in_sections_lazily(page: Page) -> None:
    from playwright.sync_api import expect

    started = time.perf_counter()
    p = page.goto(f"/p/{PROJECT}")
    first = p.locator('.panel[data-key="layer000/block0/act_mean"]')
    expect(first).to_have_attribute("data-loaded", "true", timeout=60_000)
    p.wait_for_function("() => performance.getEntriesByName('tl:chart-painted').length > 0")
    painted = p.evaluate("() => performance.getEntriesByName('tl:chart-painted')[0].startTime")
    print(f"\nfirst chart of {WIDTH:,} keys painted {painted:.0f} ms after navigation start")
    print(f"(test's own wall clock to loaded: {(time.perf_counter() - started) * 1000:.0f} ms)")
    shown = sections(p)
    # 20,000 keys: 4,000 sections (layer/block) of 5; a page of them on the page so far.
    assert shown[0] == {"name": "layer000/block0", "count": 5, "collapsed": False, "panels": 5}
    assert 1 < len(shown) < 200
    assert all(s["collapsed"] and s["panels"] == 0 for s in shown[1:])
    assert p.locator(".panel").count() <= 40  # not 20,000
    Path("test-artifacts").mkdir(exist_ok=True)
    p.screenshot(path="test-artifacts/dashboard-wide-sections.png")
    # Sections collapse and open; an opened one makes its panels then.
    second = p.locator('.panel-section[data-section="layer000/block1"]')
    second.locator(".section-head").click()
    expect(second.locator(".panel")).to_have_count(5)
    expect(second).to_have_attribute("data-collapsed", "false")
    p.locator('.panel-section[data-section="layer000/block0"] .section-head').click()
    expect(p.locator('.panel-section[data-section="layer000/block0"] .panel-grid')).to_be_hidden()
    # More sections go on the page as the list scrolls.
    before = p.locator(".panel-section").count()
    p.locator(".panel-section").last.scroll_into_view_if_needed()
    p.wait_for_function("(n) => document.querySelectorAll('.panel-section').length > n", arg=before)


def test_panel_search_filters_twenty_thousand_keys(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")
    expect(p.locator('.panel[data-key="layer000/block0/act_mean"]')).to_have_attribute(
        "data-loaded", "true", timeout=60_000
    )
    search = p.get_by_label("Search panels")
    p.evaluate("() => { window.__typed = performance.now(); }")
    search.fill("layer123/block4")
    p.wait_for_function(
        "() => document.querySelectorAll('.panel-section').length === 1"
        " && document.querySelector('.panel-section').dataset.section === 'layer123/block4'"
    )
    took = p.evaluate("() => performance.now() - window.__typed")
    print(f"\npanel search over {WIDTH:,} keys: matches shown {took:.0f} ms after typing")
    matches = p.locator('.panel-section[data-section="layer123/block4"] .panel')
    expect(matches).to_have_count(5)
    expect(matches.first).to_have_attribute("data-loaded", "true")
    # Two words: both must match; the sections of the matches open though collapsed.
    search.fill("update_ratio layer19")
    # layer190..199, 10 blocks each, one update_ratio in each block
    p.wait_for_function("() => document.querySelector('.metric-panels').dataset.matches === '100'")
    assert all(not s["collapsed"] and s["panels"] == 1 for s in sections(p))
    search.fill("no such key")
    expect(p.get_by_text("No panel matches the search.")).to_be_visible()
    search.fill("")
    p.wait_for_function("() => document.querySelectorAll('.panel-section').length > 1")


def test_column_picker_finds_any_of_the_keys(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")
    expect(p.locator(".run-link", has_text="per-layer")).to_be_visible(timeout=60_000)
    p.locator("details.menu > summary", has_text="Columns").click()
    picker = p.get_by_label("Find a column")
    expect(p.locator(".menu-more")).to_contain_text("more: refine the search")
    picker.fill("summary.layer377/block2/")
    items = p.locator(".menu-list .menu-item")
    expect(items).to_have_count(5)
    p.locator('.menu-item[data-column="summary.layer377/block2/grad_norm"] input').check()
    expect(p.locator(".vt-head", has_text="layer377/block2/grad_norm").first).to_be_visible()
