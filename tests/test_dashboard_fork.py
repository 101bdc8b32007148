"""Fork and rewind in the dashboard: the family tree on the run page, a fork's chart as one
line whose inherited part is drawn apart, and rewound rows one click away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ServerProcess, ship
from test_dashboard import CHROMIUM, Page, browser
from test_dashboard_charts import chart_state, wait_chart

__all__ = ["browser"]

PROJECT = "admin/forkdash"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def write_runs(root: Path) -> list[Path]:
    """``parent`` (steps 0-29, a spike at 20), ``fork`` of it after step 15 (16-29), and
    ``rewound`` (0-29, rewound to 10, then 11-19 again); each with a histogram per step."""
    from trackline.records import Finish, Histogram, Metrics, Rewind, RunStart
    from trackline.runlog import LogFile

    def loss(step: int) -> float:
        return 50.0 if step == 20 else 3.0 - step * 0.05

    dirs = []
    for run_id in ("parent", "fork", "rewound"):
        run_dir = root / run_id
        run_dir.mkdir()
        log = LogFile(run_dir / "main.tlog")
        fork = {"fork_from": "parent", "fork_step": 15} if run_id == "fork" else {}
        log.append(
            RunStart(run_id=run_id, project="forkdash", name=run_id, start_time=1000.0, **fork)
        )
        steps = range(16, 30) if run_id == "fork" else range(30)
        for step in steps:
            value = 1.0 - step * 0.01 if run_id == "fork" else loss(step)
            log.append(Metrics(step, 1000.0 + step, {"loss": value}))
        if run_id != "rewound":  # the fork's histograms begin with its parent's 0-15
            for step in steps:
                log.append(Histogram(step, 1000.0 + step, "w", [0.0, 1.0, 2.0], [step, 2.0]))
        if run_id == "rewound":  # with trackline.watch's histograms, hidden the same way
            for step in steps:
                log.append(Histogram(step, 1000.0 + step, "w", [0.0, 1.0, 2.0], [step, 1.0]))
            log.append(Rewind(step=10, time=1040.0))
            for step in range(11, 20):
                log.append(Metrics(step, 1040.0 + step, {"loss": 2.0}))
                log.append(Histogram(step, 1040.0 + step, "w", [0.0, 1.0, 2.0], [1.0, step]))
        log.append(Finish(time=1100.0, state="finished"))
        log.close()
        dirs.append(run_dir)
    return dirs


@pytest.fixture(scope="module")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("forkdash")
    server = ServerProcess(root / "server").start()
    try:
        for run_dir in write_runs(root):
            ship(run_dir, server.url, timeout=60)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, fork_server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, fork_server.url)
    yield p
    p.close()
    p.check_clean()


CHART = '.panel[data-key="loss"] .panel-chart'


def test_the_family_tree_on_the_run_page(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/fork")
    card = p.locator(".family-card")
    expect(card).to_contain_text("forked from parent after step 15")
    card.locator('.family-parent a[data-run="parent"]').click()
    expect(p.locator(".run-name")).to_have_text("parent")
    expect(p.locator(".family-child")).to_contain_text("fork from step 15")
    page.shot("fork-family")


def test_a_fork_chart_is_one_line_with_its_inherited_part_apart(page: Page) -> None:
    p = page.goto(f"/p/{PROJECT}/r/fork?tab=Charts")
    wait_chart(p, CHART)
    state = chart_state(p, CHART)
    assert [s["label"] for s in state["series"]] == ["fork (inherited)", "fork"]
    parts = p.evaluate(
        """(selector) => {
            const host = document.querySelector(selector);
            return host.chart.drawn.map((l) => ({ x: l.x, dash: l.dash, color: l.color }));
        }""",
        CHART,
    )
    assert parts[0]["x"] == list(range(16)) and parts[1]["x"] == list(range(15, 30))
    assert parts[0]["dash"] == [6, 4] and parts[0]["color"].startswith("rgba(")
    page.shot("fork-chart")


def test_rewound_rows_are_hidden_with_a_one_click_toggle(page: Page) -> None:
    p = page.goto(f"/p/{PROJECT}/r/rewound?tab=Charts")
    wait_chart(p, CHART)
    assert [s["label"] for s in chart_state(p, CHART)["series"]] == ["rewound"]
    xs = p.evaluate("(s) => document.querySelector(s).chart.drawn.map((l) => l.x)", CHART)
    assert xs == [list(range(20))]  # 0-10, then the new 11-19; the old 11-29 hidden
    p.locator(".rewound-toggle input").check()
    wait_chart(p, CHART)
    p.wait_for_function("(s) => document.querySelector(s).chart.drawn.length === 2", arg=CHART)
    labels = [s["label"] for s in chart_state(p, CHART)["series"]]
    assert labels == ["rewound", "rewound (rewound)"]
    hidden = p.evaluate("(s) => document.querySelector(s).chart.drawn[1].x", CHART)
    assert hidden == list(range(11, 30))
    page.shot("rewound-chart")


def test_the_rewound_toggle_covers_media_and_histograms(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/rewound?tab=Media")
    shown = p.locator('.panel[data-key="w"]')
    expect(shown).to_have_count(1)
    expect(p.locator('.panel[data-rewound="true"]')).to_have_count(0)
    # 0-10, then the new 11-19: the newest shown step is 19, of 20 steps.
    expect(shown.locator(".step-slider")).to_have_attribute("data-step", "19")
    expect(shown.locator(".step-value")).to_contain_text("(20/20)")
    p.locator(".rewound-toggle input").check()
    hidden = p.locator('.panel[data-key="w (rewound)"]')
    expect(hidden).to_have_attribute("data-rewound", "true")
    expect(hidden).to_have_class(re.compile(r"\brewound-panel\b"))
    expect(hidden.locator(".step-value")).to_contain_text("(19/19)")  # the old 11-29
    expect(hidden.locator(".step-slider")).to_have_attribute("data-step", "29")
    expect(p.locator('.panel[data-key="w"] .step-slider')).to_have_attribute("data-step", "19")
    page.shot("rewound-media")


def test_a_forks_histograms_say_which_steps_are_its_parents(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/fork?tab=Media")
    panel = p.locator('.panel[data-key="w"]')
    expect(panel).to_have_count(1)
    expect(panel.locator(".step-value")).to_contain_text("(30/30)")  # 0-15 inherited, 16-29
    expect(panel).to_have_attribute("data-inherited", "inherited from parent up to step 15")
    expect(panel.locator(".panel-status")).to_contain_text("inherited from parent up to step 15")
    page.shot("fork-histograms-inherited")
    parent = page.goto(f"/p/{PROJECT}/r/parent?tab=Media").locator('.panel[data-key="w"]')
    expect(parent).to_have_attribute("data-inherited", "")
