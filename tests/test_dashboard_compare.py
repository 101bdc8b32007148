"""Compare in a real browser: the chosen runs' charts overlaid, and the git difference of
two runs (same commit with different uncommitted changes; different commits, linked on
the git host). Runs are logged by the real SDK from a real git work tree.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _procs import AGENT_GONE
from _server import ServerProcess
from test_dashboard import CHROMIUM, Page, git, sdk_env
from test_dashboard import browser as browser  # the module's own chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

TRAIN = textwrap.dedent(
    """
    import sys, time
    import psutil, trackline

    run = trackline.init(project="cmp", name=sys.argv[1], config={"lr": 0.001 * len(sys.argv[1]), "arch": "mlp"})
    for step in range(50):
        run.log({"train/loss": (1 + len(sys.argv[1])) / (step + 1), "train/acc": step / 50})
    run.finish()
    <agent gone>
    print(run.id)
    """
).replace("<agent gone>\n", AGENT_GONE)


def train(server: ServerProcess, work: Path, repo: Path, name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(work / "train.py"), name],
        cwd=repo,
        env=sdk_env(server, work),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    work = tmp_path_factory.mktemp("dashboard-compare")
    server = ServerProcess(work / "server").start()
    (work / "train.py").write_text(TRAIN)
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI")
    git(repo, "remote", "add", "origin", "git@github.com:acme/vision.git")
    (repo / "model.py").write_text("DEPTH = 2\nWIDTH = 64\n")
    (repo / "data.py").write_text("BATCH = 32\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    try:
        ids = {}
        (repo / "model.py").write_text("DEPTH = 4\nWIDTH = 64\n")
        ids["deeper"] = train(server, work, repo, "deeper")
        (repo / "model.py").write_text("DEPTH = 2\nWIDTH = 128\n")
        (repo / "data.py").write_text("BATCH = 64\n")
        ids["wider"] = train(server, work, repo, "wider")
        git(repo, "commit", "-q", "-am", "second")
        ids["committed"] = train(server, work, repo, "committed")
        yield server, ids
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, runs: tuple[ServerProcess, dict[str, str]]) -> Iterator[Page]:
    p = Page(browser, runs[0].url)
    yield p
    p.close()
    p.check_clean()


def open_compare(page: Page, ids: list[str]) -> Any:
    return page.goto(f"/p/admin/cmp/compare?runs={','.join(ids)}")


def test_charts_overlay_the_chosen_runs(
    page: Page, runs: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = runs
    p = open_compare(page, [ids["deeper"], ids["wider"], ids["committed"]])
    chart = p.locator('.compare-charts .panel[data-key="train/loss"] .panel-chart')
    expect(chart).to_have_attribute("data-series", "3")
    expect(p.locator('.compare-charts .panel[data-key="train/acc"]')).to_have_count(1)
    expect(p.locator(".compare-table").first).to_be_visible()
    page.shot("compare-charts")


def test_same_commit_compares_the_working_trees_file_by_file(
    page: Page, runs: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = runs
    p = open_compare(page, [ids["deeper"], ids["wider"]])
    card = p.locator(".git-compare-card")
    expect(card.locator(".git-commits")).to_have_attribute("data-same", "true")
    expect(card.locator('.git-file[data-path="model.py"]')).to_have_attribute(
        "data-status", "differs"
    )
    expect(card.locator('.git-file[data-path="data.py"]')).to_have_attribute(
        "data-status", "only-b"
    )
    model = card.locator('.git-file[data-path="model.py"]')
    expect(model.locator(".git-side").first.locator(".d-add")).to_contain_text("DEPTH = 4")
    expect(model.locator(".git-side").nth(1).locator(".d-add")).to_contain_text("WIDTH = 128")
    card.scroll_into_view_if_needed()
    page.shot("compare-git-same-commit")


def test_different_commits_link_to_the_git_host(
    page: Page, runs: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    server, ids = runs
    with server.client() as admin:
        a = admin.get(f"/runs/{ids['wider']}").json()["git"]["commit"]
        b = admin.get(f"/runs/{ids['committed']}").json()["git"]["commit"]
    assert a != b
    p = open_compare(page, [ids["wider"], ids["committed"]])
    card = p.locator(".git-compare-card")
    expect(card.locator(".git-commits")).to_have_attribute("data-same", "false")
    link = card.locator(".git-commits a")
    expect(link).to_have_attribute("href", f"https://github.com/acme/vision/compare/{a}...{b}")
    # B has no uncommitted changes: each of A's files is "only in A".
    expect(card.locator('.git-file[data-path="model.py"]')).to_have_attribute(
        "data-status", "only-a"
    )


def test_compare_url_knows_the_common_hosts(page: Page) -> None:
    p = page.goto("/")
    found = p.evaluate(
        """async () => {
            const { compareUrl } = await import('/js/gitcompare.js');
            return [
                compareUrl('https://github.com/o/r.git', 'a1', 'b2'),
                compareUrl('ssh://git@gitlab.example.com:2222/g/r.git', 'a1', 'b2'),
                compareUrl('https://bitbucket.org/o/r', 'a1', 'b2'),
                compareUrl('https://git.internal/o/r', 'a1', 'b2'),
                compareUrl(null, 'a1', 'b2'),
            ];
        }"""
    )
    assert found == [
        "https://github.com/o/r/compare/a1...b2",
        "https://gitlab.example.com/g/r/-/compare/a1...b2",
        "https://bitbucket.org/o/r/branches/compare/b2%0Da1",
        None,
        None,
    ]


def test_config_and_summary_columns_line_up(
    page: Page, runs: tuple[ServerProcess, dict[str, str]]
) -> None:
    from playwright.sync_api import expect

    _, ids = runs
    p = open_compare(page, [ids["deeper"], ids["wider"], ids["committed"]])
    p.get_by_label("Only differences").uncheck()
    tables = p.locator(".compare-table")
    expect(tables).to_have_count(2)
    lefts = [
        tables.nth(i)
        .locator("thead th")
        .evaluate_all("(cells) => cells.map((c) => Math.round(c.getBoundingClientRect().left))")
        for i in range(2)
    ]
    assert lefts[0] == lefts[1] and len(lefts[0]) == 4
