"""A distributed run in the browser: ``rank<k>/<key>`` drawn in the panel of ``<key>``.

The run's four writers are written as run logs (rank 0's directory and ``ranks/<k>/``)
and shipped by the real transport, as their agents would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ServerProcess, ship
from test_dashboard import CHROMIUM, Page, browser
from test_dashboard_charts import chart_state, panel_chart, wait_chart

__all__ = ["browser"]

PROJECT = "admin/ddp"
WORLD = 4

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def write_rank(root: Path, rank: int) -> Path:
    from trackline.records import Finish, Metrics, RunStart
    from trackline.runlog import LogFile

    run_dir = root / "ddp0001" / ("" if rank == 0 else f"ranks/{rank}")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = LogFile(run_dir / "main.tlog")
    start = 1000.0
    log.append(
        RunStart(
            run_id="ddp0001",
            project="ddp",
            name="four-ranks",
            start_time=start + rank,
            host=f"node-{rank // 2}",
            rank=rank,
        )
    )
    for step in range(30):
        loss = 2.0 / (step + 1) + 0.1 * rank
        log.append(Metrics(step, start + step, {"loss": loss, "lr": 0.1}))
    log.append(Finish(time=start + 40, state="finished"))
    log.close()
    return run_dir


@pytest.fixture(scope="module")
def ranks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ranks")
    server = ServerProcess(root / "server").start()
    try:
        for rank in range(WORLD):
            ship(write_rank(root, rank), server.url, timeout=60, rank=rank)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, ranks_server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, ranks_server.url)
    yield p
    p.close()
    p.check_clean()


def test_rank_keys_are_lines_in_the_panel_of_their_key(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")  # the workspace
    loss = p.locator('.panel[data-key="loss"]')
    expect(loss).to_have_attribute("data-ranks", str(WORLD - 1))
    expect(p.locator('.panel[data-key="lr"]')).to_have_attribute("data-ranks", str(WORLD - 1))
    # No panel of their own: rank1/loss ... are in the panel of loss.
    expect(p.locator('.panel[data-key^="rank"]')).to_have_count(0)
    wait_chart(p, panel_chart("loss"))
    expect(loss).to_have_attribute("data-loaded", "true")
    labels = [s["label"] for s in chart_state(p, panel_chart("loss"))["series"]]
    assert labels == [
        "four-ranks · loss",
        "four-ranks · rank1/loss",
        "four-ranks · rank2/loss",
        "four-ranks · rank3/loss",
    ]
    assert loss.get_attribute("data-points") == str(30 * WORLD)
    page.shot("ranks-loss-per-rank")


def test_ranks_as_a_min_mean_max_band(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")
    loss = p.locator('.panel[data-key="loss"]')
    expect(loss).to_have_attribute("data-ranks", str(WORLD - 1))
    wait_chart(p, panel_chart("loss"))
    loss.locator(".panel-menu-btn").click()
    p.locator('input[name="rankBand"]').check()
    p.get_by_role("button", name="Close").click()
    expect(loss).to_have_attribute("data-band", "ranks")
    state = chart_state(p, panel_chart("loss"))
    assert [s["label"] for s in state["series"] if s["show"]][:1] == ["four-ranks"]
    # The mean at step 0 of 2.0 + 0.1 * rank over four ranks, the band 2.0 .. 2.3.
    mean, _, low, high = p.evaluate(
        """() => document.querySelector('.panel[data-key="loss"] .panel-chart').chart.aligned
            .cols[0].map((column) => column && column[0])"""
    )
    assert (mean, low, high) == pytest.approx((2.15, 2.0, 2.3))
    assert "4 ranks" in loss.locator(".panel-status").inner_text()
    page.shot("ranks-loss-band")
    loss.locator(".panel-menu-btn").click()
    p.locator('input[name="rankBand"]').uncheck()
    p.get_by_role("button", name="Close").click()
    expect(loss).to_have_attribute("data-band", "")
