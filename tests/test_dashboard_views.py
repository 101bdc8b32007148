"""Panel settings and the workspace layout in a real browser, saved per user on the server.

The settings of one panel (smoothing algorithm, log scale, y range), a hidden panel, a
section and a panel moved, and a custom panel of two keys are restored in a new browser
(fresh localStorage) for the same user from the server; another user sees the defaults;
"Reset workspace" brings the defaults back, there and on the server.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
from _server import ADMIN_KEY, ServerProcess, wait_for
from test_dashboard import PROJECT, PUBLIC_PROJECT, Page
from test_dashboard import browser as browser  # the fixtures: this module's own server
from test_dashboard import page as page
from test_dashboard import pytestmark as pytestmark
from test_dashboard import seeded as seeded

WORKSPACE = f"/p/{PUBLIC_PROJECT}"  # public: another user can read it too
VIEW = f"/projects/{PUBLIC_PROJECT}/view"


def saved(server: ServerProcess, key: str = ADMIN_KEY) -> dict[str, Any]:
    with server.client(key) as client:
        answer = client.get(VIEW)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()["settings"]
        return document


def panel(p: Any, key: str) -> Any:
    return p.locator(f'.panel[data-key="{key}"]')


def sections(p: Any) -> list[str]:
    return list(p.locator(".panel-section").evaluate_all("(s) => s.map((e) => e.dataset.section)"))


def panel_keys(p: Any, section: str) -> list[str]:
    return list(
        p.locator(f'.panel-section[data-section="{section}"] .panel').evaluate_all(
            "(s) => s.map((e) => e.dataset.key)"
        )
    )


def y_scale(p: Any, key: str) -> list[float]:
    """The y axis of a panel's chart as uPlot holds it: [min, max]."""
    p.wait_for_function(
        "(key) => document.querySelector(`.panel[data-key='${key}']`)?.panel?.chart?.plot",
        arg=key,
    )
    return list(
        p.evaluate(
            "(key) => { const y = document.querySelector(`.panel[data-key='${key}']`)"
            ".panel.chart.plot.scales.y; return [y.min, y.max]; }",
            key,
        )
    )


def open_menu(p: Any, key: str) -> Any:
    panel(p, key).scroll_into_view_if_needed()
    panel(p, key).locator(".panel-menu-btn").click()
    menu = p.locator(f'dialog.panel-menu[data-panel="{key}"]')
    menu.wait_for()
    return menu


def open_workspace(tab: Page) -> Any:
    from playwright.sync_api import expect

    p = tab.goto(WORKSPACE)
    expect(panel(p, "train/loss")).to_have_attribute("data-loaded", "true")
    return p


def customise(tab: Page) -> None:
    """Panel settings, a hidden panel, a moved section and panel, a custom panel."""
    from playwright.sync_api import expect

    p = tab.page
    menu = open_menu(p, "train/loss")
    menu.locator('select[name="smoothAlgo"]').select_option("gaussian")
    menu.locator('input[name="log"]').check()
    menu.locator('input[name="yMin"]').fill("0.05")
    menu.locator('input[name="yMax"]').fill("3")
    menu.locator('input[name="yMax"]').press("Enter")
    tab.shot("views-panel-menu")
    menu.get_by_role("button", name="Close").click()
    expect(panel(p, "train/loss")).to_have_attribute("data-smoothing", "gaussian")

    menu = open_menu(p, "eval/loss")
    menu.locator('select[name="size"]').select_option("large")
    menu.get_by_role("button", name="Close").click()
    expect(panel(p, "eval/loss")).to_have_class("panel panel-large")

    open_menu(p, "train/acc").get_by_role("button", name="Hide panel").click()
    expect(panel(p, "train/acc")).to_have_count(0)
    train = p.locator('.panel-section[data-section="train"]')
    expect(train.locator(".hidden-count")).to_have_text("1 hidden")

    assert sections(p) == ["Charts", "eval", "train"]
    p.get_by_role("button", name="Move section train up").click()
    assert sections(p) == ["Charts", "train", "eval"]
    assert panel_keys(p, "Charts") == ["epoch", "lr"]
    open_menu(p, "lr").get_by_role("button", name="Move up").click()
    p.locator("dialog.panel-menu").get_by_role("button", name="Close").click()
    assert panel_keys(p, "Charts") == ["lr", "epoch"]

    p.get_by_role("button", name="Add panel").click()
    dialog = p.locator("dialog.add-panel-dialog")
    dialog.locator('input[name="title"]').fill("losses")
    dialog.locator('input[name="key"][value="train/loss"]').check()
    dialog.locator('input[name="key"][value="eval/loss"]').check()
    dialog.get_by_role("button", name="Add").click()


