"""Artifacts in the dashboard, in a real browser: versions, files, lineage, the run page's tab.

The real SDK (online, in a child process) logs ``mnist-data`` twice with different content
(``v0``, then ``v1`` which takes ``latest``), a model ``mnist-cnn`` aliased ``best`` and a
``notes`` artifact whose metadata, description and file name are hostile HTML; a second
run then calls ``use_artifact("mnist-data:latest")``. Chromium shows it from a real
server; the browser helpers come from ``test_dashboard``. Screenshots go to
``test-artifacts/``.
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

XSS = "<img src=x onerror=alert(1)>"
PROJECT = "admin/lineage"
TRAIN_V1 = "x,y\n1,2\n3,4\n"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

SEED_SCRIPT = textwrap.dedent(
    """
    import json, pathlib, sys, time
    import psutil, trackline

    xss, train_v1 = json.loads(sys.argv[1])
    data = pathlib.Path("data")
    data.mkdir()

    def uploaded(run):
        deadline = time.monotonic() + 120
        while run._agent is not None and time.monotonic() < deadline:
            try:
                if psutil.Process(run._agent.pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            time.sleep(0.1)

    producer = trackline.init(project="lineage", name="prepare-data")
    (data / "train.csv").write_text("x,y\\n1,2\\n")
    (data / "labels.txt").write_text("0\\n1\\n")
    first = trackline.Artifact("mnist-data", type="dataset", metadata={"rows": 1})
    first.add_file(data / "train.csv")
    first.add_file(data / "labels.txt")
    producer.log_artifact(first)
    (data / "train.csv").write_text(train_v1)
    second = trackline.Artifact(
        "mnist-data", type="dataset", metadata={"rows": 2, "source": "synthetic"},
        description="MNIST, cut down to two rows.",
    )
    second.add_file(data / "train.csv")
    second.add_file(data / "labels.txt")
    second.add_reference("s3://bucket/raw/train/")
    producer.log_artifact(second)
    (data / "model.pt").write_bytes(bytes(range(256)) * 8)
    model = trackline.Artifact("mnist-cnn", type="model", metadata={"epoch": 3, "val/acc": 0.98})
    model.add_file(data / "model.pt")
    producer.log_artifact(model, aliases=["latest", "best"])
    (data / "notes.txt").write_text("hostile strings")
    notes = trackline.Artifact(
        "notes", type="report", metadata={"caption": xss, xss: "as a key"}, description=xss
    )
    notes.add_file(data / "notes.txt", name=xss + ".txt")
    producer.log_artifact(notes)
    producer.finish()
    uploaded(producer)

    consumer = trackline.init(project="lineage", name="train-cnn")
    consumer.use_artifact("mnist-data:latest")
    consumer.finish()
    uploaded(consumer)
    print(json.dumps({"producer": producer.id, "consumer": consumer.id}))
    """
)


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    root = tmp_path_factory.mktemp("dashboard-artifacts")
    server = ServerProcess(root / "server").start()
    try:
        (root / "seed.py").write_text(SEED_SCRIPT)
        result = subprocess.run(
            [sys.executable, str(root / "seed.py"), json.dumps([XSS, TRAIN_V1])],
            cwd=root,
            env=sdk_env(server, root),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        ids: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
        with server.client() as client:
            for ref in ("mnist-data/v0", "mnist-data/v1", "mnist-cnn/best", "notes/v0"):
                found = client.get(f"/projects/{PROJECT}/artifacts/{ref}").json()
                assert found["complete"], found
            lineage = client.get(f"/projects/{PROJECT}/artifacts/mnist-data/latest/lineage")
            assert [r["id"] for r in lineage.json()["consumers"]] == [ids["consumer"]]
        yield server, ids
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, seeded: tuple[ServerProcess, dict[str, str]]) -> Iterator[Page]:
    server, _ = seeded
    p = Page(browser, server.url)
    p.page.add_init_script("window.__xss = []; window.alert = (m) => window.__xss.push(String(m));")
    yield p
    assert p.page.evaluate("window.__xss") == []
    p.close()
    p.check_clean()


def test_artifacts_page_lists_artifacts_by_type_with_versions(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}")
    expect(p.locator(".ws-head .nav-artifacts")).to_be_visible()
    expect(p.locator(".vt-row.vt-run")).to_have_count(2)
    page.shot("artifacts-nav")
    p.locator(".nav-artifacts").click()
    expect(p).to_have_url(f"{page.base}/#/p/{PROJECT}/artifacts")
    expect(p.locator(".artifact-type")).to_have_count(3)
    data = p.locator('.artifact-card[data-artifact="mnist-data"]')
    expect(data.locator(".version-row")).to_have_count(2)
    # Newest first; latest moved to v1.
    expect(data.locator(".version-row").first).to_have_attribute("data-version", "v1")
    expect(data.locator('.version-row[data-version="v1"] .alias')).to_have_text(["latest"])
    expect(data.locator('.version-row[data-version="v0"] .alias')).to_have_count(0)
    v1 = data.locator('.version-row[data-version="v1"]')
    expect(v1.locator(".run-ref")).to_have_text("prepare-data")
    expect(v1.locator(".run-ref")).to_have_attribute("data-run", ids["producer"])
    expect(v1.locator(".meta-chip")).to_have_text(["rows2", "sourcesynthetic"])
    model = p.locator('.artifact-type[data-type="model"] .artifact-card[data-artifact="mnist-cnn"]')
    expect(model.locator(".version-row .alias")).to_have_text(["best", "latest"])
    # Hostile metadata is text.
    notes = p.locator('.artifact-card[data-artifact="notes"]')
    expect(notes.locator(".meta-val", has_text=XSS)).to_be_visible()
    expect(notes.locator(".meta-key", has_text=XSS)).to_be_visible()
    page.shot("artifacts")

    p.locator(".page-head input[type=search]").fill("cnn")
    expect(p.locator(".artifact-card")).to_have_count(1)


def test_version_page_shows_files_and_lineage(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}/artifacts")
    p.locator('.artifact-card[data-artifact="mnist-data"] .version-link', has_text="v1").click()
    expect(p).to_have_url(f"{page.base}/#/p/{PROJECT}/artifacts/mnist-data/v1")
    expect(p.locator(".art-name")).to_have_text("mnist-data")
    expect(p.locator(".art-head .alias")).to_have_text(["latest"])
    expect(p.locator(".art-description")).to_have_text("MNIST, cut down to two rows.")
    rows = p.locator(".manifest-row")
    expect(rows).to_have_count(2)
    expect(rows.locator("td.mono")).to_have_text(["labels.txt", "train.csv"])
    train = p.locator('.manifest-row[data-path="train.csv"]')
    sha = train.locator(".sha").get_attribute("title") or ""
    assert len(sha) == 64 and train.locator(".sha").inner_text() == sha[:12]
    expect(p.locator(".references td.uri")).to_have_text("s3://bucket/raw/train/")
    producer = p.locator(".lineage-node.producer")
    consumer = p.locator(".lineage-node.consumer")
    expect(producer).to_have_attribute("data-run", ids["producer"])
    expect(producer.locator(".ln-name")).to_have_text("prepare-data")
    expect(consumer).to_have_count(1)
    expect(consumer.locator(".ln-name")).to_have_text("train-cnn")
    expect(p.locator(".lineage-graph .ln-edge")).to_have_count(2)
    expect(p.locator(".version-list li.current a")).to_have_text("v1")
    page.shot("artifact-version")

    # A file downloads through the API with the key (a blob: URL), byte for byte.
    with p.expect_download() as info:
        train.get_by_role("button", name="Download").click()
    download = info.value
    assert download.suggested_filename == "train.csv"
    assert Path(download.path()).read_text() == TRAIN_V1

    # The consumer node opens its run page; its Artifacts tab lists the version it used.
    consumer.click()
    expect(p).to_have_url(f"{page.base}/#/p/{PROJECT}/r/{ids['consumer']}")
    p.get_by_role("tab", name="Artifacts").click()
    used = p.locator('.run-artifacts-card[data-kind="input"] .artifact-ref')
    expect(used).to_have_count(1)
    expect(used).to_have_attribute("data-version", "v1")
    expect(used.locator(".alias")).to_have_text(["latest"])
    expect(p.locator('.run-artifacts-card[data-kind="output"] .artifact-ref')).to_have_count(0)
    page.shot("run-artifacts-used")
    used.locator(".version-link").click()
    expect(p).to_have_url(f"{page.base}/#/p/{PROJECT}/artifacts/mnist-data/v1")

    # v0 was used by nobody: the graph says so.
    p.locator(".version-list a", has_text="v0").click()
    expect(p.locator(".lineage-node.empty", has_text="no run has used it yet")).to_be_visible()


def test_run_page_lists_logged_versions(
    page: Page, seeded: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = seeded
    p = page.goto(f"/p/{PROJECT}/r/{ids['producer']}")
    p.get_by_role("tab", name="Artifacts").click()
    logged = p.locator('.run-artifacts-card[data-kind="output"] .artifact-ref')
    expect(logged).to_have_count(4)
    expect(logged.locator(".version-link")).to_have_text(["v0", "v1", "v0", "v0"])
    expect(logged.locator(".artifact-link strong")).to_have_text(
        ["mnist-data", "mnist-data", "mnist-cnn", "notes"]
    )
    expect(p.locator('.run-artifacts-card[data-kind="input"]')).to_contain_text("used no artifacts")
    page.shot("run-artifacts-logged")
    logged.nth(2).locator(".version-link").click()
    expect(p).to_have_url(f"{page.base}/#/p/{PROJECT}/artifacts/mnist-cnn/v0")
    expect(p.locator(".art-head .alias")).to_have_text(["best", "latest"])


def test_hostile_strings_stay_text(page: Page) -> None:
    from playwright.sync_api import expect

    p = page.goto(f"/p/{PROJECT}/artifacts/notes/latest")
    expect(p.locator(".art-description")).to_have_text(XSS)
    expect(p.locator(".manifest-row td.mono")).to_have_text(XSS + ".txt")
    expect(p.locator('.metadata-card .tree-leaf[data-path="caption"] .tree-val')).to_have_text(XSS)
    expect(p.locator(".metadata-card .tree-key", has_text=XSS)).to_be_visible()
    expect(p.locator(".lineage-node.producer")).to_be_visible()
    # No element was made of any of it.
    assert p.evaluate("document.querySelectorAll('main img, main [onerror]').length") == 0
    page.shot("artifact-hostile")


def test_lineage_graph_sums_up_many_consumers(page: Page) -> None:
    """Past six consumers the graph draws five and a "+N more" node; names stay text."""
    p = page.goto("/projects")
    out = p.evaluate(
        """async (xss) => {
            const { lineageGraph } = await import("/js/lineage.js");
            const consumers = Array.from({ length: 9 }, (_, i) =>
                ({ id: `run${i}`, name: i ? `consumer-${i}` : xss, project: "a/b" }));
            const svg = lineageGraph({ name: "d", type: "dataset", version: 3, aliases: [xss] },
                { producer: null, consumers }, "a/b");
            document.body.appendChild(svg);
            const names = [...svg.querySelectorAll(".lineage-node.consumer .ln-name")];
            return {
                consumers: names.length,
                first: names[0].textContent,
                more: svg.querySelector(".lineage-node.more").textContent,
                empty: svg.querySelector(".lineage-node.empty").textContent,
                edges: svg.querySelectorAll(".ln-edge").length,
                hrefs: [...svg.querySelectorAll("a")].map((a) => a.getAttribute("href")),
                elements: [...svg.querySelectorAll("*")].map((e) => e.tagName).filter(
                    (t) => !["a", "defs", "g", "marker", "path", "rect", "svg", "text", "title"].includes(t)),
            };
        }""",
        XSS,
    )
    assert out["consumers"] == 5 and out["edges"] == 7
    assert out["first"] == XSS[:26] + "…"
    assert out["more"] == "+4 more runs"
    assert "cannot see" in out["empty"]
    assert out["hrefs"] == [f"#/p/a/b/r/run{i}" for i in range(5)]
    assert out["elements"] == []
