"""The run page's media in a real browser: images per step, histograms, audio, video, tables.

One run is logged by the real SDK (online, in a child process): solid-colour images at
three steps (one caption hostile), a ``trackline.Histogram`` at every step,
``trackline.watch`` gradient histograms of a tiny torch model, a WAV clip, a GIF video
and a Parquet table. Chromium shows it from a real server; the browser helpers come
from ``test_dashboard``. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import ServerProcess
from test_dashboard import CHROMIUM, Page, sdk_env
from test_dashboard import browser as browser  # the module's own chromium

XSS_CAPTION = "<img src=x onerror=alert(1)>"
COLOURS = [(220, 30, 30), (30, 180, 60), (40, 70, 230)]  # steps 0, 1, 2
STEPS = 12
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

SEED_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, psutil, torch, trackline

    colours, xss, steps = json.loads(sys.argv[1])
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    run = trackline.init(project="media", name="media-run", config={"lr": 0.05})
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    trackline.watch(model, log="gradients", log_freq=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(steps):
        x = torch.randn(64, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        row = {
            "train/loss": loss.item(),
            "activations": trackline.Histogram(rng.normal(step * 0.25, 1 + 0.08 * step, 2000)),
        }
        if step < len(colours):
            solid = np.zeros((48, 64, 3), np.uint8)
            solid[:] = colours[step]
            ramp = np.linspace(0, 1, 48 * 64 * 3).reshape(48, 64, 3) * (step + 1) / 3
            row["samples"] = [
                trackline.Image(solid, caption=f"solid colour at step {step}"),
                trackline.Image(ramp, caption=xss),
            ]
        if step == 0:
            t = np.arange(8000) / 16000
            row["speech"] = trackline.Audio(0.3 * np.sin(2 * np.pi * 440 * t), 16000, caption="A4 tone")
            frames = np.zeros((8, 32, 32, 3), np.uint8)
            for i in range(8):
                frames[i, 8:24, i * 3 : i * 3 + 8] = (250, 160, 20)
            row["rollout"] = trackline.Video(frames, fps=4, caption="moving square")
            row["predictions"] = trackline.Table(
                columns=["id", "label", "score", xss],
                data=[[i, f"class {i % 3}", round(0.1 * i, 2), xss] for i in range(10)],
            )
        run.log(row, step=step)
    run.finish()
    deadline = time.monotonic() + 120
    while run._agent is not None and time.monotonic() < deadline:
        try:
            if psutil.Process(run._agent.pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    print(json.dumps({"id": run.id}))
    """
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("dashboard-media")
    server = ServerProcess(root / "server").start()
    try:
        (root / "seed.py").write_text(SEED_SCRIPT)
        result = subprocess.run(
            [sys.executable, str(root / "seed.py"), json.dumps([COLOURS, XSS_CAPTION, STEPS])],
            cwd=root,
            env=sdk_env(server, root),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        run_id: str = json.loads(result.stdout.strip().splitlines()[-1])["id"]
        with server.client() as client:
            files = client.get(f"/runs/{run_id}/files").json()["files"]
        media_files = [f for f in files if f.get("kind") == "media"]
        assert media_files and all(f["uploaded"] for f in media_files), files
        yield server, run_id
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, seeded: tuple[ServerProcess, str]) -> Iterator[Page]:
    server, _ = seeded
    p = Page(browser, server.url)
    p.page.add_init_script("window.__xss = []; window.alert = (m) => window.__xss.push(String(m));")
    yield p
    p.close()
    p.check_clean()


def open_media(page: Page, run_id: str) -> Any:
    from playwright.sync_api import expect

    p = page.goto(f"/p/admin/media/r/{run_id}")
    p.get_by_role("tab", name="Media").click()
    expect(p.locator(".media-section").first).to_be_visible()
    return p


def centre_pixel(p: Any, selector: str) -> list[int]:
    """The decoded colour at the centre of the n-th matching <img> (drawn on a canvas)."""
    return list(
        p.evaluate(
            """(selector) => {
                const img = document.querySelector(selector);
                const c = document.createElement("canvas");
                c.width = img.naturalWidth;
                c.height = img.naturalHeight;
                const ctx = c.getContext("2d");
                ctx.drawImage(img, 0, 0);
                return Array.from(ctx.getImageData(c.width >> 1, c.height >> 1, 1, 1).data);
            }""",
            selector,
        )
    )


