"""A distributed run in the browser: ``rank<k>/<key>`` drawn in the panel of ``<key>``,
and the run page's list of its writers, where the rank that died stands out.

The run's four writers are written as run logs (rank 0's directory and ``ranks/<k>/``)
and shipped by the real transport, as their agents would. Rank 3 (on ``node-1``) dies
without a finish record; its agent's verdict says so in its system stream.
"""

from __future__ import annotations

import re
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


DEAD = 3  # the rank that dies


def write_rank(root: Path, rank: int) -> Path:
    from trackline.records import Finish, Metrics, RunStart, SystemSample
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
            pid=4000 + rank,
            rank=rank,
        )
    )
    for step in range(30):
        loss = 2.0 / (step + 1) + 0.1 * rank
        log.append(Metrics(step, start + step, {"loss": loss, "lr": 0.1}))
    if rank != DEAD:
        log.append(Finish(time=start + 40, state="finished"))
    log.close()
    # Its agent: its process; its node's host and two GPUs where it is the node's first
    # process (ranks 0 and 2), else the memory it holds on the GPU it uses.
    system = LogFile(run_dir / "system.tlog")
    for second in range(0, 31, 10):
        sample = {"proc/cpu_percent": 50.0 + rank}
        if rank % 2 == 0:
            sample |= {"host/cpu_percent": 80.0, "gpu/0/util_percent": 90.0 + rank}
            sample |= {"gpu/1/util_percent": 70.0 + rank}
            if rank == 0:  # power only on node-0: one writer's two GPUs alone in a chart
                sample |= {"gpu/0/power_watts": 300.0, "gpu/1/power_watts": 250.0}
        else:
            sample |= {"gpu/1/proc_memory_bytes": 2.0**30}
        system.append(SystemSample(start + rank + second * 0.9, sample))
    if rank == DEAD:  # samples until the process is gone, then the verdict
        system.append(SystemSample(start + 31, {"proc/cpu_percent": 99.0}))
        reason = "no finish record; the process ended (SIGKILL?)"
        system.append(Finish(time=start + 32, state="crashed", reason=reason))
    system.close()
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


def test_the_writers_endpoint_says_which_rank_died(ranks_server: ServerProcess) -> None:
    with ranks_server.client() as client:
        writers = client.get("/runs/ddp0001/writers").json()["writers"]
    assert [(w["rank"], w["host"], w["pid"], w["state"]) for w in writers] == [
        (0, "node-0", 4000, "finished"),
        (1, "node-0", 4001, "finished"),
        (2, "node-1", 4002, "finished"),
        (3, "node-1", 4003, "crashed"),
    ]
    assert [w["rows"] for w in writers] == [30] * WORLD
    assert [w["start_time"] for w in writers] == [1000.0, 1001.0, 1002.0, 1003.0]
    assert [w["last_time"] for w in writers] == [1040.0, 1040.0, 1040.0, 1032.0]
    dead = writers[DEAD]
    assert dead["end_time"] == 1032.0 and "no finish record" in dead["reason"]
    assert set(dead["streams"]) == {"main", "system"} and all(dead["streams"].values())
    assert set(writers[0]["streams"]) == {"main", "system"}


def test_the_run_page_lists_the_writers_and_the_dead_rank(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/ddp0001")
    card = p.locator(".writers-card")
    expect(card).to_have_attribute("data-loaded", "true")
    expect(card.locator(".writers-head")).to_contain_text(
        "4 writers on 2 hosts: 1 crashed, 3 finished · times after the first start"
    )
    rows = card.locator("tr.writer-row")
    expect(rows).to_have_count(WORLD)
    dead = card.locator(f'tr.writer-row[data-rank="{DEAD}"]')
    expect(dead).to_have_class(re.compile(r"\bwriter-bad\b"))
    cells = dead.locator("td").all_inner_texts()
    assert cells[:4] == ["3", "node-1", "4003", "crashed"]
    assert cells[4:7] == ["+3s", "+32s", "30"]  # started 3 s after rank 0, heard of until 32 s
    expect(card.locator(".writer-bad")).to_have_count(1)
    notice = card.locator(f'.writer-notice[data-rank="{DEAD}"]')
    expect(notice).to_contain_text("Rank 3 on node-1 crashed at +32s")
    expect(notice).to_contain_text("no finish record")
    page.shot("ranks-writers")


def test_every_writers_system_stats_share_the_charts_of_their_kind(page: Page) -> None:
    """The System tab of a distributed run: each node's GPUs in "GPU utilisation %"
    (sampled by its first rank), each rank's process in "Process CPU %", a line per writer
    named by its host and rank (the run's name goes without saying), in a colour of its
    own; no chart per rank."""
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/ddp0001?tab=System")
    gpus = '.panel[data-system="GPU utilisation %"] .panel-chart'
    cpu = '.panel[data-system="Process CPU %"] .panel-chart'
    for selector in (gpus, cpu):
        wait_chart(p, selector)
    expect(p.locator('.panel[data-system^="rank"]')).to_have_count(0)
    shown = chart_state(p, gpus)["series"]
    assert [s["label"] for s in shown] == [
        "node-0 rank 0 · GPU 0",
        "node-0 rank 0 · GPU 1",
        "node-1 rank 2 · GPU 0",
        "node-1 rank 2 · GPU 1",
    ]
    colors = p.evaluate("(s) => document.querySelector(s).chart.drawn.map((l) => l.color)", gpus)
    assert len(set(colors)) == 4
    processes = chart_state(p, cpu)["series"]
    assert [s["label"] for s in processes] == [
        f"node-{rank // 2} rank {rank}" for rank in range(WORLD)
    ]
    power = '.panel[data-system="GPU power (W)"] .panel-chart'
    wait_chart(p, power)
    assert [s["label"] for s in chart_state(p, power)["series"]] == [
        "node-0 rank 0 · GPU 0",
        "node-0 rank 0 · GPU 1",
    ]
    colors = p.evaluate("(s) => document.querySelector(s).chart.drawn.map((l) => l.color)", power)
    assert len(set(colors)) == 2
    memory = '.panel[data-system="GPU memory of this run"] .panel-chart'
    wait_chart(p, memory)
    assert [s["label"] for s in chart_state(p, memory)["series"]] == [
        "node-0 rank 1 · GPU 1",
        "node-1 rank 3 · GPU 1",
    ]
    page.shot("ranks-system")
