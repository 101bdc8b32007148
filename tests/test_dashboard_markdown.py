"""Markdown in a real browser (a run's notes; reports use the same renderer): GFM tables,
task lists, footnotes, math by KaTeX, links; stored-XSS payloads stay text, and nothing is
fetched from elsewhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _server import ADMIN_KEY, ServerProcess, log_bytes, post_log
from test_dashboard import CHROMIUM, Page
from test_dashboard import browser as browser  # the module's own chromium
from trackline.records import RunStart

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

NOTES = r"""# Findings

| lr | loss | note |
|---:|:----:|------|
| 0.1 | 0.30 | *fast* |
| 0.01 | 0.25 | ~~slow~~ |

- [x] sweep the learning rate
- [ ] try a wider net

The loss is $\mathcal{L} = -\sum_i y_i \log p_i$ per batch[^why].

$$
E = mc^2
$$

A [good link](https://example.org/paper) and [a bad one](javascript:alert(1)).

<script>alert("notes")</script> <img src=x onerror=alert(2)>

![remote](http://evil.example/x.png)

[^why]: Cross-entropy, averaged.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("dashboard-markdown") / "server").start()
    start = RunStart(run_id="notes1", project="md", name="noted", start_time=time.time())
    with httpx.Client(base_url=proc.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as c:
        post_log(c, "notes1", log_bytes([start])).raise_for_status()
    with proc.client() as admin:
        admin.patch("/runs/notes1", json={"notes": NOTES}).raise_for_status()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Page]:
    p = Page(browser, server.url)
    yield p
    p.close()
    p.check_clean()


def test_notes_render_gfm_math_and_footnotes_safely(page: Page, server: ServerProcess) -> None:
    from playwright.sync_api import expect

    asked: list[str] = []
    page.page.on("request", lambda request: asked.append(request.url))
    p = page.goto("/p/admin/md/r/notes1")
    notes = p.locator(".notes-view .markdown")
    expect(notes.locator("table tbody tr")).to_have_count(2)
    expect(notes.locator("th").first).to_have_css("text-align", "right")
    expect(notes.locator("td s")).to_have_text("slow")
    boxes = notes.locator("li.task-item input[type=checkbox]")
    expect(boxes).to_have_count(2)
    expect(boxes.first).to_be_checked()
    expect(boxes.nth(1)).not_to_be_checked()
    expect(notes.locator(".math-inline[data-rendered=katex] .katex")).to_have_count(1)
    expect(notes.locator(".math-display[data-rendered=katex] .katex-display")).to_have_count(1)
    expect(notes.locator("section.footnotes li")).to_contain_text("Cross-entropy, averaged.")
    notes.locator("sup.footnote-ref a").click()
    assert p.url.endswith("/p/admin/md/r/notes1")  # the footnote link is no route change
    good = notes.get_by_role("link", name="good link")
    expect(good).to_have_attribute("href", "https://example.org/paper")
    expect(good).to_have_attribute("rel", "noopener noreferrer nofollow")
    # markdown-it refuses a javascript: link: it stays text.
    expect(notes.get_by_role("link", name="a bad one")).to_have_count(0)
    expect(notes).to_contain_text("[a bad one](javascript:alert(1))")
    # Raw HTML is text; a remote image is a link, never loaded.
    expect(notes).to_contain_text('<script>alert("notes")</script>')
    assert notes.locator("script, img").count() == 0
    expect(notes.get_by_role("link", name="remote")).to_have_attribute(
        "href", "http://evil.example/x.png"
    )
    page.shot("markdown-notes")
    assert [u for u in asked if not u.startswith(server.url)] == []