def close_to(rgba: list[int], rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 2 for a, b in zip(rgba, rgb, strict=False)) and rgba[3] == 255


def test_images_follow_the_step_slider(page: Page, seeded: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import expect

    _, run_id = seeded
    p = open_media(page, run_id)
    panel = p.locator('.media-panel[data-key="samples"]')
    first = '.media-panel[data-key="samples"] .media-item:first-child img'
    # The newest step first.
    expect(panel).to_have_attribute("data-step", "2")
    expect(panel).to_have_attribute("data-loaded", "true")
    expect(panel.locator("img")).to_have_count(2)
    assert p.locator(first).evaluate("img => img.src.startsWith('blob:')")
    assert p.locator(first).evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    assert close_to(centre_pixel(p, first), COLOURS[2])
    expect(panel.locator(".media-caption").first).to_have_text("solid colour at step 2")
    # The hostile caption is text: shown as typed, no element made of it, no script run.
    expect(panel.locator(".media-caption", has_text=XSS_CAPTION)).to_be_visible()
    page.shot("media-images")

    slider = panel.locator('input[name="step"]')
    slider.press("Home")
    expect(panel).to_have_attribute("data-step", "0")
    expect(panel).to_have_attribute("data-loaded", "true")
    assert close_to(centre_pixel(p, first), COLOURS[0])
    expect(panel.locator(".media-caption").first).to_have_text("solid colour at step 0")
    panel.get_by_role("button", name="Next step").click()
    expect(panel).to_have_attribute("data-step", "1")
    expect(panel).to_have_attribute("data-loaded", "true")
    assert close_to(centre_pixel(p, first), COLOURS[1])

    # Click to enlarge: a modal with the caption; arrow keys move within the step.
    panel.locator(".media-thumb").first.click()
    box = p.locator("dialog.lightbox")
    expect(box).to_be_visible()
    expect(box.locator(".lightbox-caption")).to_have_text("solid colour at step 1")
    p.wait_for_function(
        "() => document.querySelector('.lightbox-img').complete && document.querySelector('.lightbox-img').naturalWidth === 64"
    )
    p.keyboard.press("ArrowRight")
    expect(box.locator(".lightbox-caption")).to_have_text(XSS_CAPTION)
    page.shot("media-lightbox")
    p.keyboard.press("Escape")
    expect(box).to_be_hidden()

    assert p.evaluate("window.__xss") == []
    assert p.locator("img[src='x']").count() == 0


def test_histograms_draw_over_steps(page: Page, seeded: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import expect

    _, run_id = seeded
    p = open_media(page, run_id)
    logged = p.locator('.hist-panel[data-key="activations"]')
    expect(logged).to_have_attribute("data-drawn", str(STEPS))
    watched = p.locator('.hist-panel[data-key^="gradients/"]')
    expect(watched).to_have_count(4)  # two Linear layers: weight and bias
    expect(p.locator('.hist-panel[data-key="gradients/0.weight"]')).to_contain_text(
        "from trackline.watch"
    )
    coloured = logged.locator("canvas").evaluate(
        """(canvas) => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
            }
            return n;
        }"""
    )
    assert coloured > 2000, "the histogram canvas is (nearly) empty"
    # Hover: the exact bin and count of that step; the slider moves the chosen step.
    logged.scroll_into_view_if_needed()
    canvas_box = logged.locator("canvas").bounding_box()
    assert canvas_box is not None
    p.mouse.move(canvas_box["x"] + canvas_box["width"] * 0.3, canvas_box["y"] + 100)
    tip = logged.locator(".hist-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("step")
    expect(tip).to_contain_text("count")
    slider = logged.locator('input[name="step"]')
    expect(logged.locator(".step-slider")).to_have_attribute("data-step", str(STEPS - 1))
    slider.press("Home")
    expect(logged.locator(".step-slider")).to_have_attribute("data-step", "0")
    p.mouse.move(canvas_box["x"] + canvas_box["width"] * 0.6, canvas_box["y"] + 80)
    page.shot("media-histograms")


def test_audio_video_and_table(page: Page, seeded: tuple[ServerProcess, str]) -> None:
    from playwright.sync_api import expect

    _, run_id = seeded
    p = open_media(page, run_id)
    audio = p.locator('.media-panel[data-key="speech"] audio')
    expect(audio).to_have_count(1)
    p.wait_for_function(
        "() => { const a = document.querySelector('.media-panel[data-key=\"speech\"] audio'); return a && a.readyState >= 1; }",
        timeout=TIMEOUT_MS,
    )
    assert audio.evaluate("a => a.src.startsWith('blob:')")
    assert abs(audio.evaluate("a => a.duration") - 0.5) < 0.01
    expect(p.locator('.media-panel[data-key="speech"] .media-meta')).to_contain_text("16 kHz")

    video = p.locator('.media-panel[data-key="rollout"]')
    expect(video).to_have_attribute("data-loaded", "true")
    assert video.locator("img").evaluate("img => [img.naturalWidth, img.src.slice(0, 5)]") == [
        32,
        "blob:",
    ]
    expect(video.locator(".media-meta")).to_contain_text("8 frames")

    table = p.locator('.table-panel[data-key="predictions"]')
    expect(table.locator(".panel-status")).to_have_text("10 rows \u00d7 4 columns")
    expect(table.locator("th .th-name")).to_have_text(["id", "label", "score", XSS_CAPTION])
    expect(table.locator(".col-type").first).to_have_text("int64")
    with p.expect_download() as download:
        table.get_by_role("button", name="Parquet").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename == "predictions-0.parquet"
    assert saved.read_bytes()[:4] == b"PAR1"
    table.scroll_into_view_if_needed()
    page.shot("media-audio-video-table")
    assert p.evaluate("window.__xss") == []
    assert p.locator("img[src='x']").count() == 0


def test_sections_in_order_and_the_empty_state(
    page: Page, seeded: tuple[ServerProcess, str]
) -> None:
    from playwright.sync_api import expect

    _, run_id = seeded
    p = open_media(page, run_id)
    expect(p.locator(".media-section")).to_have_count(5)
    sections = p.locator(".media-section").evaluate_all("els => els.map(e => e.dataset.section)")
    assert sections == ["image", "video", "audio", "histogram", "table"]
    # A run that logged no media (the server's answers replaced): a hint, not a blank page.
    p.route("**/api/v1/runs/*/media", lambda route: route.fulfill(json={"media": []}))
    p.route("**/api/v1/runs/*/histograms", lambda route: route.fulfill(json={"histograms": []}))
    p.get_by_role("tab", name="Overview").click()
    p.get_by_role("tab", name="Media").click()
    expect(p.locator(".media-empty")).to_contain_text("No media")
    expect(p.locator(".media-empty pre")).to_contain_text("trackline.Image")


def test_table_rows_where_the_server_offers_them(
    page: Page, seeded: tuple[ServerProcess, str]
) -> None:
    """The rows view lights up when the API lists the table endpoint (answers stubbed here)."""
    from playwright.sync_api import expect

    _, run_id = seeded
    p = page.page
    p.route(
        "**/api/v1/openapi.json",
        lambda route: route.fulfill(
            json={"paths": {"/api/v1/runs/{run_id}/media/{sha256}/table": {"get": {}}}}
        ),
    )
    asked: list[str] = []

    def rows(route: Any) -> None:
        asked.append(route.request.url)
        offset = int(route.request.url.split("offset=")[1].split("&")[0])
        body = {
            "columns": ["id", "label", "score", XSS_CAPTION],
            "total": 10,
            "offset": offset,
            "rows": [[i, f"class {i % 3}", 0.1 * i, XSS_CAPTION] for i in range(offset, 10)][:6],
        }
        route.fulfill(json=body)

    p.route("**/api/v1/runs/*/media/*/table?*", rows)
    open_media(page, run_id)
    table = p.locator('.table-panel[data-key="predictions"]')
    body = table.locator("tbody tr")
    expect(body).to_have_count(6)
    expect(body.first.locator("td")).to_have_text(["0", "class 0", "0", XSS_CAPTION])
    expect(table.locator(".table-note")).to_contain_text("Rows 1\u20136 of 10")
    table.get_by_role("button", name="More rows").click()
    expect(body).to_have_count(10)
    assert "limit=100" in asked[0] and "offset=6" in asked[1]
    assert p.evaluate("window.__xss") == []
    assert p.locator("img[src='x']").count() == 0
