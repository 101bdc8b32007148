"""Project settings, teams and the admin page in a real browser against a real server.

An owner makes a project private in the UI and a stranger's key then gets "not found"; the
owner creates a team, adds a member, transfers a project to it, and the member sees it;
renaming and deleting with typed confirmation; an admin creates a user (its key shown
once), deactivates it (its key gets 401), reactivates it, and revokes one of its keys.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _server import ServerProcess, log_bytes
from test_dashboard import Page, run_rows
from test_dashboard import browser as browser  # the fixture
from test_dashboard import pytestmark as pytestmark
from trackline.records import Metrics, RunStart


def log_run(client: httpx.Client, project: str, name: str) -> str:
    """A run with a few metrics in ``project`` of the client's user, through ingest."""
    run_id = f"r{uuid.uuid4().hex[:12]}"
    records = [
        RunStart(run_id=run_id, project=project, name=name, start_time=time.time()),
        *(Metrics(step, time.time(), {"loss": 1.0 / (step + 1)}) for step in range(10)),
    ]
    answer = client.post(
        f"/runs/{run_id}/streams/main",
        params={"offset": 0},
        content=zlib.compress(log_bytes(records)),
        headers={"content-encoding": "deflate"},
    )
    assert answer.status_code == 200, answer.text
    return run_id


@dataclass
class Users:
    server: ServerProcess
    owner: str
    member: str
    stranger: str
    keys: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return self.server.client(self.keys[who])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("sharing") / "server").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def users(site: ServerProcess) -> Users:
    suffix = uuid.uuid4().hex[:6]
    keys: dict[str, str] = {}
    names = [f"owner{suffix}", f"member{suffix}", f"stranger{suffix}"]
    with site.client() as admin:
        for name in names:
            made = admin.post("/users", json={"name": name})
            assert made.status_code == 201, made.text
            keys[name] = made.json()["api_key"]
    return Users(site, *names, keys)


def open_as(browser: Any, users: Users, who: str) -> Page:
    return Page(browser, users.server.url, key=users.keys[who])


def only_refusals(page: Page) -> None:
    """Refused requests (a private project, a taken name, the last admin) log console
    errors of failed fetches; nothing else may."""
    assert not page.dialogs, page.dialogs
    assert all("404" in e or "401" in e or "409" in e for e in page.errors), page.errors


def test_a_project_made_private_in_the_ui_is_not_found_by_a_stranger(
    browser: Any, users: Users
) -> None:
    from playwright.sync_api import expect

    u = users
    project = f"{u.owner}/shared"
    with u.client(u.owner) as owner:
        log_run(owner, "shared", "first")
        assert owner.patch(f"/projects/{project}", json={"public": True}).status_code == 200
    stranger = open_as(browser, u, u.stranger)
    owner_page = open_as(browser, u, u.owner)
    try:
        sp = stranger.goto(f"/p/{project}")
        expect(run_rows(sp)).to_have_count(1)
        op = owner_page.goto(f"/p/{project}")
        op.locator(".nav-settings").click()
        expect(op.locator(".settings[data-project]")).to_be_visible()
        card = op.locator('[data-setting="visibility"]')
        expect(card.locator(".badge-public")).to_be_visible()
        owner_page.shot("settings-public")
        card.get_by_role("button", name="Make private").click()
        expect(card.locator(".badge-private")).to_be_visible()
        expect(card.get_by_role("button", name="Make public")).to_be_visible()
        with u.client(u.stranger) as api:
            missing = api.get(f"/projects/{u.owner}/nothing-here").json()["detail"]
            answer = api.get(f"/projects/{project}")
            assert answer.status_code == 404
            assert answer.json()["detail"] == missing.replace("nothing-here", "shared")
        sp.reload()
        expect(sp.locator(".card.error")).to_contain_text(f"Not found: no project {project}")
        stranger.shot("settings-stranger-not-found")
        sp.goto(f"{u.server.url}/#/p/{project}/settings")
        expect(sp.locator(".card.error")).to_contain_text("Not found")
        owner_page.check_clean()
    finally:
        owner_page.close()
        stranger.close()
    only_refusals(stranger)


