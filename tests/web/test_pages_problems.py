"""Problem pages with a browser session: list and filters, raising, the problem page and its
action forms (CSRF, version, refusals re-rendered), trends, navigation and tenant 404s."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.test_problems import FakeWatch, period, seed_incident
from tests.support import World
from web.controllers.pages import navigation
from web.controllers.pages_problem import split_refs

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}


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


async def post_form(client: Client, url: str, data: dict[str, Any], page: str = "/problems") -> Any:
    token = csrf_from((await client.get(page)).text)
    return await client.post(url, data={**data, "_csrf_token": token}, headers=HTML, follow_redirects=False)


def actions(html: str) -> set[str]:
    return set(re.findall(r'data-action="([^"]+)"', html))


@pytest.fixture
async def seeded(world: World) -> dict[str, Any]:
    mail = await world.ci("ACME", "mail01", "server")
    incidents = [await seed_incident(world, "ACME", [mail.id], f"Mail stalls {i}") for i in range(3)]
    return {"mail": mail, "incidents": incidents}


def test_navigation_offers_problems_to_staff_and_customers(world: World) -> None:
    for username in ("eve", "sam", "acme-contact"):
        assert "/problems" in [link.href for link in navigation(world.actors[username])]


def test_split_refs() -> None:
    assert split_refs("INC-1, INC-2\nINC-3;;") == ["INC-1", "INC-2", "INC-3"]


async def test_raise_a_problem_then_work_it(client: Client, world: World, seeded: dict[str, Any]) -> None:
    await sign_in_browser(client, world, "eve")
    form = await client.get("/problems/new")
    assert form.status_code == 200 and 'name="_csrf_token"' in form.text
    refused = await post_form(
        client, "/problems/new", {"customer": "ACME", "title": "", "cis": "nope"}, "/problems/new"
    )
    assert refused.status_code == 422
    assert "Nothing was saved" in refused.text and "no CI nope of ACME" in refused.text
    incident_key = seeded["incidents"][0][1]
    created = await post_form(
        client,
        "/problems/new",
        {"customer": "ACME", "title": "Mail stalls nightly", "incidents": incident_key},
        "/problems/new",
    )
    assert created.status_code == 303 and created.headers["location"] == "/problems/PRB-2026-0001?done=created"
    page = await client.get("/problems/PRB-2026-0001?done=created")
    assert page.status_code == 200
    assert "Problem raised." in page.text and incident_key in page.text and "mail01" in page.text
    assert {"investigate", "known-error", "link-incident", "raise-rfc", "update"} <= actions(page.text)
    assert 'name="version" value="1"' in page.text

    # known-error without a workaround: the page again, 422, the field marked, nothing changed.
    token = csrf_from(page.text)
    missing = await client.post(
        "/problems/PRB-2026-0001/actions/known-error",
        data={"_csrf_token": token, "version": "1", "root_cause": "Spool disk fills", "workaround": ""},
        headers=HTML,
    )
    assert missing.status_code == 422
    assert "Record a known error refused" in missing.text and 'aria-invalid="true"' in missing.text
    assert "Spool disk fills" in missing.text  # what was typed comes back

    stale = await client.post(
        "/problems/PRB-2026-0001/actions/investigate",
        data={"_csrf_token": token, "version": "0"},
        headers=HTML,
    )
    assert stale.status_code == 409 and "refused" in stale.text

    done = await client.post(
        "/problems/PRB-2026-0001/actions/known-error",
        data={"_csrf_token": token, "version": "1", "root_cause": "Spool disk fills", "workaround": "Purge it"},
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "known error" in page.text.lower() and "Purge it" in page.text
    assert "Known error recorded" in page.text  # the history

    wrong = await client.post(
        "/problems/PRB-2026-0001/actions/close",
        data={"_csrf_token": token, "version": "2"},
        headers=HTML,
    )
    assert wrong.status_code == 409 and "Cannot close" in wrong.text

    raised = await client.post(
        "/problems/PRB-2026-0001/actions/raise-rfc",
        data={"_csrf_token": token, "version": "2"},
        headers=HTML,
        follow_redirects=False,
    )
    assert raised.status_code == 303
    page = await client.get("/problems/PRB-2026-0001")
    assert 'href="/changes/RFC-2026-0001"' in page.text

    listed = await client.get("/problems?status=known_error&customer=ACME")
    assert listed.status_code == 200 and 'data-problem="PRB-2026-0001"' in listed.text
    assert 'data-problem="PRB-2026-0001"' not in (await client.get("/problems?status=open")).text


async def test_form_post_needs_csrf(client: Client, world: World, seeded: dict[str, Any]) -> None:
    await sign_in_browser(client, world, "eve")
    response = await client.post("/problems/new", data={"customer": "ACME", "title": "x"}, headers=HTML)
    assert response.status_code == 403


async def test_customers_read_own_problems_without_actions(client: Client, world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    acme = (await eve.post("/api/problems", json={"customer": "ACME", "title": "Acme mail"})).json()
    globex = (await eve.post("/api/problems", json={"customer": "GLOBEX", "title": "Globex web"})).json()
    await sign_in_browser(client, world, "acme-contact")
    listed = await client.get("/problems")
    assert acme["key"] in listed.text and globex["key"] not in listed.text
    page = await client.get(f"/problems/{acme['key']}")
    assert page.status_code == 200 and actions(page.text) == set()
    assert "No action is open to you" in page.text
    assert (await client.get(f"/problems/{globex['key']}", headers=HTML)).status_code == 404
    assert (await client.get("/problems/new", headers=HTML)).status_code == 403
    token = csrf_from(page.text)
    refused = await client.post(
        f"/problems/{globex['key']}/actions/investigate", data={"_csrf_token": token}, headers=HTML
    )
    assert refused.status_code == 404
    mine = await client.post(f"/problems/{acme['key']}/actions/investigate", data={"_csrf_token": token}, headers=HTML)
    assert mine.status_code == 403


async def test_trends_page_marks_spikes_in_words(
    app: Litestar, client: Client, world: World, seeded: dict[str, Any]
) -> None:
    watch = FakeWatch()
    app.state.problems.watch_source = watch
    now = world.clock.now()
    watch.periods = [period(world, 9, (seeded["mail"].id,), now - dt.timedelta(days=1))]
    await sign_in_browser(client, world, "sam")
    page = await client.get("/problems/trends?days=30&min_count=3")
    assert page.status_code == 200
    assert "Spike: flagged" in page.text and 'class="spike-flagged"' in page.text
    assert "REL-2026-0009" in page.text and 'href="/problems/PRB-2026-0001"' in page.text
    assert "mail01" in page.text
    await sign_in_browser(client, world, "globex-contact")
    theirs = await client.get("/problems/trends")
    assert theirs.status_code == 200 and "mail01" not in theirs.text and "REL-2026-0009" not in theirs.text
