"""Release pages with a browser session: the board with due times, the new-release form, the
release page with evidence and actions, refusals shown on the page, stale versions, tenancy."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from change.services import ChangeService
from cmdb.models import Role
from cmdb.notifications import NotificationService
from release.services import ReleaseService
from tests.support import World
from web.controllers.pages import navigation

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}
FULL = {
    "need": "A vendor fixed a hole in the web server.",
    "desired_result": "The patched version runs everywhere.",
    "plan": "Install the update, restart, verify.",
    "backout_plan": "Reinstall the previous package.",
}


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


async def sign_in_browser(client: Client, world: World, username: str) -> None:
    client.cookies.clear()
    form = await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": username, "password": world.passwords[username], "_csrf_token": csrf_from(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


async def post_form(client: Client, url: str, data: dict[str, Any], page: str = "/releases") -> Any:
    token = csrf_from((await client.get(page)).text) if "_csrf_token" not in data else data["_csrf_token"]
    return await client.post(url, data={**data, "_csrf_token": token}, headers=HTML, follow_redirects=False)


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match
    return match.group(1)


@pytest.fixture
async def setup(world: World) -> dict[str, Any]:
    web = await world.ci("ACME", "web-01", "server")
    await world.ci("ACME", "test-lab", "test_environment")
    change = ChangeService(world.clock, world.service)
    releases = ReleaseService(world.clock, world.service, change, NotificationService(world.clock))
    eve, carl, rita = world.actors["eve"], world.actors["carl"], world.actors["rita"]
    now = world.clock.now()
    patch = await change.create(
        eve,
        {
            "customer": "ACME",
            "title": "Patch httpd",
            "cis": [web.id],
            "urgency": "critical",
            "available_at": (now - dt.timedelta(hours=2)).isoformat(),
            "patch_description": "httpd 2.4.62",
            **FULL,
        },
    )
    await change.act(eve, patch.id, "submit", {})
    await change.act(carl, patch.id, "authorize", {"release_requirements": ["regression test"]})
    await change.act(carl, patch.id, "approve", {})
    release = await releases.create(rita, {"customer": "ACME", "title": "Hotfix", "rfcs": [patch.key]})
    internal = await releases.create(rita, {"customer": "PROV", "title": "Internal tooling"})
    return {"rfc": patch, "release": release, "internal": internal, "releases": releases, "web": web}


async def test_the_board_shows_releases_by_state_with_the_earliest_due_time(
    world: World, client: Client, setup: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "rita")
    response = await client.get("/releases", headers=HTML)
    assert response.status_code == 200
    html = response.text
    planned = html.split('data-state="planned"')[1].split("</section>")[0]
    assert setup["release"].key in planned and "ACME" in planned and "1 RFC" in planned
    # The critical patch is due three business days after it became available.
    card = planned.split(f'data-release="{setup["release"].key}"')[1].split("</li>")[0]
    assert re.search(r"Due: <time class=\"due due-\w+\">2026-11-0\d \d\d:\d\d UTC</time>", card), card
    assert "critical" in card
    internal = planned.split(f'data-release="{setup["internal"].key}"')[1].split("</li>")[0]
    assert "Due: —" in internal
    assert 'href="/releases/new"' in html


async def test_the_form_creates_a_release_and_bad_input_is_shown(
    world: World, client: Client, setup: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "rita")
    form = await client.get("/releases/new", headers=HTML)
    assert form.status_code == 200
    token = csrf_from(form.text)
    bad = await post_form(client, "/releases/new", {"_csrf_token": token, "customer": "ACME", "title": ""})
    assert bad.status_code == 422 and "Nothing saved" in bad.text
    busy = await post_form(
        client, "/releases/new", {"_csrf_token": token, "customer": "ACME", "title": "Again", "rfcs": setup["rfc"].key}
    )
    assert busy.status_code == 409 and "already in release" in busy.text
    created = await post_form(
        client,
        "/releases/new",
        {
            "_csrf_token": token,
            "customer": "ACME",
            "title": "December",
            "test_environment": "test-lab",
            "represents": "web-01",
        },
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/releases/REL-2026-0003")
    page = await client.get("/releases/REL-2026-0003", headers=HTML)
    assert "test-lab" in page.text and "web-01" in page.text


async def test_the_release_page_runs_the_journey_and_refusals_show_what_is_missing(
    world: World, client: Client, setup: dict[str, Any]
) -> None:
    key = setup["release"].key
    await sign_in_browser(client, world, "rita")
    page = await client.get(f"/releases/{key}", headers=HTML)
    assert page.status_code == 200
    assert "Not satisfied" in page.text and setup["rfc"].key in page.text
    assert 'data-action="record-test"' in page.text and 'data-action="deploy"' not in page.text
    token, version = csrf_from(page.text), version_of(page.text)
    refused = await post_form(client, f"/releases/{key}/actions/approve", {"_csrf_token": token, "version": version})
    assert refused.status_code == 409
    assert "at least one passed test" in refused.text and "refused, nothing changed" in refused.text
    recorded = await post_form(
        client,
        f"/releases/{key}/actions/record-test",
        {
            "_csrf_token": token,
            "version": version,
            "name": "regression",
            "result": "passed",
            "covers": "regression test",
            "negative_effects": "Reports 10% slower",
            "test_environment": "test-lab",
            "represents": "web-01",
        },
    )
    assert recorded.status_code == 303, recorded.text
    page = await client.get(f"/releases/{key}", headers=HTML)
    assert "Satisfied" in page.text and "Needs review" in page.text
    test_id = re.search(r'name="test" value="(\d+)"', page.text)
    assert test_id
    version = version_of(page.text)
    stale = await post_form(
        client, f"/releases/{key}/actions/approve", {"_csrf_token": token, "version": str(int(version) - 1)}
    )
    assert stale.status_code == 409 and "changed by someone else" in stale.text
    no_reason = await post_form(
        client,
        f"/releases/{key}/actions/review-effect",
        {"_csrf_token": token, "version": version, "test": test_id.group(1), "review": "accepted"},
    )
    assert no_reason.status_code == 422 and "justification" in no_reason.text
    reviewed = await post_form(
        client,
        f"/releases/{key}/actions/review-effect",
        {
            "_csrf_token": token,
            "version": version,
            "test": test_id.group(1),
            "review": "accepted",
            "justification": "Exploited in the wild",
        },
    )
    assert reviewed.status_code == 303, reviewed.text
    for action, extra in (("approve", {}), ("deploy", {}), ("complete", {"deployments": "web-01 = httpd 2.4.62"})):
        page = await client.get(f"/releases/{key}", headers=HTML)
        done = await post_form(
            client,
            f"/releases/{key}/actions/{action}",
            {"_csrf_token": token, "version": version_of(page.text), **extra},
        )
        assert done.status_code == 303, (action, done.text)
    page = await client.get(f"/releases/{key}?done=complete", headers=HTML)
    assert "is now <strong>deployed</strong>" in page.text
    assert "httpd 2.4.62" in page.text and "Watch period" in page.text
    assert 'data-action="back-out"' in page.text
    assert "effect reviewed" in page.text and "Exploited in the wild" in page.text


async def test_customers_read_their_own_releases_and_nothing_else(
    world: World, client: Client, setup: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "acme-contact")
    board = await client.get("/releases", headers=HTML)
    assert board.status_code == 200 and setup["release"].key in board.text
    assert setup["internal"].key not in board.text and 'href="/releases/new"' not in board.text
    page = await client.get(f"/releases/{setup['release'].key}", headers=HTML)
    assert page.status_code == 200 and "read-only" in page.text and "data-action=" not in page.text
    assert (await client.get(f"/releases/{setup['internal'].key}", headers=HTML)).status_code == 404
    assert (await client.get("/releases/new", headers=HTML)).status_code == 403
    refused = await post_form(
        client, f"/releases/{setup['release'].key}/actions/approve", {"version": "1"}, page="/releases"
    )
    assert refused.status_code == 403
    await sign_in_browser(client, world, "globex-contact")
    assert (await client.get(f"/releases/{setup['release'].key}", headers=HTML)).status_code == 404
    assert setup["release"].key not in (await client.get("/releases", headers=HTML)).text
    refused = await post_form(client, f"/releases/{setup['release'].key}/actions/approve", {"version": "1"})
    assert refused.status_code == 404


async def test_navigation_offers_releases(world: World, setup: dict[str, Any]) -> None:
    for who in ("rita", "eve", "acme-contact"):
        assert "/releases" in [link.href for link in navigation(world.actors[who])], who
    assert Role.RELEASE_MANAGER in world.actors["rita"].roles