def test_a_project_transferred_to_a_new_team_is_seen_by_its_member(
    browser: Any, users: Users
) -> None:
    from playwright.sync_api import expect

    u = users
    team = f"team{uuid.uuid4().hex[:6]}"
    with u.client(u.owner) as owner:
        run_id = log_run(owner, "net", "baseline")
    member = open_as(browser, u, u.member)
    owner_page = open_as(browser, u, u.owner)
    try:
        mp = member.goto(f"/p/{u.owner}/net")
        expect(mp.locator(".card.error")).to_contain_text("Not found")

        op = owner_page.goto("/projects")
        expect(op.locator(".nav-teams")).to_be_visible()
        expect(op.locator(".nav-admin")).to_have_count(0)  # not an admin
        op.locator(".nav-teams").click()
        op.locator('input[name="team-name"]').fill(team)
        op.get_by_role("button", name="Create team").click()
        expect(op.locator(f'.team[data-team="{team}"]')).to_be_visible()
        expect(op.locator(".member-row")).to_have_count(1)
        op.locator('input[name="member-name"]').fill(u.member)
        op.get_by_role("button", name="Add member").click()
        row = op.locator(f'.member-row[data-user="{u.member}"]')
        expect(row).to_be_visible()
        expect(row.locator('select[name="role"]')).to_have_value("member")
        # A user that does not exist: a clear message, nothing added.
        op.locator('input[name="member-name"]').fill("nobody-" + team)
        op.get_by_role("button", name="Add member").click()
        expect(op.locator(".team .form-status")).to_contain_text(f"no user nobody-{team}")
        expect(op.locator(".member-row")).to_have_count(2)
        # The last admin cannot be taken out: the server's 409 is shown.
        op.locator(f'.member-row[data-user="{u.owner}"] button[name="remove"]').click()
        expect(op.locator(".team .form-status")).to_contain_text("last admin")
        owner_page.shot("team")

        op.goto(f"{u.server.url}/#/p/{u.owner}/net/settings")
        transfer = op.locator('[data-setting="transfer"]')
        transfer.locator('select[name="transfer-to"]').select_option(team)
        transfer.get_by_role("button", name="Transfer").click()
        expect(op.locator(f'.settings[data-project="{team}/net"]')).to_be_visible()

        mp.goto(f"{u.server.url}/#/teams/{team}")
        expect(
            mp.locator(f'.team-projects .project-row[data-project="{team}/net"]')
        ).to_be_visible()
        expect(mp.locator('.member-row select[name="role"]').first).to_be_disabled()
        member.shot("team-member-view")
        mp.locator(f'.project-row[data-project="{team}/net"] a').first.click()
        expect(run_rows(mp)).to_have_count(1)
        with u.client(u.member) as api:
            assert api.get(f"/runs/{run_id}").json()["project"] == f"{team}/net"
        # The member reads the settings but may not change them.
        mp.goto(f"{u.server.url}/#/p/{team}/net/settings")
        expect(mp.locator(".settings .notice")).to_contain_text("Only the project's owner")
        expect(mp.locator('button[name="visibility"]')).to_be_disabled()
    finally:
        owner_page.close()
        member.close()
    only_refusals(owner_page)
    only_refusals(member)


