"""The web dashboard in a real browser, against a real server seeded by the real SDK.

Playwright (Python) drives Debian's chromium (``/usr/bin/chromium``); the server is
``python -m trackline.server`` on loopback (``_server.ServerProcess``); the runs are
logged by ``trackline.init``/``run.log`` in a child process whose agent ships them
online, from a git work tree with uncommitted changes (so the run has a diff).
Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _server import ADMIN_KEY, ServerProcess, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PROJECT = "admin/vision"
PUBLIC_PROJECT = "admin/open-demo"
XSS_NAME = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

# The training side: the real SDK, online, in its own process and git work tree.
SEED_SCRIPT = textwrap.dedent(
    """
    import json, math, random, sys, time
    import psutil, trackline

    with open(sys.argv[1]) as f:
        specs = json.load(f)
    runs = []
    for spec in specs:
        run = trackline.init(
            project=spec["project"], name=spec["name"], config=spec["config"],
            tags=spec["tags"], notes=spec.get("notes"), group=spec.get("group"),
        )
        rng = random.Random(spec["seed"])
        lr = spec["config"]["lr"]
        for step in range(spec["steps"]):
            loss = 2.0 * math.exp(-step * lr * 8) + 0.1 + 0.08 * rng.random()
            row = {"train/loss": loss, "train/acc": 1 - loss / 2.5, "lr": lr, "epoch": step // 50}
            if step % 20 == 19:
                row["eval/loss"] = loss * 1.15
                row["eval/acc"] = 1 - loss / 2.2
            run.log(row, step=step)
            if step % 50 == 0:
                time.sleep(0.1)  # long enough for a few system samples
        run.summary["best_acc"] = 1 - min(2.0 * math.exp(-s * lr * 8) + 0.1 for s in range(spec["steps"])) / 2.5
        for alert in spec.get("alerts", []):
            trackline.alert(**alert)
        if spec.get("fail"):
            run.finish(exit_code=1, state="failed", traceback="RuntimeError: seeded failure")
        else:
            run.finish()
        runs.append(run)
    for run in runs:
        agent = run._agent
        if agent is None:
            continue
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if psutil.Process(agent.pid).status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.1)
    print(json.dumps({run.name: run.id for run in runs}))
    """
)


LIVE_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import trackline

    stop = sys.argv[1]
    run = trackline.init(project="live", name="live-run", config={"lr": 0.1})
    step = 0
    while not os.path.exists(stop) and step < 20000:
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
        step += 1
        time.sleep(0.02)
    run.finish()
    """
)