def check_customised(p: Any) -> None:
    from playwright.sync_api import expect

    custom = p.locator('.panel-section[data-section="Custom"] .panel')
    expect(custom).to_have_count(1)
    expect(custom.locator(".panel-title")).to_have_text("losses")
    custom.scroll_into_view_if_needed()
    # One run, two keys: two lines in one chart.
    expect(custom.locator(".panel-chart")).to_have_attribute("data-series", "2")
    assert sections(p) == ["Custom", "Charts", "train", "eval"]
    assert panel_keys(p, "Charts") == ["lr", "epoch"]
    expect(panel(p, "train/acc")).to_have_count(0)
    expect(p.locator('.panel-section[data-section="train"] .hidden-count')).to_have_text("1 hidden")
    expect(panel(p, "train/loss")).to_have_attribute("data-smoothing", "gaussian")
    expect(panel(p, "eval/loss")).to_have_class("panel panel-large")
    assert y_scale(p, "train/loss") == [0.05, 3]
    menu = open_menu(p, "train/loss")
    assert menu.locator('select[name="smoothAlgo"]').input_value() == "gaussian"
    assert menu.locator('input[name="log"]').is_checked()
    assert menu.locator('input[name="yMin"]').input_value() == "0.05"
    menu.get_by_role("button", name="Close").click()


def check_defaults(p: Any) -> None:
    from playwright.sync_api import expect

    expect(panel(p, "train/acc")).to_have_count(1)
    expect(p.locator('.panel-section[data-section="Custom"]')).to_have_count(0)
    expect(p.locator(".hidden-count")).to_have_count(0)
    assert sections(p) == ["Charts", "eval", "train"]
    assert panel_keys(p, "Charts") == ["epoch", "lr"]
    expect(panel(p, "eval/loss")).to_have_class("panel panel-medium")
    expect(panel(p, "train/loss")).to_have_attribute("data-smoothing", "")
    low, high = y_scale(p, "train/loss")
    assert low != 0.05 and high != 3