def test_rename_and_delete_with_typed_confirmation(browser: Any, users: Users) -> None:
    from playwright.sync_api import expect

    u = users
    with u.client(u.owner) as owner:
        run_id = log_run(owner, "scratch", "tmp")
        log_run(owner, "taken", "other")
    page = open_as(browser, u, u.owner)
    try:
        p = page.goto(f"/p/{u.owner}/scratch/settings")
        rename = p.locator('[data-setting="rename"]')
        rename.locator('input[name="new-name"]').fill("taken")
        rename.get_by_role("button", name="Rename").click()
        expect(rename.locator(".form-status")).to_contain_text("already has a project taken")
        rename.locator('input[name="new-name"]').fill("renamed")
        rename.get_by_role("button", name="Rename").click()
        path = f"{u.owner}/renamed"
        expect(p.locator(f'.settings[data-project="{path}"]')).to_be_visible()
        assert p.evaluate("location.hash") == f"#/p/{path}/settings"

        danger = p.locator('[data-setting="delete"]')
        button = danger.get_by_role("button", name="Delete this project")
        expect(button).to_be_disabled()
        danger.locator('input[name="confirm-delete"]').fill(f"{u.owner}/scratch")
        expect(button).to_be_disabled()
        danger.locator('input[name="confirm-delete"]').fill(path)
        expect(button).to_be_enabled()
        page.shot("settings-delete")
        button.click()
        expect(p.locator(f'tr.project-row[data-project="{u.owner}/taken"]')).to_be_visible()
        expect(p.locator(f'tr.project-row[data-project="{path}"]')).to_have_count(0)
        with u.client(u.owner) as api:
            assert api.get(f"/projects/{path}").status_code == 404
            assert api.get(f"/runs/{run_id}").status_code == 404
    finally:
        page.close()
    only_refusals(page)  # the taken name


def test_admin_creates_deactivates_and_revokes(browser: Any, users: Users) -> None:
    from playwright.sync_api import expect

    u = users
    name = f"newbie{uuid.uuid4().hex[:6]}"
    page = Page(browser, u.server.url)  # the admin's key
    try:
        p = page.goto("/projects")
        p.locator(".nav-admin").click()
        expect(p.locator(".admin")).to_be_visible()
        p.locator('input[name="user-name"]').fill(name)
        p.get_by_role("button", name="Create user").click()
        key = p.locator('input[name="new-key"]')
        expect(key).to_be_visible()
        new_key = key.input_value()
        assert new_key.startswith("tl_")
        page.shot("admin-new-user")
        with u.server.client(new_key) as newbie:
            assert newbie.get("/viewer").json()["name"] == name
            second = newbie.post("/keys").json()
        row = p.locator(f'.user-row[data-user="{name}"]')
        p.reload()  # the key is shown once: gone after a reload
        expect(row).to_be_visible()
        expect(key).to_have_count(0)
        expect(row.get_by_role("button", name="Keys (2)")).to_be_visible()

        row.get_by_role("button", name="Deactivate").click()
        expect(row.locator(".user-state")).to_have_text("deactivated")
        with u.server.client(new_key) as newbie:
            assert newbie.get("/viewer").status_code == 401
        row.get_by_role("button", name="Reactivate").click()
        expect(row.locator(".user-state")).to_have_text("active")
        with u.server.client(new_key) as newbie:
            assert newbie.get("/viewer").status_code == 200

        row.get_by_role("button", name="Keys (2)").click()
        keys = p.locator(f'table.keys[data-user="{name}"] .key-row')
        expect(keys).to_have_count(2)
        page.shot("admin-keys")
        p.locator(f'.key-row[data-key="{second["id"]}"] button[name="revoke"]').click()
        expect(row.get_by_role("button", name="Keys (1)")).to_be_visible()
        with u.server.client(second["api_key"]) as revoked:
            assert revoked.get("/viewer").status_code == 401
        # A new key for the user, made by the admin: shown once, and it works.
        row.get_by_role("button", name="Keys (1)").click()
        p.locator(f'table.keys[data-user="{name}"]').locator("xpath=..").get_by_role(
            "button", name="New key"
        ).click()
        made = p.locator('input[name="new-key"]')
        expect(made).to_be_visible()
        with u.server.client(made.input_value()) as again:
            assert again.get("/viewer").json()["name"] == name
            # Only an admin makes keys for others.
            assert again.post("/keys", params={"user": "admin"}).status_code == 403
        expect(row.get_by_role("button", name="Keys (2)")).to_be_visible()
        # The admin cannot deactivate itself: the button says so.
        expect(p.locator('.user-row[data-user="admin"] button[name="deactivate"]')).to_be_disabled()
        page.check_clean()
    finally:
        page.close()
    stranger = open_as(browser, u, u.stranger)
    try:
        sp = stranger.goto("/admin")
        expect(sp.get_by_text("This page is for the server's admins.")).to_be_visible()
        expect(sp.locator(".nav-admin")).to_have_count(0)
        stranger.check_clean()
    finally:
        stranger.close()