def run_specs() -> list[dict[str, Any]]:
    base = [
        ("baseline", 0.01, "adam", ["baseline"], "sweep-a"),
        ("wide-net", 0.003, "adam", ["wide"], "sweep-a"),
        ("slow-lr", 0.001, "sgd", ["slow", "baseline"], "sweep-b"),
        ("fast-lr", 0.03, "sgd", ["fast"], "sweep-b"),
        ("tiny-batch", 0.005, "adam", ["small"], "sweep-a"),
    ]
    specs: list[dict[str, Any]] = []
    for i, (name, lr, opt, tags, group) in enumerate(base):
        specs.append(
            {
                "project": "vision",
                "name": name,
                "seed": i,
                "steps": 300,
                "tags": tags,
                "group": group,
                "config": {
                    "lr": lr,
                    "optimizer": opt,
                    "batch_size": 32 * (i + 1),
                    "model": {"depth": 2 + i, "width": 64},
                },
                "notes": f"Run **{name}**: lr {lr}" if i == 0 else None,
                "fail": name == "fast-lr",
            }
        )
    # Hostile strings everywhere a user can put one.
    specs.append(
        {
            "project": "vision",
            "name": XSS_NAME,
            "seed": 9,
            "steps": 120,
            "tags": ["<b>bold</b>", 'x"onmouseover=alert(2)'],
            "group": "<script>alert(3)</script>",
            "config": {
                "lr": 0.02,
                "optimizer": "<i>adam</i>",
                "<script>key": "</td><img src=y onerror=alert(4)>",
                "batch_size": 8,
            },
            "notes": "<img src=z onerror=alert(5)> [click](javascript:alert(6)) **safe**",
            "alerts": [
                {"title": "<b>loss spike</b>", "text": "<img src=w onerror=alert(7)>"},
                {"title": "done", "text": "finished", "level": "WARN"},
            ],
        }
    )
    specs.append(
        {
            "project": "open-demo",
            "name": "public-run",
            "seed": 3,
            "steps": 100,
            "tags": [],
            "config": {"lr": 0.01, "optimizer": "adam"},
        }
    )
    return specs


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def sdk_env(server: ServerProcess, work: Path) -> dict[str, str]:
    """The environment of a training process that logs online to ``server``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_")}
    env.update(
        TRACKLINE_SERVER=server.url,
        TRACKLINE_API_KEY=ADMIN_KEY,
        TRACKLINE_DIR=str(work / "tl"),
        TRACKLINE_SYSTEM_INTERVAL="0.2",
        TRACKLINE_UPLOAD_BACKOFF_MAX="0.5",
        TRACKLINE_HEARTBEAT_INTERVAL="1",
        # An agent whose test server is gone stops trying soon (not after a day).
        TRACKLINE_UPLOAD_GIVE_UP="60",
        HOME=str(work),
    )
    return env


def seed(server: ServerProcess, work: Path) -> dict[str, str]:
    """Log the runs with the SDK (online); returns run name -> id."""
    repo = work / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI")
    (repo / "train.py").write_text("LR = 0.1\nEPOCHS = 10\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "train.py").write_text("LR = 0.01  # tuned\nEPOCHS = 10\n")
    specs = work / "specs.json"
    specs.write_text(json.dumps(run_specs()))
    (work / "seed.py").write_text(SEED_SCRIPT)
    env = sdk_env(server, work)
    result = subprocess.run(
        [sys.executable, str(work / "seed.py"), str(specs)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ids: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    with server.client() as client:
        client.patch(f"/projects/{PUBLIC_PROJECT}", json={"public": True}).raise_for_status()
        found = client.get(f"/projects/{PROJECT}/runs", params={"limit": 100}).json()
        assert found["total"] == len(ids) - 1
    return ids


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    root = tmp_path_factory.mktemp("dashboard")
    server = ServerProcess(root / "server").start()
    try:
        yield server, seed(server, root)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


class Page:
    """A browser page on the dashboard that fails the test on any script error or dialog."""

    def __init__(self, browser: Any, base: str, key: str | None = ADMIN_KEY) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        if key:
            self.context.add_init_script(
                f"localStorage.setItem('trackline.apiKey', {json.dumps(key)})"
            )
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        self.page.on("dialog", self._dialog)
        self.base = base

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, hash_path: str) -> Any:
        self.page.goto(f"{self.base}/#{hash_path}")
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=False)

    def close(self) -> None:
        self.context.close()

    def check_clean(self) -> None:
        assert not self.dialogs, f"a script ran a dialog: {self.dialogs}"
        assert not self.errors, f"errors in the page: {self.errors}"


@pytest.fixture
def page(browser: Any, seeded: tuple[ServerProcess, dict[str, str]]) -> Iterator[Page]:
    server, _ = seeded
    p = Page(browser, server.url)
    yield p
    p.close()
    p.check_clean()


def run_rows(page: Any) -> Any:
    return page.locator(".vt-row.vt-run")


def drawn_series(page: Any, key: str) -> int:
    return int(
        page.locator(f'.panel[data-key="{key}"] .panel-chart').get_attribute("data-series") or 0
    )


def coloured_pixels(page: Any, key: str) -> int:
    """Saturated pixels on the panel's canvas: series strokes (axes and grid are grey)."""
    return int(
        page.evaluate(
            """(key) => {
                const canvas = document.querySelector(`.panel[data-key="${key}"] canvas`);
                if (!canvas) return 0;
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 0; i < data.length; i += 4) {
                    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                    if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
                }
                return n;
            }""",
            key,
        )
    )


