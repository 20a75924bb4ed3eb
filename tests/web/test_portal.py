"""The customer portal through the test client with a browser session: a contact's home shows
their CIs by class and the provider CIs they rely on (redacted), their open RFCs with the
approvals waiting for them, and links to their finished months' reports; nothing of another
customer; provider staff are sent to their own home."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from change.models import RFCState
from change.services import ChangeService
from cmdb.notifications import NotificationService
from incident.services import IncidentService
from release.services import ReleaseService
from tests.support import World
from tests.web.test_pages import csrf_from, signed_in
from web.controllers.pages_portal import report_months

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}
FULL = {
    "need": "The ERP database runs out of disk in two weeks.",
    "desired_result": "Data volume grown to 2 TB with no data loss.",
    "plan": "Extend the LUN, grow the volume, verify.",
    "backout_plan": "Restore the snapshot taken before the change.",
}


@pytest.fixture
def change(world: World) -> ChangeService:
    return ChangeService(world.clock, world.service)


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    cluster = await world.ci("PROV", "prov-shared-cluster-7", "cluster")
    san = await world.ci("PROV", "prov-san-secret", "storage")
    db = await world.ci("ACME", "acme-erp-db", "database")
    app = await world.ci("ACME", "acme-erp-app", "application")
    vm = await world.ci("ACME", "acme-vm-01", "virtual_machine")
    printer = await world.ci("ACME", "acme-printer", "server")
    await world.link(app.id, db.id)
    await world.link(db.id, vm.id, "runs_on")
    await world.link(vm.id, cluster.id, "hosted_on")
    await world.link(cluster.id, san.id)  # relied on through the cluster only
    globex = await world.ci("GLOBEX", "globex-hidden-shop", "application")
    await world.link(globex.id, cluster.id, "hosted_on")
    return {"cluster": cluster, "san": san, "db": db, "app": app, "vm": vm, "printer": printer, "globex": globex}


def section(html: str, heading_id: str) -> str:
    """The card whose heading has this id."""
    start = html.index(f'id="{heading_id}"')
    return html[start : html.find("</section>", start)]


async def test_customer_home_is_the_portal_and_staff_have_none(world: World, client: Client) -> None:
    await signed_in(client, world, "acme-contact")
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/portal"
    page = await client.get("/portal")
    assert page.status_code == 200
    assert "<h1>Acme Corp</h1>" in page.text
    nav = page.text.split('<nav class="site-nav"')[1].split("</nav>")[0]
    assert 'href="/portal" aria-current="page"' in nav
    await signed_in(client, world, "eve")
    staff = await client.get("/portal", follow_redirects=False)
    assert staff.status_code in (302, 303) and staff.headers["location"] == "/"
    nav = (await client.get("/cis")).text.split('<nav class="site-nav"')[1].split("</nav>")[0]
    assert "/portal" not in nav


async def test_portal_counts_own_cis_by_class_and_redacts_provider_cis(
    world: World, client: Client, estate: dict[str, Any]
) -> None:
    await signed_in(client, world, "acme-contact")
    html = (await client.get("/portal")).text
    cis = section(html, "cis-heading")
    counts = dict(re.findall(r'<a href="/cis\?class=[a-z_]+">([^<]+)</a></th><td class="num">(\d+)</td>', cis))
    assert counts == {"Server": "1", "Virtual machine": "1", "Application": "1", "Database": "1"}
    assert '<span class="count">4</span>' in cis
    # The cluster is relied on directly by acme-vm-01; the SAN through the cluster: both shown
    # by id and class, never by name.
    assert f"provider CI #{estate['cluster'].id}</span> (Cluster)" in cis
    assert f"provider CI #{estate['san'].id}</span>" in cis
    assert f'used by <a href="/cis/{estate["vm"].id}">acme-vm-01</a>' in cis
    for secret in ("prov-shared-cluster-7", "prov-san-secret", "globex", "Globex"):
        assert secret not in html, secret


async def test_portal_lists_open_rfcs_and_the_approvals_waiting_for_the_contact(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    admin, eve, carl = world.actors["admin"], world.actors["eve"], world.actors["carl"]
    await world.service.update_customer(admin, "ACME", {"sla": {"customer_approval": True}}, None)
    waiting = await change.create(eve, {"customer": "ACME", "title": "Grow ERP disk", "cis": [estate["db"].id], **FULL})
    await change.act(eve, waiting.id, "submit", {})
    await change.act(carl, waiting.id, "authorize", {"release_requirements": []})
    world.clock.advance(minutes=5)
    draft = await change.create(eve, {"customer": "ACME", "title": "Replace printer", "cis": [estate["printer"].id]})
    done = await change.create(eve, {"customer": "ACME", "title": "Withdrawn idea", "cis": [estate["app"].id]})
    await change.act(eve, done.id, "withdraw", {})
    await change.create(eve, {"customer": "GLOBEX", "title": "Globex secret plan", "cis": [estate["globex"].id]})

    await signed_in(client, world, "acme-contact")
    html = (await client.get("/portal")).text
    rfcs = section(html, "rfcs-heading")
    assert re.findall(r'<tr data-rfc="([^"]+)"', rfcs) == [draft.key, waiting.key]  # newest first
    assert "Withdrawn idea" not in html and "Globex secret plan" not in html
    assert "Awaited" in rfcs
    box = section(html, "waiting-heading")
    assert f'<a href="/changes/{waiting.key}#actions">{waiting.key}</a>' in box and "Your approval" in box
    assert draft.key not in box

    # The link leads to the RFC page, where the contact approves; then nothing waits.
    detail = await client.get(f"/changes/{waiting.key}")
    assert 'data-action="customer-approve"' in detail.text or "/actions/customer-approve" in detail.text
    approved = await client.post(
        f"/changes/{waiting.key}/actions/customer-approve",
        data={"_csrf_token": csrf_from(detail.text), "version": str((await change.get(eve, waiting.id)).rfc.version)},
        follow_redirects=False,
    )
    assert approved.status_code == 303, approved.text
    html = (await client.get("/portal")).text
    assert waiting.key not in section(html, "waiting-heading")
    assert "Given" in section(html, "rfcs-heading")
    assert (await change.get(eve, waiting.id)).rfc.state is RFCState.AUTHORIZED


async def test_portal_asks_for_information_the_change_manager_requested(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    contact = world.actors["acme-contact"]
    rfc = await change.create(contact, {"customer": "ACME", "title": "New VPN user", "cis": [estate["app"].id], **FULL})
    await change.act(contact, rfc.id, "submit", {})
    await change.act(world.actors["carl"], rfc.id, "request-info", {"comment": "Which user?"})
    await signed_in(client, world, "acme-contact")
    box = section((await client.get("/portal")).text, "waiting-heading")
    assert rfc.key in box and "Information you were asked for" in box


async def test_portal_links_the_finished_months_reports_newest_first(world: World, client: Client) -> None:
    await signed_in(client, world, "acme-contact")
    first = section((await client.get("/portal")).text, "reports-heading")
    assert "/reports/monthly/" not in first  # created in November 2026: no month is over yet
    assert "once November 2026 is over" in first
    world.clock.set(dt.datetime(2027, 2, 10, 12, 0, tzinfo=dt.UTC))
    reports = section((await client.get("/portal")).text, "reports-heading")
    assert re.findall(r'href="(/reports/monthly/[^"]+)"', reports) == [
        "/reports/monthly/ACME/2027-01",
        "/reports/monthly/ACME/2026-12",
        "/reports/monthly/ACME/2026-11",
    ]
    assert "January 2027" in reports


def test_report_months_follow_the_customers_time_zone_and_stop_at_twelve() -> None:
    utc = dt.UTC
    created = dt.datetime(2025, 3, 15, tzinfo=utc)
    months = report_months(created, dt.datetime(2026, 11, 22, tzinfo=utc), "UTC")
    assert len(months) == 12 and months[0] == "2026-10" and months[-1] == "2025-11"
    # 1 December 02:00 UTC is still 30 November in New York: November is not over there.
    now = dt.datetime(2026, 12, 1, 2, 0, tzinfo=utc)
    assert report_months(dt.datetime(2026, 10, 5, tzinfo=utc), now, "America/New_York") == ["2026-10"]
    assert report_months(dt.datetime(2026, 10, 5, tzinfo=utc), now, "Europe/London") == ["2026-11", "2026-10"]
    # Created on the last evening of October in New York (already November in UTC).
    late = dt.datetime(2026, 11, 1, 1, 0, tzinfo=utc)
    assert report_months(late, now, "America/New_York") == ["2026-10"]


async def test_portal_sections_are_empty_but_helpful_for_a_new_customer(world: World, client: Client) -> None:
    await signed_in(client, world, "globex-contact")
    html = (await client.get("/portal")).text
    assert "No configuration items are recorded for you yet." in html
    assert "No open changes." in html and 'href="/incidents"' in html
    assert "Nothing waits for your approval" in html and "No open incidents." in html


async def test_portal_lists_open_incidents_and_those_awaiting_confirmation(
    world: World, client: Client, estate: dict[str, Any]
) -> None:
    notifications = NotificationService(world.clock)
    change = ChangeService(world.clock, world.service)
    releases = ReleaseService(world.clock, world.service, change, notifications)
    incidents = IncidentService(world.clock, world.service, change, releases, notifications)
    eve = world.actors["eve"]
    resolved = await incidents.create(eve, {"customer": "ACME", "title": "ERP slow", "cis": [estate["db"].id]})
    await incidents.act(eve, resolved.key, "acknowledge", {"priority": "high"})
    await incidents.act(eve, resolved.key, "resolve", {"details": "Disk full", "actions_taken": "Rotated the logs"})
    world.clock.advance(minutes=5)
    fresh = await incidents.create(eve, {"customer": "ACME", "title": "Printer jams", "cis": [estate["printer"].id]})
    closed = await incidents.create(eve, {"customer": "ACME", "title": "Old outage", "cis": [estate["app"].id]})
    await incidents.act(eve, closed.key, "acknowledge", {})
    await incidents.act(eve, closed.key, "resolve", {"details": "d", "actions_taken": "a"})
    await incidents.act(world.actors["acme-contact"], closed.key, "confirm", {})
    await incidents.create(eve, {"customer": "GLOBEX", "title": "Globex secret outage", "cis": [estate["globex"].id]})

    await signed_in(client, world, "acme-contact")
    html = (await client.get("/portal")).text
    listed = section(html, "incidents-heading")
    assert sorted(re.findall(r'<tr data-incident="([^"]+)"', listed)) == sorted([fresh.key, resolved.key])
    assert "Old outage" not in html and "Globex secret outage" not in html
    box = section(html, "waiting-heading")
    assert f'<a href="/incidents/{resolved.key}">{resolved.key}</a>' in box
    assert "Confirm it is resolved, or reopen it" in box and fresh.key not in box
