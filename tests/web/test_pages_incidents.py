"""Incident pages and the service dashboard through the test client with a browser session:
the engineer's queue and its tabs with the SLA clock, the incident form, the incident page and
its actions (refusals shown on the page, stale versions refused), a customer confirming their
own incident and never seeing another tenant's, the dashboard page and its JSON."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from incident.models import IncidentStatus
from tests.integration.test_dashboard import build_october
from tests.integration.test_incidents import Desk, build_desk
from tests.support import World
from tests.web.test_pages_change import csrf_from, sign_in_browser
from web.controllers.pages import navigation

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}


def rows_in_order(html: str) -> list[str]:
    return re.findall(r'<tr data-incident="([^"]+)"', html)


def row_of(html: str, key: str) -> str:
    return html.split(f'data-incident="{key}"')[1].split("</tr>")[0]


async def post_form(client: Client, url: str, data: dict[str, Any], page: str) -> Any:
    """A form post as a browser sends it: with the CSRF token of the page it just loaded."""
    token = csrf_from((await client.get(page)).text)
    return await client.post(url, data={**data, "_csrf_token": token}, headers=HTML, follow_redirects=False)


async def version_of(desk: Desk, key: str) -> str:
    return str((await desk.incidents.get(desk.world.actors["admin"], key)).incident.version)


@pytest.fixture
async def october(world: World) -> dict[str, int]:
    """The October of tests/integration/test_dashboard.py, counted by hand there."""
    return await build_october(world)


@pytest.fixture
async def desk(world: World) -> Desk:
    return build_desk(world)


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    erp = await world.ci("ACME", "erp-db", "database")
    mail = await world.ci("ACME", "mail-server")
    web = await world.ci("GLOBEX", "globex-web")
    return {"erp": erp, "mail": mail, "web": web}


async def record(desk: Desk, ci: Any, customer: str = "ACME", by: str = "eve", **extra: Any) -> Any:
    data = {"customer": customer, "title": "ERP is down", "cis": [ci.id], "symptoms": "users cannot log in", **extra}
    return await desk.incidents.create(desk.world.actors[by], data)


def figure(html: str, key: str) -> str:
    match = re.search(
        rf'data-figure="{key}">\s*<h2 class="dash-label">[^<]*</h2>\s*'
        r'<p class="dash-value">([^<]*)</p>\s*<p class="dash-detail[^"]*">([^<]*)</p>',
        html,
    )
    assert match, f"no figure {key}"
    return f"{match.group(1)} | {match.group(2)}"


# --- the service dashboard --------------------------------------------------------------------


async def test_dashboard_page_shows_the_last_full_month(world: World, client: Client, october: dict[str, int]) -> None:
    await sign_in_browser(client, world, "sam")
    response = await client.get("/dashboard/service")
    assert response.status_code == 200, response.text
    html = response.text
    assert 'name="from" value="2026-10-01"' in html and 'name="to" value="2026-10-31"' in html
    assert '<strong data-figure="incidents">6</strong>' in html
    assert figure(html, "response") == "60.0 % | 3 of 5 met, 1 not due yet"
    assert figure(html, "resolution") == "60.0 % | 3 of 5 met, 1 not due yet"
    assert figure(html, "escalation").startswith("50.0 % | 3 of 6")
    assert figure(html, "reopen").startswith("25.0 % | 1 of 4")
    assert figure(html, "first-contact").startswith("33.3 % | 1 of 3")
    eve = html.split('data-engineer="Eve"')[1].split("</tr>")[0]
    assert "<td>90</td><td>120</td>" in eve and "+30" in eve and "133.3 %" in eve and "<td>165</td>" in eve


async def test_dashboard_page_for_one_customer_and_period(
    world: World, client: Client, october: dict[str, int]
) -> None:
    await sign_in_browser(client, world, "admin")
    html = (await client.get("/dashboard/service?customer=ACME&from=2026-10-01&to=2026-10-31")).text
    assert '<strong data-figure="incidents">5</strong>' in html
    assert '<option value="ACME" selected>' in html
    assert figure(html, "resolution") == "75.0 % | 3 of 4 met, 1 not due yet"
    bad = await client.get("/dashboard/service?from=01/10/2026&to=2026-10-31", headers=HTML)
    assert bad.status_code == 422
    assert 'id="from-error"' in bad.text and "YYYY-MM-DD" in bad.text


async def test_dashboard_json(world: World, sign_in: Any, october: dict[str, int]) -> None:
    sam = await sign_in("sam")
    response = await sam.get("/api/dashboard/service?customer=ACME&from=2026-10-01&to=2026-10-31")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer"] == "ACME" and body["incidents"] == 5
    assert body["response_attainment"] == {"met": 3, "missed": 1, "pending": 1, "rate": 0.75}
    assert body["first_contact_resolution"]["count"] == 1
    assert [e["name"] for e in body["engineers"]] == ["Eve", "Sam"]
    everyone = (await sam.get("/api/dashboard/service")).json()
    assert (everyone["from"], everyone["to"], everyone["incidents"]) == ("2026-10-01", "2026-10-31", 6)
    bad = await sam.get("/api/dashboard/service?from=2026-13-01")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "from"
    backwards = await sam.get("/api/dashboard/service?from=2026-10-02&to=2026-10-01")
    assert backwards.status_code == 422 and backwards.json()["fields"][0]["field"] == "to"
    assert (await sam.get("/api/dashboard/service?customer=NOPE")).status_code == 404
    contact = await sign_in("acme-contact")
    assert (await contact.get("/api/dashboard/service")).status_code == 403
    assert (await contact.get("/api/dashboard/service?customer=ACME")).status_code == 403


async def test_dashboard_refused_to_customers_and_in_navigation_for_managers(world: World, client: Client) -> None:
    await sign_in_browser(client, world, "acme-contact")
    assert (await client.get("/dashboard/service", headers=HTML)).status_code == 403
    labels = {link.label for link in navigation(world.actors["sam"])}
    assert "Service dashboard" in labels
    assert "Service dashboard" in {link.label for link in navigation(world.actors["admin"])}
    assert "Service dashboard" not in {link.label for link in navigation(world.actors["eve"])}
    assert "Service dashboard" not in {link.label for link in navigation(world.actors["acme-contact"])}
    csrf_from((await client.get("/changes")).text)  # the session is a working browser session


# --- the queue --------------------------------------------------------------------------------


async def test_queue_tabs_by_nearest_due_time_with_the_sla_clock(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    eve = world.actors["eve"]
    low = await record(desk, estate["mail"], priority="low", title="Mail slow")
    critical = await record(desk, estate["erp"], priority="critical", title="ERP halted")
    high = await record(desk, estate["web"], customer="GLOBEX", priority="high", title="Web down")
    await desk.incidents.act(eve, critical.key, "take", {})
    await desk.incidents.act(world.actors["sam"], high.key, "assign", {"person": "sam"})
    await sign_in_browser(client, world, "eve")

    mine = (await client.get("/incidents")).text
    assert "<h1>Incident queue</h1>" in mine
    assert rows_in_order(mine) == [critical.key]
    assert 'data-tab="mine" aria-current="page"' in mine
    team = (await client.get("/incidents?tab=team")).text
    assert rows_in_order(team) == [critical.key, low.key]  # mine and the unassigned one, not sam's
    everything = (await client.get("/incidents?tab=all")).text
    assert rows_in_order(everything) == [critical.key, high.key, low.key]  # 1 h, 2 h, 2 business days
    row = row_of(everything, critical.key)
    assert "ACME" in row and "ERP halted" in row and ">Critical<" in row and ">New<" in row and "Eve" in row
    assert 'class="sla sla-on_track"' in row and "1 h left" in row and "Response · 0 % used" in row
    assert "Unassigned" in row_of(everything, low.key)
    only_globex = (await client.get("/incidents?tab=all&customer=GLOBEX")).text
    assert rows_in_order(only_globex) == [high.key]

    world.clock.advance(minutes=50)  # 50 of 60 minutes: past the 75 % escalation share
    row = row_of((await client.get("/incidents?tab=all")).text, critical.key)
    assert 'class="sla sla-at_risk"' in row and "10 min left" in row and "83 % used" in row
    world.clock.advance(minutes=70)
    row = row_of((await client.get("/incidents?tab=all")).text, critical.key)
    assert 'class="sla sla-breached"' in row and "Overdue by 1 h" in row
    assert (await client.get("/incidents?tab=everyone", headers=HTML)).status_code == 422


async def test_paused_clock_is_marked(world: World, client: Client, desk: Desk, estate: dict[str, Any]) -> None:
    eve = world.actors["eve"]
    incident = await record(desk, estate["erp"], priority="high")
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    await desk.incidents.act(eve, incident.key, "hold", {"reason": "customer"})
    await sign_in_browser(client, world, "eve")
    row = row_of((await client.get("/incidents?tab=all")).text, incident.key)
    assert 'class="sla sla-paused"' in row and "Paused" in row and 'aria-label="Clock paused"' in row


# --- tenancy ----------------------------------------------------------------------------------


async def test_customer_sees_only_their_own_incidents(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    mine = await record(desk, estate["erp"], title="ERP halted")
    theirs = await record(desk, estate["web"], customer="GLOBEX", title="Globex web down")
    await sign_in_browser(client, world, "acme-contact")
    listing = (await client.get("/incidents")).text
    assert "<h1>My incidents</h1>" in listing
    assert rows_in_order(listing) == [mine.key]
    assert theirs.key not in listing and "Globex web down" not in listing
    assert (await client.get(f"/incidents/{theirs.key}", headers=HTML)).status_code == 404
    assert (await client.get(f"/incidents/{theirs.id}", headers=HTML)).status_code == 404
    refused = await post_form(client, f"/incidents/{theirs.key}/actions/confirm", {"version": "1"}, "/incidents")
    assert refused.status_code == 404
    own = await client.get(f"/incidents/{mine.key}")
    assert own.status_code == 200 and "ERP halted" in own.text
    assert 'id="matches"' not in own.text and 'id="record-time"' not in own.text
    labels = [link.label for link in navigation(world.actors["acme-contact"])]
    assert "My incidents" in labels and "Incidents" not in labels
    assert "Incidents" in [link.label for link in navigation(world.actors["eve"])]


# --- the form ---------------------------------------------------------------------------------


async def test_form_errors_then_matches_and_link_as_parent(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    earlier = await record(desk, estate["erp"], title="ERP login fails", symptoms="users cannot log in to the ERP")
    await sign_in_browser(client, world, "eve")
    form = await client.get("/incidents/new")
    assert form.status_code == 200 and 'name="cis"' in form.text and 'name="customer"' in form.text
    bad = await post_form(
        client,
        "/incidents/new",
        {"customer": "ACME", "title": " ", "cis": "no-such-ci", "priority": "high"},
        "/incidents/new",
    )
    assert bad.status_code == 422
    assert 'id="title-error"' in bad.text and 'id="cis-error"' in bad.text
    assert 'value="no-such-ci"' in bad.text  # what was typed comes back
    created = await post_form(
        client,
        "/incidents/new",
        {
            "customer": "ACME",
            "title": "Cannot log in to ERP",
            "cis": "erp-db",
            "priority": "high",
            "symptoms": "users cannot log in to the ERP since 9:00",
            "reported_by": "Pat at ACME",
        },
        "/incidents/new",
    )
    assert created.status_code == 303, created.text
    target = created.headers["location"]
    key = target.split("/incidents/")[1].split("?")[0]
    html = (await client.get(target)).text
    assert "Recorded." in html and 'see <a href="#matches">matches</a>' in html
    match_row = html.split(f'data-match="{earlier.key}"')[1].split("</tr>")[0]
    assert 'action="/incidents/' + key + '/actions/link"' in match_row
    linked = await post_form(
        client,
        f"/incidents/{key}/actions/link",
        {"parent": earlier.key, "version": await version_of(desk, key)},
        target,
    )
    assert linked.status_code == 303, linked.text
    page = (await client.get(f"/incidents/{key}")).text
    assert f'<a href="/incidents/{earlier.key}">{earlier.key}</a>' in page


# --- actions ----------------------------------------------------------------------------------


async def test_actions_refusals_and_a_customer_confirming(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    incident = await record(desk, estate["erp"], priority="normal")
    key = incident.key
    page_url = f"/incidents/{key}"
    await sign_in_browser(client, world, "eve")
    html = (await client.get(page_url)).text
    assert 'id="action-acknowledge"' in html and 'name="priority"' in html.split('id="action-acknowledge"')[1]
    assert "SLA targets and due times" in html and 'data-target="response"' in html
    done = await post_form(client, f"{page_url}/actions/acknowledge", {"priority": "high", "version": "1"}, page_url)
    assert done.status_code == 303 and done.headers["location"] == f"{page_url}?done=acknowledge"
    stale = await post_form(client, f"{page_url}/actions/take", {"version": "1"}, page_url)
    assert stale.status_code == 409 and "refused, nothing changed" in stale.text
    again = await post_form(
        client, f"{page_url}/actions/acknowledge", {"version": await version_of(desk, key)}, page_url
    )
    assert again.status_code == 409 and "Acknowledge refused" in again.text
    taken = await post_form(client, f"{page_url}/actions/take", {"version": await version_of(desk, key)}, page_url)
    assert taken.status_code == 303
    missing = await post_form(client, f"{page_url}/actions/hold", {"version": await version_of(desk, key)}, page_url)
    assert missing.status_code == 422 and 'id="hold-reason-error"' in missing.text
    bad_time = await post_form(client, f"{page_url}/time", {"minutes": "lots"}, page_url)
    assert bad_time.status_code == 422 and 'id="time-minutes-error"' in bad_time.text
    timed = await post_form(
        client, f"{page_url}/time", {"minutes": "45", "estimated_minutes": "30", "note": "logs"}, page_url
    )
    assert timed.status_code == 303
    resolved = await post_form(
        client,
        f"{page_url}/actions/resolve",
        {
            "details": "Disk full",
            "actions_taken": "Freed space",
            "sla_covered": "yes",
            "version": await version_of(desk, key),
        },
        page_url,
    )
    assert resolved.status_code == 303, resolved.text
    staff_page = (await client.get(page_url)).text
    assert 'data-event="time_recorded"' in staff_page and "eve: 45 min (estimated 30 min)" in staff_page

    await sign_in_browser(client, world, "acme-contact")
    customer_page = (await client.get(page_url)).text
    assert "Please confirm it is fixed" in customer_page
    assert 'id="action-confirm"' in customer_page and 'id="action-reopen"' in customer_page
    assert 'id="action-take"' not in customer_page
    assert 'data-event="time_recorded"' not in customer_page and 'id="record-time"' not in customer_page
    no_token = await client.post(
        f"{page_url}/actions/confirm", data={"version": await version_of(desk, key)}, headers=HTML
    )
    assert no_token.status_code == 403
    confirmed = await post_form(
        client, f"{page_url}/actions/confirm", {"version": await version_of(desk, key)}, page_url
    )
    assert confirmed.status_code == 303, confirmed.text
    view = await desk.incidents.get(world.actors["admin"], key)
    assert view.incident.status is IncidentStatus.CLOSED
    assert "Confirmed by the customer" in (await client.get(page_url)).text


async def test_customer_reopens_and_reports_through_the_form(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    eve = world.actors["eve"]
    incident = await record(desk, estate["erp"])
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    await desk.incidents.act(eve, incident.key, "resolve", {"details": "Restarted", "actions_taken": "Restart"})
    page_url = f"/incidents/{incident.key}"
    await sign_in_browser(client, world, "acme-contact")
    no_reason = await post_form(
        client, f"{page_url}/actions/reopen", {"version": await version_of(desk, incident.key)}, page_url
    )
    assert no_reason.status_code == 422 and 'id="reopen-reason-error"' in no_reason.text
    reopened = await post_form(
        client,
        f"{page_url}/actions/reopen",
        {"reason": "Still failing", "version": await version_of(desk, incident.key)},
        page_url,
    )
    assert reopened.status_code == 303
    assert (await desk.incidents.get(eve, incident.key)).incident.reopen_count == 1
    form = (await client.get("/incidents/new")).text
    assert 'name="customer"' not in form.split("<form")[2] and ">ACME<" in form
    created = await post_form(
        client, "/incidents/new", {"customer": "GLOBEX", "title": "Mail down", "cis": "mail-server"}, "/incidents/new"
    )
    assert created.status_code == 303  # recorded for their own tenant, whatever the form said
    key = created.headers["location"].split("/incidents/")[1].split("?")[0]
    assert (await desk.incidents.get(eve, key)).customer.key == "ACME"


async def test_the_queue_opens_on_all_for_staff_who_are_not_engineers(
    world: World, client: Client, desk: Desk, estate: dict[str, Any]
) -> None:
    incident = await record(desk, estate["mail"], priority="low", title="Mail slow")
    await sign_in_browser(client, world, "sam")
    queue = (await client.get("/incidents")).text
    assert 'data-tab="all" aria-current="page"' in queue
    assert incident.key in queue
