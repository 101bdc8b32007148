"""The workspace's run table in a real browser: the columns people look at are visible,
and columns can be pinned, resized, moved and sorted, all kept per project.

Runs are logged by the real SDK to a real server (test_dashboard's seed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ServerProcess
from test_dashboard import CHROMIUM, PROJECT, Page, seed
from test_dashboard import browser as browser  # the module's own chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

HEADER = ".vt-head .vt-th"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("dashboard-table")
    server = ServerProcess(root / "server").start()
    try:
        seed(server, root)
        yield server, root
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, seeded: tuple[ServerProcess, Path]) -> Iterator[Page]:
    p = Page(browser, seeded[0].url)
    p.context.set_default_timeout(20_000)
    yield p
    p.close()
    p.check_clean()


def open_table(page: Page, width: int = 1280) -> Any:
    from playwright.sync_api import expect

    page.page.set_viewport_size({"width": width, "height": 800})
    p = page.goto(f"/p/{PROJECT}")
    expect(p.locator(".vt-row.vt-run").first).to_be_visible()
    return p


def header_ids(p: Any) -> list[str]:
    return list(p.locator(HEADER).evaluate_all("(cells) => cells.map((c) => c.dataset.col)"))


def visible_headers(p: Any) -> list[str]:
    """Header cells wholly inside the table pane without scrolling."""
    return list(
        p.evaluate(
            """() => {
                const pane = document.querySelector('.vt').getBoundingClientRect();
                return [...document.querySelectorAll('.vt-head .vt-th')]
                    .filter((c) => { const r = c.getBoundingClientRect();
                                     return r.left >= pane.left && r.right <= pane.right + 1; })
                    .map((c) => c.dataset.col);
            }"""
        )
    )


def saved_settings(server: ServerProcess) -> dict[str, Any]:
    with server.client() as admin:
        return dict(admin.get(f"/projects/{PROJECT}/view").json()["settings"])


def reset(server: ServerProcess) -> None:
    with server.client() as admin:
        admin.put(f"/projects/{PROJECT}/view", json={}).raise_for_status()


def test_default_columns_show_metrics_and_varying_config_in_split_view(
    page: Page, seeded: tuple[ServerProcess, Path]
) -> None:
    reset(seeded[0])
    p = open_table(page)
    ids = header_ids(p)
    # Name, state and duration first, then the summary metrics every run has, then the
    # config keys that differ between the runs; the fixed width columns after them.
    assert ids[:5] == ["_select", "_eye", "name", "state", "runtime"]
    summary = [i for i in ids if i.startswith("summary.")]
    config = [i for i in ids if i.startswith("config.")]
    assert "summary.train/loss" in summary and summary == ids[5 : 5 + len(summary)]
    assert {"config.lr", "config.optimizer", "config.batch_size"} <= set(config)
    assert "config.model.width" not in config  # the same (64) in every run
    shown = visible_headers(p)
    assert {"name", "state", "runtime"} <= set(shown)
    assert any(i.startswith("summary.") for i in shown), shown  # at 1280 px, no scrolling
    page.shot("table-defaults")


def test_sort_by_a_summary_metric(page: Page, seeded: tuple[ServerProcess, Path]) -> None:
    from playwright.sync_api import expect

    reset(seeded[0])
    p = open_table(page)
    column = "summary.train/loss"
    p.locator(f'{HEADER}[data-col="{column}"] .col-name').click()
    expect(p.locator(f'{HEADER}[data-col="{column}"]')).to_have_attribute("aria-sort", "descending")

    def losses() -> list[float]:
        cells = p.locator(".vt-row.vt-run").evaluate_all(
            f"""(rows) => rows.sort((a, b) => a.style.transform.localeCompare(b.style.transform,
                    undefined, {{numeric: true}}))
                .map((r) => r.children[{header_ids(p).index(column)}].querySelector('.num'))
                .filter(Boolean).map((n) => Number(n.title))"""
        )
        return [float(v) for v in cells]

    p.wait_for_function(
        "(c) => document.querySelector(`.vt-head .vt-th[data-col='${c}']`)"
        ".classList.contains('sorted-desc')",
        arg=column,
    )
    p.wait_for_timeout(300)
    found = losses()
    assert len(found) >= 3 and found == sorted(found, reverse=True)
    assert saved_settings(seeded[0]).get("columns") is None  # sorting chose no columns


def test_pin_resize_and_move_are_kept(page: Page, seeded: tuple[ServerProcess, Path]) -> None:
    from playwright.sync_api import expect

    server = seeded[0]
    reset(server)
    p = open_table(page, width=1600)
    ids = header_ids(p)
    config = [i for i in ids if i.startswith("config.")]
    pinned = config[-1]
    # Move: drop one chosen column onto another.
    movable = [i for i in visible_headers(p) if i.startswith(("summary.", "config."))]
    first, last = movable[0], movable[1]  # both in view
    p.locator(f'{HEADER}[data-col="{first}"]').drag_to(p.locator(f'{HEADER}[data-col="{last}"]'))
    p.wait_for_function(
        "([a, b]) => { const ids = [...document.querySelectorAll('.vt-head .vt-th')]"
        ".map((c) => c.dataset.col); return ids.indexOf(a) > ids.indexOf(b); }",
        arg=[first, last],
    )
    # Pin: the column moves next to the name and stays there as the table scrolls.
    p.locator(f'{HEADER}[data-col="{pinned}"] .pin-btn').click()
    expect(p.locator(f'{HEADER}[data-col="{pinned}"]')).to_have_class(
        __import__("re").compile("vt-pinned")
    )
    assert header_ids(p)[3] == pinned
    before = p.locator(f'{HEADER}[data-col="{pinned}"]').bounding_box()
    p.locator(".vt").evaluate("(el) => { el.scrollLeft = 400; }")
    p.wait_for_timeout(100)
    after = p.locator(f'{HEADER}[data-col="{pinned}"]').bounding_box()
    assert before and after and abs(after["x"] - before["x"]) < 1  # pinned
    p.locator(".vt").evaluate("(el) => { el.scrollLeft = 0; }")
    # Resize by dragging the header's right edge.
    target = next(i for i in header_ids(p) if i.startswith("summary."))
    handle = p.locator(f'{HEADER}[data-col="{target}"] .vt-resize')
    box = handle.bounding_box()
    assert box is not None
    p.mouse.move(box["x"] + 3, box["y"] + 10)
    p.mouse.down()
    p.mouse.move(box["x"] + 83, box["y"] + 10, steps=5)
    p.mouse.up()
    width = p.locator(f'{HEADER}[data-col="{target}"]').bounding_box()
    assert width is not None and 185 <= width["width"] <= 200  # 112 + 80
    order = header_ids(p)
    page.shot("table-pinned-resized-moved")

    # All of it is the user's, on the server: a fresh browser shows the same table.
    p.wait_for_timeout(800)  # the save goes out half a second after the last change
    settings = saved_settings(server)
    assert settings["pinnedColumns"] == [pinned]
    assert 185 <= settings["columnWidths"][target] <= 200
    assert settings["columns"].index(first) > settings["columns"].index(last)
    fresh = Page(page.context.browser, server.url)
    try:
        q = open_table(fresh, width=1600)
        assert header_ids(q) == order
        box = q.locator(f'{HEADER}[data-col="{target}"]').bounding_box()
        assert box is not None and 185 <= box["width"] <= 200
    finally:
        fresh.close()
    reset(server)
