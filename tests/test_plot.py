"""trackline.plot.* (W&B's wandb.plot.*): the computed curves and matrices, bad input, and
the charts drawn on the run page of a real server in a real browser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trackline
from _server import ADMIN_KEY, ServerProcess
from test_dashboard import CHROMIUM, Page
from test_dashboard import browser as browser  # the module's own chromium
from trackline._transport import Shipper

pytest.importorskip("pyarrow")

Y = np.array([0, 0, 1, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8])  # sklearn's roc_curve example


def rows(chart: Any, name: str) -> list[tuple[float, float]]:
    return [(r[1], r[2]) for r in chart.data if r[0] == name]


def test_roc_and_pr_curves_match_the_textbook_example() -> None:
    roc = trackline.plot.roc_curve(Y, SCORES, labels=["neg", "pos"], classes_to_plot=[1])
    assert roc.spec == {"kind": "line", "x": "fpr", "y": "tpr", "stroke": "class", "title": ""}
    # Thresholds 0.8, 0.4, 0.35, 0.1: (fpr, tpr) as sklearn.metrics.roc_curve gives them.
    assert rows(roc, "pos") == [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
    pr = trackline.plot.pr_curve(Y, SCORES, labels=["neg", "pos"], classes_to_plot=[1])
    assert rows(pr, "pos") == [(0.0, 1.0), (0.5, 1.0), (0.5, 0.5), (1.0, 2 / 3), (1.0, 0.5)]
    both = trackline.plot.roc_curve(Y, SCORES)  # a 1-D score: binary, both classes
    assert {r[0] for r in both.data} == {"0", "1"}
    many = trackline.plot.pr_curve(
        np.arange(5000) % 3, np.random.default_rng(0).dirichlet([1, 1, 1], 5000)
    )
    assert max(len(rows(many, c)) for c in "012") <= trackline.plot.MAX_POINTS


def test_confusion_matrix_line_series_and_bad_input() -> None:
    cm = trackline.plot.confusion_matrix(
        y_true=[0, 1, 2, 2], preds=[0, 2, 2, 1], class_names=["cat", "dog", "eel"]
    )
    counts = {(a, p): n for a, p, n in cm.data}
    assert (
        counts[("eel", "eel")] == 1 and counts[("dog", "eel")] == 1 and counts[("cat", "dog")] == 0
    )
    assert sum(counts.values()) == 4 and len(counts) == 9
    probs = np.eye(3)[[0, 2, 2, 1]]
    assert (
        cm.data
        == trackline.plot.confusion_matrix(
            probs=probs, y_true=[0, 1, 2, 2], class_names=["cat", "dog", "eel"]
        ).data
    )
    series = trackline.plot.line_series([[0, 1], [0, 2]], [[1, 2], [3, 4]], keys=["a", "b"])
    assert series.data == [["a", 0, 1], ["a", 1, 2], ["b", 0, 3], ["b", 2, 4]]
    with pytest.raises(ValueError, match="one of the two"):
        trackline.plot.confusion_matrix(y_true=[0], probs=[[1.0]], preds=[0])
    with pytest.raises(ValueError, match="2 keys for 1 lines"):
        trackline.plot.line_series([0], [[1]], keys=["a", "b"])
    with pytest.raises(ValueError, match="has no column 'nope'"):
        trackline.plot.scatter(trackline.Table(columns=["a"], data=[[1]]), "a", "nope")
    with pytest.raises(ValueError, match="3 labels for 2 rows"):
        trackline.plot.roc_curve([0, 1, 1], [[0.1, 0.9], [0.8, 0.2]])


pytestmark_browser = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
)


@pytest.fixture
def charted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerProcess, str]]:
    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    server = ServerProcess(tmp_path / "server").start()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    probs = rng.dirichlet([1, 1, 1], 300)
    probs[np.arange(300), y] += 0.8
    table = trackline.Table(
        columns=["lr", "acc"], data=[[10**-k, 0.5 + k / 10] for k in range(1, 5)]
    )
    run = trackline.init(project="plots", mode="offline")
    run.log(
        {
            "pr": trackline.plot.pr_curve(y, probs, labels=["a", "b", "c"], title="PR"),
            "cm": trackline.plot.confusion_matrix(
                probs=probs, y_true=y, class_names=["a", "b", "c"]
            ),
            "sweep": trackline.plot.scatter(table, "lr", "acc", title="lr vs acc"),
            "accs": trackline.plot.bar(table, "lr", "acc"),
            "spread": trackline.plot.histogram(
                trackline.Table(columns=["v"], data=[[float(v)] for v in rng.normal(size=200)]), "v"
            ),
        }
    )
    run.finish()
    shipper = Shipper(run.dir, server.url, budget=30, live=False)
    deadline = time.monotonic() + 60
    while not shipper.pump(final=True) and time.monotonic() < deadline:
        time.sleep(0.1)
    shipper.close()
    try:
        yield server, run.id
    finally:
        server.stop()


@pytestmark_browser
@pytest.mark.slow
def test_charts_are_drawn_on_the_run_page(browser: Any, charted: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import expect

    server, run_id = charted
    page = Page(browser, server.url)
    try:
        p = page.goto(f"/p/admin/plots/r/{run_id}?tab=Media")
        line = p.locator('.custom-chart[data-kind="line"] .cc-plot')
        expect(line).to_have_attribute("data-series", "3")  # one PR curve per class
        expect(p.locator(".cc-matrix tbody tr")).to_have_count(3)
        expect(p.locator('.custom-chart[data-kind="scatter"] circle')).to_have_count(4)
        expect(p.locator('.custom-chart[data-kind="bar"] .rp-bar')).to_have_count(4)
        expect(p.locator('.custom-chart[data-kind="histogram"] rect').first).to_be_visible()
        p.locator(".cc-matrix").scroll_into_view_if_needed()
        page.shot("plot-charts")
        page.check_clean()
    finally:
        page.close()


@pytestmark_browser
@pytest.mark.slow
def test_image_masks_and_boxes_are_drawn_with_class_toggles(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv("TRACKLINE_AGENT", "0")
    monkeypatch.setenv("TRACKLINE_API_KEY", ADMIN_KEY)
    server = ServerProcess(tmp_path / "server").start()
    try:
        image = np.zeros((40, 60, 3), np.uint8)
        mask = np.zeros((40, 60), np.uint8)
        mask[10:30, 10:30] = 1  # a "cat" square on the left
        mask[:, 45:] = 2  # "sky" on the right
        boxes = [
            {
                "position": {"minX": 0.1, "maxX": 0.5, "minY": 0.25, "maxY": 0.75},
                "class_id": 1,
                "box_caption": "cat",
                "scores": {"conf": 0.9},
            },
            {
                "position": {"middle": [50, 20], "width": 10, "height": 10},
                "domain": "pixel",
                "class_id": 2,
            },
        ]
        run = trackline.init(project="seg", mode="offline")
        run.log(
            {
                "seg": trackline.Image(
                    image,
                    masks={
                        "pred": {"mask_data": mask, "class_labels": {0: "bg", 1: "cat", 2: "sky"}}
                    },
                    boxes={"truth": {"box_data": boxes, "class_labels": {1: "cat", 2: "sky"}}},
                )
            }
        )
        run.finish()
        with pytest.raises(ValueError, match="0 to 255"):
            trackline.Image(image, masks={"m": {"mask_data": np.full((40, 60), 300)}})
        with pytest.raises(TypeError, match="needs 'box_data'"):
            trackline.Image(image, boxes={"b": {"boxes": []}})
        shipper = Shipper(run.dir, server.url, budget=30, live=False)
        deadline = time.monotonic() + 60
        while not shipper.pump(final=True) and time.monotonic() < deadline:
            time.sleep(0.1)
        shipper.close()
        page = Page(browser, server.url)
        try:
            p = page.goto(f"/p/admin/seg/r/{run.id}?tab=Media")
            item = p.locator('.media-panel[data-key="seg"] .media-item')
            expect(item.locator(".overlay-box")).to_have_count(2)
            p.wait_for_function(
                "() => document.querySelector('.media-panel[data-key=\"seg\"]').dataset.loaded === 'true'"
            )

            def mask_pixel(x: int, y: int) -> list[int]:
                return p.evaluate(
                    f"""() => Array.from(document.querySelector('.overlay-mask')
                        .getContext('2d').getImageData({x}, {y}, 1, 1).data)"""
                )

            assert mask_pixel(20, 20)[3] > 0 and mask_pixel(55, 5)[3] > 0  # cat, sky drawn
            page.shot("image-overlays")
            item.get_by_label("pred: cat").uncheck()
            assert mask_pixel(20, 20)[3] == 0 and mask_pixel(55, 5)[3] > 0
            item.get_by_label("truth: sky").uncheck()
            expect(item.locator(".overlay-box")).to_have_count(1)
            page.check_clean()
        finally:
            page.close()
    finally:
        server.stop()