# -- tests ---------------------------------------------------------------------------------


def test_projects_page_lists_projects(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto("/projects")
    row = p.locator(f'tr.project-row[data-project="{PROJECT}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("6")
    expect(p.locator(f'tr.project-row[data-project="{PUBLIC_PROJECT}"]')).to_contain_text("public")
    page.shot("projects")


def test_table_lists_runs_and_charts_draw(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}")
    expect(run_rows(p)).to_have_count(6)
    for name in ("baseline", "wide-net", "slow-lr", "fast-lr", "tiny-batch"):
        expect(p.locator(".run-link", has_text=name)).to_be_visible()
    expect(p.locator(f'.vt-row[data-run="{ids["fast-lr"]}"] .state')).to_have_text("failed")
    panel = p.locator('.panel[data-key="train/loss"] .panel-chart')
    expect(panel).to_have_attribute("data-series", "6")
    expect(p.locator('.panel-section[data-section="eval"]')).to_be_visible()
    p.wait_for_function(
        "() => document.querySelector('.panel[data-key=\"train/loss\"] canvas') !== null"
    )
    assert coloured_pixels(p, "train/loss") > 200, "the chart's canvas shows no series"
    page.shot("workspace")


def test_filter_and_group_change_the_table(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")
    expect(run_rows(p)).to_have_count(6)
    box = p.locator('input[name="run-filter"]')
    box.fill("lr < 0.005")
    box.press("Enter")
    expect(run_rows(p)).to_have_count(2)  # slow-lr 0.001, wide-net 0.003
    expect(p.locator(".run-link", has_text="slow-lr")).to_be_visible()
    expect(p.locator(".run-link", has_text="baseline")).to_have_count(0)
    expect(p.locator('.panel[data-key="train/loss"] .panel-chart')).to_have_attribute(
        "data-series", "2"
    )
    page.shot("filtered")
    box.fill("")
    box.press("Enter")
    expect(run_rows(p)).to_have_count(6)

    p.locator('select[name="group-by"]').select_option("config.optimizer")
    groups = p.locator(".vt-row.vt-group")
    expect(groups).to_have_count(3)  # adam, sgd, <i>adam</i>
    expect(run_rows(p)).to_have_count(0)  # collapsed
    group = groups.filter(has_text="optimizer = sgd")
    expect(group).to_contain_text("2")
    group.locator(".group-toggle").click()
    expect(run_rows(p)).to_have_count(2)
    page.shot("grouped")
    p.locator('select[name="group-by"]').select_option("")
    expect(run_rows(p)).to_have_count(6)


def test_toggling_a_run_changes_the_series_drawn(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}")
    chart = p.locator('.panel[data-key="train/loss"] .panel-chart')
    expect(chart).to_have_attribute("data-series", "6")
    eye = p.locator(f'.vt-row[data-run="{ids["baseline"]}"] button.eye')
    eye.click()
    expect(chart).to_have_attribute("data-series", "5")
    expect(eye).to_have_attribute("aria-pressed", "false")
    eye.click()
    expect(chart).to_have_attribute("data-series", "6")


def test_drag_zoom_refetches_the_range(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}")
    panel = p.locator('.panel[data-key="train/loss"]')
    expect(panel).to_have_attribute("data-loaded", "true")
    panel.scroll_into_view_if_needed()
    box = panel.locator(".u-over").bounding_box()
    assert box is not None
    with p.expect_request(
        lambda r: r.url.endswith("/metrics/series") and '"range"' in (r.post_data or "")
    ) as request:
        p.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)
        p.mouse.down()
        p.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2, steps=6)
        p.mouse.up()
    low, high = json.loads(request.value.post_data or "{}")["range"]
    assert 0 < low < high < 300
    expect(panel.locator(".panel-status")).to_have_text("full resolution")
    reset = panel.get_by_role("button", name="Reset zoom (or double-click the chart)")
    expect(reset).to_be_visible()
    panel.locator(".u-over").dblclick()
    expect(reset).to_be_hidden()
    expect(panel.locator(".panel-status")).to_contain_text("pts")


def test_run_page_shows_git_diff_and_notes_persist(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}/r/{ids['baseline']}")
    expect(p.locator(".run-name")).to_have_text("baseline")
    expect(p.locator(".info-grid")).to_contain_text("main")  # the branch
    diff = p.locator("pre.diff")
    expect(diff).to_contain_text("LR = 0.01  # tuned")
    expect(diff.locator(".d-add")).to_contain_text(["+LR = 0.01  # tuned"])
    expect(diff.locator(".d-del")).to_contain_text(["-LR = 0.1"])
    expect(p.locator(".notes-view strong")).to_have_text("baseline")
    expect(p.locator(".tree")).to_contain_text("optimizer")
    page.shot("run-overview")

    p.get_by_role("button", name="Edit").click()
    p.locator('textarea[name="notes"]').fill("Tuned **lr**; see `train.py`.\n\n- one\n- two")
    p.get_by_role("button", name="Save notes").click()
    expect(p.locator(".notes-view strong")).to_have_text("lr")
    p.reload()
    expect(p.locator(".notes-view strong")).to_have_text("lr")
    expect(p.locator(".notes-view li")).to_have_count(2)
    expect(p.locator(".notes-view code")).to_have_text("train.py")

    p.get_by_role("tab", name="Charts").click()
    expect(p.locator('.panel[data-key="train/loss"] .panel-chart')).to_have_attribute(
        "data-series", "1"
    )
    p.get_by_role("tab", name="System").click()
    expect(p.locator(".panel[data-system]").first).to_be_visible()
    page.shot("run-system")
    p.get_by_role("tab", name="Files").click()
    expect(p.locator('tr[data-path="git.diff"]')).to_be_visible()


def test_user_strings_never_become_html(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.page
    p.add_init_script("window.__xss = []; window.alert = (m) => window.__xss.push(String(m));")
    page.goto(f"/p/{PROJECT}")
    expect(p.locator(".run-link", has_text=XSS_NAME)).to_be_visible()
    expect(p.locator(".tag", has_text="<b>bold</b>").first).to_be_visible()
    p.locator('select[name="group-by"]').select_option("group")
    expect(p.locator(".vt-row.vt-group", has_text="<script>alert(3)</script>")).to_be_visible()
    page.goto(f"/p/{PROJECT}/r/{ids[XSS_NAME]}")
    expect(p.locator(".run-name")).to_have_text(XSS_NAME)
    expect(p.locator(".notes-view")).to_contain_text("<img src=z onerror=alert(5)>")
    expect(p.locator(".tree")).to_contain_text("<script>key")
    # Alerts (wandb.alert) listed on the run page, newest first, as text.
    items = p.locator(".alerts .alert-item")
    expect(items).to_have_count(2)
    expect(items.first).to_have_text("WARN: done finished")
    expect(items.nth(1)).to_contain_text("<b>loss spike</b> <img src=w onerror=alert(7)>")
    expect(p.locator(".summary-table")).not_to_contain_text("_alerts")
    page.shot("run-alerts")
    # A javascript: link is refused: no link, its source shows as text.
    expect(p.locator(".notes-view")).to_contain_text("[click](javascript:alert(6))")
    expect(p.locator(".notes-view a", has_text="click")).to_have_count(0)
    page.goto(f"/p/{PROJECT}/compare?runs={ids[XSS_NAME]},{ids['baseline']}")
    expect(p.locator(".compare-table").first).to_contain_text("<i>adam</i>")
    page.shot("xss-compare")
    assert p.evaluate("window.__xss") == []
    assert (
        p.locator(
            "img[src='x'], img[src='y'], img[src='z'], img[src='w'], b, script:not([src])"
        ).count()
        == 0
    )
    assert not page.dialogs


def test_compare_highlights_differences(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    chosen = ",".join(ids[n] for n in ("baseline", "slow-lr", "fast-lr"))
    p = page.goto(f"/p/{PROJECT}/compare?runs={chosen}")
    row = p.locator("tr.differs", has_text="optimizer")
    expect(row).to_be_visible()
    expect(row.locator("td.changed")).to_have_count(2)
    expect(p.locator(".parcoords canvas")).to_be_visible()
    page.shot("compare")


def test_bulk_tag_selected_runs(page: Page, seeded: tuple[ServerProcess, dict[str, str]]) -> None:
    from playwright.sync_api import expect

    server, ids = seeded
    p = page.goto(f"/p/{PROJECT}")
    for name in ("wide-net", "tiny-batch"):
        p.locator(f'.vt-row[data-run="{ids[name]}"] input.run-select').check()
    bar = p.locator(".selection-bar")
    expect(bar).to_contain_text("2 selected")
    bar.locator('input[name="bulk-tag"]').fill("shortlist")
    bar.get_by_role("button", name="Add tag").click()
    expect(bar).to_contain_text("Tagged 2 runs")
    with server.client() as client:
        tagged = client.get(f"/projects/{PROJECT}/runs", params={"tag": "shortlist"}).json()
    assert sorted(r["name"] for r in tagged["runs"]) == ["tiny-batch", "wide-net"]


def test_private_project_needs_a_key_public_one_does_not(
    browser: Any, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    server, _ = seeded
    anonymous = Page(browser, server.url, key=None)
    try:
        p = anonymous.goto(f"/p/{PUBLIC_PROJECT}")
        expect(run_rows(p)).to_have_count(1)
        anonymous.goto(f"/p/{PROJECT}")
        expect(p.get_by_text("This project is private")).to_be_visible()
        anonymous.shot("key-needed")
        p.locator('input[name="api-key"]').fill(ADMIN_KEY)
        p.get_by_role("button", name="Use this key").click()
        expect(run_rows(p)).to_have_count(6)
        assert p.evaluate("localStorage.getItem('trackline.apiKey')") == ADMIN_KEY
    finally:
        anonymous.close()
    # 401s of the first visit are expected console errors (failed fetches), nothing else.
    assert all("401" in e for e in anonymous.errors), anonymous.errors


def test_live_run_updates_without_reload(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server, _ = seeded
    stop = tmp_path / "stop"
    (tmp_path / "live.py").write_text(LIVE_SCRIPT)
    with open(tmp_path / "live.log", "wb") as output:
        child = subprocess.Popen(
            [sys.executable, str(tmp_path / "live.py"), str(stop)],
            cwd=tmp_path,
            env=sdk_env(server, tmp_path),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with server.client() as client:
            wait_for(
                lambda: client.get("/projects/admin/live/runs").json()["total"] == 1,
                timeout=60,
                what="the live run on the server",
            )
        p = page.goto("/p/admin/live")
        row = p.locator(".vt-row.vt-run", has_text="live-run")
        expect(row.locator(".state")).to_have_text("running")
        panel = p.locator('.panel[data-key="train/loss"]')
        expect(panel).to_have_attribute("data-loaded", "true")
        before = int(panel.get_attribute("data-points") or 0)
        assert before > 0
        p.wait_for_function(
            """(before) => {
                const el = document.querySelector('.panel[data-key="train/loss"]');
                return Number(el.dataset.points) > before;
            }""",
            arg=before,
            timeout=TIMEOUT_MS,
        )
        stop.touch()
        assert child.wait(60) == 0, (tmp_path / "live.log").read_text()
        expect(row.locator(".state")).to_have_text("finished", timeout=TIMEOUT_MS)
        page.shot("live")
    finally:
        stop.touch()
        if child.poll() is None:
            child.kill()
            child.wait(30)


def test_pure_modules_in_the_browser(page: Page) -> None:
    """Smoothing, alignment, filters and markdown, run as the dashboard runs them."""
    p = page.goto("/projects")
    out = p.evaluate(
        """async () => {
            const { smoothEma } = await import("/js/util/smooth.js");
            const { align } = await import("/js/align.js");
            const { parseExpressions } = await import("/js/filters.js");
            const { mergePoints } = await import("/js/downsample.js");
            const { renderMarkdown } = await import("/js/util/markdown.js");
            const md = renderMarkdown(["# T", "", "**b** <script>x</script> [l](javascript:y) `c`", "", "- i"].join(String.fromCharCode(10)));
            return {
                constant: smoothEma([2, 2, 2], 0.9),
                first: smoothEma([1, 3], 0.5),
                gap: smoothEma([1, NaN, 3], 0.5),
                aligned: align(
                    [{ x: [0, 2], cols: [[1, 3]] }, { x: [1, 2], cols: [[5, 6]] }], ["last"], 100),
                where: parseExpressions("lr < 0.01, acc >= 0.9; state = finished, opt = 'a b'",
                    new Set(["lr", "opt"]), new Set(["acc"])),
                merged: mergePoints({ x: [0, 1, 2, 3], y: [1, 3, 5, 7], min: [0, 2, 4, 6],
                    max: [2, 4, 6, 8], count: [1, 1, 2, 2] }, 2),
                tags: [...md.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
                text: md.textContent,
                href: md.querySelector("a")?.getAttribute("href") ?? null,
            };
        }"""
    )
    assert out["constant"] == [2, 2, 2]
    # Debiased: the first smoothed value is the first value, not pulled toward zero.
    assert out["first"] == [1, 2.3333333333333335]
    assert out["gap"][0] == 1 and math.isnan(out["gap"][1]) and out["gap"][2] == 2.3333333333333335
    assert out["aligned"]["xs"] == [0, 1, 2]
    assert out["aligned"]["cols"] == [[[1, None, 3]], [[None, 5, 6]]]
    assert out["where"] == {
        "where": ["config.lr<0.01", "summary.acc>=0.9", "state=finished", 'config.opt="a b"'],
        "errors": [],
    }
    merged = out["merged"]
    assert merged["x"] == [0, 2] and merged["min"] == [0, 4] and merged["max"] == [4, 8]
    assert merged["y"] == [2, 6] and merged["count"] == [2, 4]
    # A javascript: link is no link at all (markdown-it refuses it): its source is text.
    assert sorted(set(out["tags"])) == ["code", "h1", "li", "p", "strong", "ul"]
    assert "<script>x</script>" in out["text"] and out["href"] is None
    assert "[l](javascript:y)" in out["text"]


def test_static_app_is_served_with_vendored_licence(
    seeded: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, _ = seeded
    index = httpx.get(server.url + "/")
    assert index.status_code == 200 and "Content-Security-Policy" in index.text
    licence = httpx.get(server.url + "/vendor/uplot/LICENSE")
    assert licence.status_code == 200 and "MIT" in licence.text
    # index.html preloads every module (no import waterfall on first load): keep it complete.
    static = Path(__file__).resolve().parent.parent / "server" / "static"
    modules = {p.relative_to(static).as_posix() for p in (static / "js").rglob("*.js")}
    modules.discard("js/wire-types.js")  # JSDoc typedefs only: nothing imports it at run time
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', index.text))
    vendored = {
        "vendor/uplot/uPlot.esm.js",
        "vendor/markdown-it/markdown-it.js",
        "vendor/markdown-it-footnote/markdown-it-footnote.js",
    }
    # KaTeX (600 KB) is imported on first use only, when a page shows math.
    assert preloaded == modules | vendored
    for path in sorted(preloaded):
        assert httpx.get(f"{server.url}/{path}").status_code == 200, path


def test_run_page_says_how_many_rows_a_full_disk_lost(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect
    from trackline._transport import Shipper
    from trackline.records import Finish, Gap, Metrics, RunStart
    from trackline.runlog import LogFile

    server, _ = seeded
    run_dir = tmp_path / "diskfull1"
    run_dir.mkdir()
    log = LogFile(run_dir / "main.tlog")
    log.append(RunStart(run_id="diskfull1", project="diskfull", name="full", start_time=1.0))
    for step in range(0, 100):
        if step == 40:  # what the writer wrote once the disk took frames again
            log.append(Gap(40, 89, 50, 2_900, "disk full", 2.0))
        if not 40 <= step < 90:
            log.append(Metrics(step, 1.0 + step, {"loss": 1.0 / (step + 1)}))
    log.append(Finish(time=3.0, state="finished"))
    log.close()
    with Shipper(run_dir, server.url, ADMIN_KEY, live=False) as shipper:
        assert wait_for(lambda: shipper.pump(final=True), timeout=60)
    p = page.goto("/p/admin/diskfull/r/diskfull1")
    expect(p.locator(".gap-notice")).to_have_text("50 rows of steps 40-89 lost: disk full")
    page.shot("run-gap")


def test_a_defined_step_metric_is_each_charts_default_x_axis(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]], tmp_path: Path
) -> None:
    """``define_metric("val/*", step_metric="epoch")``: val/* charts plot against epoch,
    the others against step, in the workspace and on the run page, until an x is chosen."""
    from playwright.sync_api import expect
    from trackline._transport import Shipper
    from trackline.records import DefineMetric, Finish, Metrics, RunStart
    from trackline.runlog import LogFile

    server, _ = seeded
    run_dir = tmp_path / "epochs01"
    run_dir.mkdir()
    log = LogFile(run_dir / "main.tlog")
    log.append(RunStart(run_id="epochs01", project="epochs", name="by-epoch", start_time=1.0))
    log.append(DefineMetric("val/*", "min", "epoch"))
    for step in range(100):
        log.append(Metrics(step, 1.0 + step, {"train/loss": 1.0 / (step + 1)}))
        if step % 10 == 9:
            values = {"val/loss": 2.0 / (step + 1), "epoch": float(step // 10 + 1)}
            log.append(Metrics(step, 1.0 + step, values))
    log.append(Finish(time=200.0, state="finished"))
    log.close()
    with Shipper(run_dir, server.url, ADMIN_KEY, live=False) as shipper:
        assert wait_for(lambda: shipper.pump(final=True), timeout=60)

    asked: list[tuple[str, str]] = []  # (key, x) of each series request

    def note(request: Any) -> None:
        if request.url.endswith("/metrics/series"):
            body = json.loads(request.post_data or "{}")
            asked.append((body["keys"][0], body["x"]))

    page.page.on("request", note)

    def x_axes(path: str) -> dict[str, str]:
        asked.clear()
        p = page.goto(path)
        if "/r/" in path:
            p.get_by_role("tab", name="Charts").click()
        for key in ("train/loss", "val/loss"):
            expect(p.locator(f'.panel[data-key="{key}"]')).to_have_attribute("data-loaded", "true")
        return dict(asked)

    workspace = x_axes("/p/admin/epochs")
    assert workspace["val/loss"] == "epoch" and workspace["train/loss"] == "step"
    run_page = x_axes("/p/admin/epochs/r/epochs01")
    assert run_page["val/loss"] == "epoch" and run_page["train/loss"] == "step"
    page.page.locator('.panel[data-key="val/loss"]').scroll_into_view_if_needed()
    page.shot("step-metric")
