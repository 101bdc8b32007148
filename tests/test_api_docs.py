"""The API's pages at ``/api/v1/docs`` work without internet (issue 12).

Swagger UI is vendored under ``server/static/vendor/swagger-ui-dist/``; the page is
checked over real HTTP against ``python -m trackline.server`` and in Debian's
chromium with every request to another host aborted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from _server import ServerProcess, fixture_shared_server  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
DOCS = "/api/v1/docs"


def test_docs_page_loads_nothing_from_elsewhere(shared_server: ServerProcess) -> None:
    answer = httpx.get(shared_server.url + DOCS)
    assert answer.status_code == 200
    html = answer.text
    outside = [
        url
        for url in re.findall(r"""https?://[^\s"'<>)]+""", html)
        if urlsplit(url).netloc != urlsplit(shared_server.url).netloc
    ]
    assert outside == []
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert {"/vendor/swagger-ui-dist/swagger-ui-bundle.js", "/favicon.svg"} <= set(assets)
    for asset in assets:
        assert httpx.get(shared_server.url + asset).status_code == 200, asset
    # The dashboard's policy, plus the page's own inline script by hash.
    policy = answer.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+';", policy), policy
    assert "unsafe-inline" not in policy and "default-src 'self'" in policy


def test_docs_page_behind_a_path_prefix(tmp_path: Path) -> None:
    """Behind a proxy that serves the app under a prefix, every URL keeps the prefix."""
    from fastapi.testclient import TestClient
    from trackline.server.app import create_app
    from trackline.server.config import ServerConfig

    config = ServerConfig.build(tmp_path / "srv", f"sqlite:///{tmp_path / 'db.sqlite'}")
    app = create_app(config, announce=False)
    try:
        with TestClient(app, root_path="/tl") as client:
            html = client.get(DOCS).text
    finally:
        app.state.ctx.db.dispose()
    urls = re.findall(r"""(?:src|href)="([^"]+)\"""", html) + re.findall(r"url: '([^']+)'", html)
    assert sorted(urls) == [
        "/tl/api/v1/openapi.json",
        "/tl/favicon.svg",
        "/tl/vendor/swagger-ui-dist/swagger-ui-bundle.js",
        "/tl/vendor/swagger-ui-dist/swagger-ui.css",
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.mark.slow
def test_docs_page_renders_offline(shared_server: ServerProcess, browser: Any) -> None:
    here = urlsplit(shared_server.url).netloc
    blocked: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def route(route: Any) -> None:
        if urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.route("**/*", route)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A Content-Security-Policy violation is reported as a console error.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(shared_server.url + DOCS)
        operation = page.locator(".opblock", has_text="/api/v1/runs/{run_id}").first
        operation.wait_for(state="visible")
        assert page.locator(".opblock").count() > 20
        operation.locator(".opblock-summary").first.click()
        page.locator(".opblock-body").first.wait_for(state="visible")
    finally:
        context.close()
    assert blocked == []
    assert failed == []
    assert errors == []