def test_panel_settings_and_layout_follow_the_user(
    browser: Any, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    server, _ = seeded
    with server.client() as admin:
        other_key = admin.post("/users", json={"name": "viewer2"}).json()["api_key"]
    first = Page(browser, server.url)
    try:
        p = open_workspace(first)
        check_defaults(p)
        customise(first)
        check_customised(p)
        first.shot("views-customised")
        # Saved on the server shortly after the last change (debounced).
        wait_for(
            lambda: (
                saved(server).get("customPanels")
                and saved(server)["panels"]["train/loss"]["smoothAlgo"] == "gaussian"
            ),
            timeout=10,
            what="the settings on the server",
        )
    finally:
        first.close()
    first.check_clean()
    document = saved(server)
    assert document["hiddenPanels"] == ["train/acc"]
    assert document["panels"]["train/loss"] == {
        "smoothAlgo": "gaussian",
        "smoothing": 3,
        "log": True,
        "yMin": 0.05,
        "yMax": 3,
    }
    assert sorted(document["customPanels"][0]["keys"]) == ["eval/loss", "train/loss"]
    assert document["panelSizes"] == {"eval/loss": "large"}
    assert "search" not in document and "states" not in document  # filters stay in the browser

    again = Page(browser, server.url)  # a new context: nothing in localStorage
    try:
        p = open_workspace(again)
        assert p.evaluate(f"localStorage.getItem('trackline.ws.{PUBLIC_PROJECT}')") is not None
        check_customised(p)
        p.locator(".charts-pane").evaluate("(e) => e.scrollTo(0, 0)")
        again.shot("views-restored")

        other = Page(browser, server.url, key=other_key)
        try:
            check_defaults(open_workspace(other))
        finally:
            other.close()
        other.check_clean()
        assert saved(server, other_key) == {}

        reset = p.get_by_role("button", name="Reset workspace")
        reset.click()
        p.get_by_role("button", name="Reset to default?").click()
        check_defaults(p)
        again.shot("views-reset")
        assert saved(server) == {}
    finally:
        again.close()
    again.check_clean()

    fresh = Page(browser, server.url)
    try:
        check_defaults(open_workspace(fresh))
    finally:
        fresh.close()
    fresh.check_clean()


def test_ignore_outliers_clips_the_y_axis(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    server, _ = seeded
    p = open_workspace(page)
    full = y_scale(p, "train/loss")
    menu = open_menu(p, "train/loss")
    menu.locator('input[name="outliers"]').check()
    menu.get_by_role("button", name="Reset panel").click()  # and back: nothing kept
    assert y_scale(p, "train/loss") == full
    menu = open_menu(p, "train/loss")
    menu.locator('input[name="outliers"]').check()
    menu.get_by_role("button", name="Close").click()
    p.wait_for_function(
        "(full) => { const y = document.querySelector(`.panel[data-key='train/loss']`)"
        ".panel.chart.plot.scales.y; return y.max < full[1]; }",
        arg=full,
    )
    clipped = y_scale(p, "train/loss")
    assert clipped[1] < full[1]  # the first steps' high loss is outside the 99th percentile
    wait_for(
        lambda: saved(server).get("panels", {}).get("train/loss") == {"outliers": True},
        timeout=10,
        what="the outlier setting on the server",
    )
    with server.client() as admin:
        admin.put(VIEW, json={}).raise_for_status()


def test_smoothing_algorithms_in_the_browser(page: Page) -> None:
    """Running average and Gaussian smoothing, and the outlier percentiles, as pure functions."""
    p = page.goto("/projects")
    out = p.evaluate(
        """async () => {
            const s = await import("/js/util/smooth.js");
            return {
                average: s.smoothRunningAverage([1, 2, 3, 4, 5], 2),
                averageGap: s.smoothRunningAverage([2, NaN, 4, null, 6], 2),
                averageOff: s.smoothRunningAverage([1, 5], 1),
                gaussFlat: s.smoothGaussian([3, 3, 3, 3], 1.5),
                gauss: s.smoothGaussian([0, 0, 10, 0, 0], 1),
                gaussGap: s.smoothGaussian([1, NaN, 1], 2),
                names: Object.values(s.SMOOTHERS).map((m) => m.name),
                off: [s.smoother("ema", 0), s.smoother("average", 1), s.smoother("gaussian", 0)],
                on: s.smoother("average", 3)([3, 6, 9]),
                range: s.percentileRange([[1, 2, 3], [4, 1000, NaN]], 0.0, 0.5),
                none: s.percentileRange([[NaN], []]),
            };
        }"""
    )
    assert out["average"] == [1, 1.5, 2.5, 3.5, 4.5]
    gap = out["averageGap"]
    assert gap[0] == 2 and math.isnan(gap[1]) and gap[2] == 3 and gap[3] is None and gap[4] == 5
    assert out["averageOff"] == [1, 5]
    assert all(abs(v - 3) < 1e-12 for v in out["gaussFlat"])
    gauss = out["gauss"]
    assert gauss[2] < 10 and gauss[1] == gauss[3] > 0 and abs(sum(gauss) - 10) < 1.5
    assert out["gaussGap"][0] == 1 and math.isnan(out["gaussGap"][1]) and out["gaussGap"][2] == 1
    assert out["names"] == [
        "Exponential moving average (debiased, TensorBoard)",
        "Running average",
        "Gaussian",
    ]
    assert out["off"] == [None, None, None]
    assert out["on"] == [3, 4.5, 6]
    assert out["range"] == [1, 3]
    assert out["none"] is None


def test_without_a_key_settings_stay_in_the_browser(
    browser: Any, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    """An anonymous reader of a public project: its changes are kept in localStorage only."""
    from playwright.sync_api import expect

    server, _ = seeded
    anonymous = Page(browser, server.url, key=None)
    sent: list[str] = []
    anonymous.page.on(
        "request", lambda r: sent.append(r.method) if r.url.endswith("/view") else None
    )
    try:
        p = open_workspace(anonymous)
        open_menu(p, "train/acc").get_by_role("button", name="Hide panel").click()
        expect(panel(p, "train/acc")).to_have_count(0)
        p.wait_for_function(
            f"() => (localStorage.getItem('trackline.ws.{PUBLIC_PROJECT}') || '')"
            ".includes('train/acc')"
        )
        p.reload()
        expect(panel(p, "train/loss")).to_have_attribute("data-loaded", "true")
        expect(panel(p, "train/acc")).to_have_count(0)
    finally:
        anonymous.close()
    anonymous.check_clean()
    assert sent == []  # no key: the server is not asked
    assert saved(server) == {}
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        assert client.put(VIEW, json={"hiddenPanels": []}).status_code == 401


def test_a_custom_panel_of_some_runs_and_a_panel_x_axis(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    server, ids = seeded
    asked: list[tuple[list[str], str]] = []  # (keys, x) of each series request

    def note(request: Any) -> None:
        if request.url.endswith("/metrics/series"):
            body = json.loads(request.post_data or "{}")
            asked.append((body["keys"], body["x"]))

    page.page.on("request", note)
    p = page.goto(f"/p/{PROJECT}")
    expect(panel(p, "train/loss").locator(".panel-chart")).to_have_attribute("data-series", "6")
    p.get_by_role("button", name="Add panel").click()
    dialog = p.locator("dialog.add-panel-dialog")
    dialog.locator('input[name="key"][value="train/loss"]').check()
    for name in ("baseline", "wide-net"):
        dialog.locator(f'input[name="run"][value="{ids[name]}"]').check()
    dialog.get_by_role("button", name="Add").click()
    custom = p.locator('.panel-section[data-section="Custom"] .panel')
    expect(custom.locator(".panel-chart")).to_have_attribute("data-series", "2")
    expect(custom.locator(".panel-title")).to_have_text("train/loss")

    asked.clear()
    menu = open_menu(p, "train/acc")
    menu.locator('select[name="x"]').select_option("relative")
    menu.get_by_role("button", name="Close").click()
    wait_for(lambda: (["train/acc"], "relative") in asked, timeout=10, what="a relative-x fetch")
    assert all(x != "relative" for keys, x in asked if keys != ["train/acc"])
    with server.client() as admin:
        wait_for(
            lambda: admin.get(f"/projects/{PROJECT}/view").json()["settings"].get("panels"),
            timeout=10,
        )
        document = admin.get(f"/projects/{PROJECT}/view").json()["settings"]
        assert document["panels"] == {"train/acc": {"x": "relative"}}
        assert sorted(document["customPanels"][0]["runs"]) == sorted(
            [ids["baseline"], ids["wide-net"]]
        )
        admin.put(f"/projects/{PROJECT}/view", json={}).raise_for_status()


def test_a_malformed_document_falls_back_to_defaults(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    """Settings of the wrong shape (another version's, or sent by hand) never break the page."""
    from playwright.sync_api import expect

    server, _ = seeded
    bad = {
        "panels": 5,
        "customPanels": [{"id": 1}, "x", {"id": "ok", "keys": ["train/loss"], "runs": None}],
        "panelOrder": {"train": 7},
        "hiddenPanels": "train/acc",
        "sectionOrder": [None, 3],
        "x": 3,
        "collapsed": [],
    }
    with server.client() as admin:
        admin.put(VIEW, json=bad).raise_for_status()
    try:
        p = open_workspace(page)
        expect(panel(p, "train/acc")).to_have_count(1)
        expect(p.locator('.panel-section[data-section="Custom"] .panel')).to_have_count(1)
        assert sections(p) == ["Custom", "Charts", "eval", "train"]
    finally:
        with server.client() as admin:
            admin.put(VIEW, json={}).raise_for_status()
