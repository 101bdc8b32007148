"""Charts people can trust, in a real browser against a real server.

Axis titles (the step metric's name where a key has one, the unit where the key says
it), whole-number step ticks, tick labels that never repeat, a legend that highlights
and toggles runs, a colour scale on histogram heat maps, friendly titles with the raw
key copyable, and drag-zoom synced across panels on one x axis. The runs are written as
run logs and shipped by the real transport (``Shipper``), so the server and the
dashboard see exactly what the SDK would send.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ADMIN_KEY, ServerProcess, wait_for
from test_dashboard import CHROMIUM, Page, browser

__all__ = ["browser"]  # the browser fixture, shared with test_dashboard.py

PROJECT = "admin/charts"
RUNS = ("alpha", "beta", "gamma")
GB = 1024**3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def write_run(root: Path, index: int, name: str) -> Path:
    """One run's log: 60 steps of train/*, val/* against a defined ``epoch`` step metric,
    a key with four steps only, system samples (memory 28.4-28.9 GB, CPU %), and, for the
    first run, a histogram over ten steps."""
    from trackline.records import DefineMetric, Finish, Histogram, Metrics, RunStart, SystemSample
    from trackline.runlog import LogFile

    run_id = f"charts{index:02d}"
    run_dir = root / run_id
    run_dir.mkdir()
    log = LogFile(run_dir / "main.tlog")
    start = 1000.0
    log.append(RunStart(run_id=run_id, project="charts", name=name, start_time=start))
    log.append(DefineMetric("val/*", "min", "epoch"))
    for step in range(60):
        values: dict[str, float] = {
            "train/loss": 2.0 * math.exp(-step / (20 + 10 * index)) + 0.05 * index,
            "train/step_time_ms": 40.0 + index * 5 + (step % 7),
            "val_acc": 0.5 + step / 200 + index / 50,
        }
        if step < 4:
            values["short/count"] = float(step * (index + 1))
        if step % 10 == 9:
            values["val/loss"] = 1.5 / (step + 1) + 0.01 * index
            values["epoch"] = float(step // 10 + 1)
        log.append(Metrics(step, start + step * 0.2, values))
    for i in range(26):  # every half second for 12.5 s
        rss = (28.4 + 0.5 * i / 25 + 0.01 * index) * GB
        cpu = 28.4 + (i % 3) * 0.05
        log.append(SystemSample(start + i * 0.5, {"proc/rss_bytes": rss, "proc/cpu_percent": cpu}))
    if index == 0:
        for step in range(10):
            edges = [-1.0 + 0.25 * k for k in range(9)]
            counts = [float((k + step) % 8 + 1) * (step + 1) for k in range(8)]
            log.append(Histogram(step, start + step, "weights", edges, counts))
    log.append(Finish(time=start + 20, state="finished"))
    log.close()
    return run_dir


@pytest.fixture(scope="module")
def charts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from trackline._transport import Shipper

    root = tmp_path_factory.mktemp("charts")
    server = ServerProcess(root / "server").start()
    try:
        for index, name in enumerate(RUNS):
            run_dir = write_run(root, index, name)
            with Shipper(run_dir, server.url, ADMIN_KEY, live=False) as shipper:
                assert wait_for(lambda s=shipper: s.pump(final=True), timeout=60)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, charts_server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, charts_server.url)
    yield p
    p.close()
    p.check_clean()


def open_workspace(page: Page, system: bool = False) -> Any:
    """The workspace of the charts project, every chart panel loaded."""
    from playwright.sync_api import expect

    if system:
        page.context.add_init_script(
            f"localStorage.setItem('trackline.ws.{PROJECT}', JSON.stringify({{systemOpen: true}}))"
        )
    p = page.goto(f"/p/{PROJECT}")
    for key in ("train/loss", "train/step_time_ms"):
        expect(p.locator(f'.panel[data-key="{key}"]')).to_have_attribute("data-loaded", "true")
    return p


def chart_state(p: Any, selector: str) -> dict[str, Any]:
    """What uPlot was given and drew: axis titles and tick labels, series shown and alpha."""
    state: dict[str, Any] = p.evaluate(
        """(selector) => {
            const host = document.querySelector(selector);
            const u = host && host.chart && host.chart.plot;
            if (!u) return null;
            return {
                xTitle: host.dataset.xTitle, yTitle: host.dataset.yTitle,
                xLabel: u.axes[0].label ?? null, yLabel: u.axes[1].label ?? null,
                xSplits: u.axes[0]._splits, xValues: u.axes[0]._values,
                ySplits: u.axes[1]._splits, yValues: u.axes[1]._values,
                series: u.series.slice(1).map((s) => ({ label: s.label, show: s.show, alpha: s.alpha })),
                xMin: u.scales.x.min, xMax: u.scales.x.max,
                zoom: host.chart.zoom,
            };
        }""",
        selector,
    )
    assert state is not None, f"no chart at {selector}"
    return state


def panel_chart(key: str) -> str:
    return f'.panel[data-key="{key}"] .panel-chart'


def wait_chart(p: Any, selector: str) -> None:
    """Scroll a chart into view (panels fetch lazily) and wait until uPlot drew its axes."""
    p.locator(selector).scroll_into_view_if_needed()
    p.wait_for_function(
        "(s) => { const e = document.querySelector(s); return !!(e && e.chart && e.chart.plot && e.chart.plot.axes[0]._values); }",
        arg=selector,
    )


# -- tests ---------------------------------------------------------------------------------


def test_tick_and_title_rules_in_the_browser(page: Page) -> None:
    """js/util/ticks.js and js/util/keys.js, as the dashboard runs them."""
    p = page.goto("/projects")
    out = p.evaluate(
        """async () => {
            const t = await import("/js/util/ticks.js");
            const k = await import("/js/util/keys.js");
            return {
                memory: t.tickLabels([28.35, 28.4, 28.45, 28.5]),
                tenths: t.tickLabels([28.4, 28.6, 28.8, 29.0]),
                halves: t.tickLabels([0, 0.5, 1, 1.5]),
                noise: t.tickLabels([-0.2, -0.1, 5.551115123125783e-17, 0.1]),
                thousands: t.tickLabels([10000, 12500, 15000]),
                tiny: t.tickLabels([0.0001, 0.0002, 0.0003]),
                seconds: t.durationLabels([12, 12.5, 13, 13.5]),
                minutes: t.durationLabels([0, 30, 60, 90]),
                hours: t.durationLabels([0, 1800, 3600, 5400]),
                whole: t.INTEGER_INCRS.every(Number.isInteger) && t.INTEGER_INCRS.includes(1),
                titles: ["train/loss", "val_acc", "lr", "a/b/c_d"].map(k.keyTitle),
                units: ["train/step_time_ms", "epoch_s", "gpu/0/util_percent", "acc%", "data_bytes",
                        "lr", "loss", "constructor", "x_watts", "sys/temp_celsius"].map(k.keyUnit),
            };
        }"""
    )
    assert out["memory"] == ["28.35", "28.40", "28.45", "28.50"]
    assert out["tenths"] == ["28.4", "28.6", "28.8", "29.0"]
    assert out["halves"] == ["0.0", "0.5", "1.0", "1.5"]
    assert out["noise"] == ["-0.2", "-0.1", "0.0", "0.1"]
    assert out["thousands"] == ["10.0k", "12.5k", "15.0k"]
    assert out["tiny"] == ["1e-4", "2e-4", "3e-4"]
    assert out["seconds"] == ["12.0s", "12.5s", "13.0s", "13.5s"]
    assert out["minutes"] == ["0s", "30s", "1m", "1m 30s"]
    assert out["hours"] == ["0s", "30m", "1h", "1h 30m"]
    assert out["whole"]
    assert out["titles"] == ["loss", "val acc", "lr", "b/c d"]
    assert out["units"] == ["ms", "s", "%", "%", "bytes", "", "", "", "W", "°C"]


def test_axes_are_titled_with_x_and_unit(page: Page) -> None:
    from playwright.sync_api import expect

    p = open_workspace(page)
    for key in ("train/loss", "train/step_time_ms", "val/loss"):
        wait_chart(p, panel_chart(key))
    loss = chart_state(p, panel_chart("train/loss"))
    assert (loss["xTitle"], loss["xLabel"], loss["yTitle"], loss["yLabel"]) == (
        "Step",
        "Step",
        "",
        None,
    )
    timing = chart_state(p, panel_chart("train/step_time_ms"))
    assert (timing["xLabel"], timing["yTitle"], timing["yLabel"]) == ("Step", "ms", "ms")
    val = chart_state(p, panel_chart("val/loss"))
    assert (val["xTitle"], val["xLabel"]) == ("epoch", "epoch")  # define_metric's step metric
    # Friendly titles, the raw key on hover.
    title = p.locator('.panel[data-key="train/step_time_ms"] .panel-title')
    expect(title).to_have_text("step time ms")
    expect(title).to_have_attribute("title", "train/step_time_ms")
    expect(p.locator('.panel[data-key="val_acc"] .panel-title')).to_have_text("val acc")
    p.locator('.panel[data-key="train/loss"]').scroll_into_view_if_needed()
    page.shot("charts-axis-titles")
    # Another x axis for all: the titles follow.
    p.get_by_label("X axis").select_option("relative")
    p.wait_for_function(
        "(s) => document.querySelector(s)?.chart?.plot?.axes[0].label === 'Relative time'",
        arg=panel_chart("train/loss"),
    )
    p.get_by_label("X axis").select_option("step")


def test_the_raw_key_is_copyable(page: Page) -> None:
    from playwright.sync_api import expect

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    p = open_workspace(page)
    head = p.locator('.panel[data-key="train/step_time_ms"] .panel-head')
    head.hover()
    button = head.get_by_role("button", name="Copy key train/step_time_ms")
    button.click()
    expect(button).to_have_attribute("data-copied", "true")
    assert p.evaluate("navigator.clipboard.readText()") == "train/step_time_ms"


def test_step_ticks_are_whole_and_never_repeat(page: Page) -> None:
    p = open_workspace(page)
    selector = panel_chart("short/count")
    panel = p.locator('.panel[data-key="short/count"]')
    panel.scroll_into_view_if_needed()
    wait_chart(p, selector)
    state = chart_state(p, selector)
    # Steps 0..3 on ~400 px: uPlot's own increments would put ticks at 0.5, 1.5, ...
    assert state["xSplits"] and all(float(v).is_integer() for v in state["xSplits"])
    assert all("." not in v for v in state["xValues"])
    assert len(set(state["xValues"])) == len(state["xValues"])
    # Counts are whole numbers: so are their ticks.
    assert all(float(v).is_integer() for v in state["ySplits"])
    assert len(set(state["yValues"])) == len(state["yValues"])
    page.shot("charts-whole-ticks")


def test_system_chart_ticks_never_repeat(page: Page) -> None:
    from playwright.sync_api import expect

    p = open_workspace(page, system=True)
    memory = '.panel[data-system="Process memory (RSS)"] .panel-chart'
    cpu = '.panel[data-system="Process CPU %"] .panel-chart'
    expect(p.locator(memory)).to_have_attribute("data-series", "3")
    p.locator(memory).scroll_into_view_if_needed()
    for selector in (memory, cpu):
        wait_chart(p, selector)
    mem = chart_state(p, memory)
    # 28.4-28.9 GB: drawn in GB, titled GB, ticks distinct (not "28.9 GB" three times).
    assert (mem["yTitle"], mem["yLabel"], mem["xLabel"]) == ("GB", "GB", "Relative time")
    assert all(28 <= v <= 30 for v in mem["ySplits"])
    assert len(mem["yValues"]) >= 3 and len(set(mem["yValues"])) == len(mem["yValues"])
    for label, split in zip(mem["yValues"], mem["ySplits"], strict=True):
        assert abs(float(label) - split) < 0.005  # each label is its tick's value
    assert len(set(mem["xValues"])) == len(mem["xValues"])
    assert all(v.endswith("s") for v in mem["xValues"])
    usage = chart_state(p, cpu)
    assert usage["yTitle"] == "%"
    assert len(set(usage["yValues"])) == len(usage["yValues"])
    page.shot("charts-system-ticks")
    # System charts share one time axis: a zoom of one zooms all.
    drag(p, '.panel[data-system="Process memory (RSS)"]', 0.3, 0.7)
    p.wait_for_function("(s) => !!document.querySelector(s).chart.zoom", arg=cpu)
    zoom = chart_state(p, memory)["zoom"]
    assert zoom and 0 < zoom[0] < zoom[1] < 12.5
    assert chart_state(p, cpu)["zoom"] == zoom


def test_legend_lists_runs_highlights_and_toggles(page: Page) -> None:
    from playwright.sync_api import expect

    p = open_workspace(page)
    selector = panel_chart("train/loss")
    wait_chart(p, selector)
    legend = p.locator(f"{selector} .chart-legend .legend-item")
    expect(legend).to_have_count(3)
    names = legend.locator(".legend-name").all_text_contents()
    assert sorted(names) == sorted(RUNS)
    assert legend.first.locator(".swatch").is_visible()
    first = names[0]
    legend.first.hover()
    state = chart_state(p, selector)
    alphas = {s["label"]: s["alpha"] for s in state["series"]}
    assert alphas[first] == 1 and all(a < 1 for n, a in alphas.items() if n != first)
    page.shot("charts-legend-highlight")
    legend.first.click()
    expect(legend.first).to_have_attribute("aria-pressed", "false")
    state = chart_state(p, selector)
    shown = {s["label"]: s["show"] for s in state["series"]}
    assert shown == {n: n != first for n in names}
    p.mouse.move(0, 0)
    state = chart_state(p, selector)
    assert all(s["alpha"] == 1 for s in state["series"])  # no highlight once the mouse left
    page.shot("charts-legend-toggled")
    legend.first.click()
    expect(legend.first).to_have_attribute("aria-pressed", "true")
    assert all(s["show"] for s in chart_state(p, selector)["series"])


def test_histogram_heat_map_has_a_colour_scale(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/r/charts00")
    p.get_by_role("tab", name="Media").click()
    panel = p.locator('.hist-panel[data-key="weights"]')
    expect(panel).to_have_attribute("data-drawn", "10")
    scale = panel.locator(".hist-scale")
    expect(scale).to_be_visible()
    # The last step (9): counts ((k + 9) % 8 + 1) * 10, peak 80.
    expect(scale.locator(".scale-min")).to_have_text("0")
    expect(scale.locator(".scale-max")).to_have_text("80")
    expect(scale).to_have_attribute("data-max", "80")
    bar = scale.locator(".scale-bar")
    assert (bar.bounding_box() or {}).get("width", 0) > 50
    assert "linear-gradient" in bar.evaluate("(e) => getComputedStyle(e).backgroundImage")
    panel.scroll_into_view_if_needed()
    page.shot("charts-histogram-scale")


def drag(p: Any, key: str, start: float, end: float) -> None:
    """Drag-zoom across a chart (a metric key, or a selector of a panel) from start to end."""
    panel = key if key.startswith(".") else f'.panel[data-key="{key}"]'
    box = p.locator(f"{panel} .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    p.mouse.move(box["x"] + box["width"] * start, y)
    p.mouse.down()
    p.mouse.move(box["x"] + box["width"] * end, y, steps=6)
    p.mouse.up()


def test_zoom_is_synced_across_panels_on_one_x_axis(page: Page) -> None:
    from playwright.sync_api import expect

    p = open_workspace(page)
    for key in ("val/loss", "train/loss", "train/step_time_ms"):
        wait_chart(p, panel_chart(key))
    p.locator('.panel[data-key="train/loss"]').scroll_into_view_if_needed()
    drag(p, "train/loss", 0.2, 0.5)
    reset = p.locator('.panel[data-key="train/step_time_ms"]').get_by_role(
        "button", name="Reset zoom (or double-click the chart)"
    )
    expect(reset).to_be_visible()
    for key in ("train/loss", "train/step_time_ms"):
        expect(p.locator(f'.panel[data-key="{key}"] .panel-status')).to_have_text("full resolution")
    zoomed = chart_state(p, panel_chart("train/loss"))
    other = chart_state(p, panel_chart("train/step_time_ms"))
    assert zoomed["zoom"] and other["zoom"] == zoomed["zoom"]
    assert 0 < zoomed["zoom"][0] < zoomed["zoom"][1] < 59
    assert (other["xMin"], other["xMax"]) == tuple(zoomed["zoom"])
    assert chart_state(p, panel_chart("val/loss"))["zoom"] is None  # x is epoch: not the same axis
    page.shot("charts-zoom-synced")
    # A reset resets all.
    p.locator('.panel[data-key="train/loss"] .u-over').dblclick()
    expect(reset).to_be_hidden()
    assert chart_state(p, panel_chart("train/step_time_ms"))["zoom"] is None
    # Sync off: a zoom stays in its panel.
    p.get_by_label("Sync zoom").uncheck()
    drag(p, "train/loss", 0.2, 0.5)
    expect(p.locator('.panel[data-key="train/loss"] .panel-status')).to_have_text("full resolution")
    assert chart_state(p, panel_chart("train/loss"))["zoom"]
    assert chart_state(p, panel_chart("train/step_time_ms"))["zoom"] is None
    expect(reset).to_be_hidden()


def test_a_legend_of_many_runs_stays_compact(page: Page) -> None:
    """Twelve smoothed lines in one chart (js/chart.js on its own): eight legend entries
    and "+4 more"; opening shows all; hiding a run hides its raw line behind it too."""
    from playwright.sync_api import expect

    p = page.goto("/projects")
    p.evaluate(
        """async () => {
            const { LineChart } = await import("/js/chart.js");
            const host = document.createElement("div");
            host.id = "many";
            Object.assign(host.style, { position: "fixed", top: "60px", left: "20px", width: "520px",
                                        zIndex: 100, background: "white" });
            document.body.append(host);
            const lines = Array.from({ length: 12 }, (_, i) => ({
                id: `r${i}`, label: `run ${i}`, color: `hsl(${i * 30}, 70%, 45%)`,
                x: [0, 1, 2, 3], y: [i, i + 1.5, i + 1, i + 2],
            }));
            new LineChart(host, { height: 200 }).update(lines, { smoothing: 0.5, log: false, xKind: "step", xTitle: "Step" });
        }"""
    )
    items = p.locator("#many .legend-item")
    expect(items).to_have_count(8)
    more = p.locator("#many .legend-more")
    expect(more).to_have_text("+4 more")
    page.shot("charts-legend-many")
    more.click()
    expect(items).to_have_count(12)
    expect(more).to_have_text("fewer")
    items.nth(10).click()
    shown = p.evaluate(
        "() => document.querySelector('#many').chart.plot.series.map((s) => [s.label, s.show])"
    )
    hidden = [label for label, show in shown[1:] if not show]
    assert hidden == ["run 10", "run 10 (raw)"]
