"""Change management pages through the test client with a browser session: the change manager's
queue and one-click actions, the RFC form, the RFC page and its actions, refusals shown on the
page with nothing changed, the committee's votes, the calendar, tenancy and navigation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from change.models import RFCState
from change.services import ChangeService
from cmdb.models import Actor, Role
from tests.support import World
from web.controllers.pages import navigation

Client = AsyncTestClient[Litestar]
HTML = {"accept": "text/html"}
FULL = {
    "need": "The ERP database runs out of disk in two weeks.",
    "desired_result": "Data volume grown to 2 TB with no data loss.",
    "plan": "Extend the LUN, grow the volume, verify.",
    "backout_plan": "Restore the snapshot taken before the change.",
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


async def post_form(client: Client, url: str, data: dict[str, Any], page: str = "/changes") -> Any:
    """A form post as a browser sends it: with the CSRF token of a page it just loaded."""
    token = csrf_from((await client.get(page)).text)
    return await client.post(url, data={**data, "_csrf_token": token}, headers=HTML, follow_redirects=False)


def rows_in_order(html: str) -> list[str]:
    return re.findall(r'<tr data-rfc="([^"]+)"', html)


def action_buttons(html: str) -> set[str]:
    return set(re.findall(r'data-action="([^"]+)"', html))


@pytest.fixture
def change(world: World) -> ChangeService:
    return ChangeService(world.clock, world.service)


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    db = await world.ci("ACME", "erp-db", "database", criticality="medium")
    app = await world.ci("ACME", "erp-app", "application", criticality="medium")
    await world.link(app.id, db.id)
    other = await world.ci("ACME", "print-server", criticality="low")
    globex = await world.ci("GLOBEX", "globex-web")
    return {"db": db, "app": app, "other": other, "globex": globex}


async def raise_rfc(
    world: World, change: ChangeService, ci: int, *, by: str = "eve", submit: bool = True, **extra: Any
) -> Any:
    data = {"customer": "ACME", "title": "Grow ERP disk", "cis": [ci], **FULL, **extra}
    rfc = await change.create(world.actors[by], data)
    if submit:
        rfc = await change.act(world.actors[by], rfc.id, "submit", {})
    return rfc


async def to_approved(world: World, change: ChangeService, rfc: Any) -> Any:
    carl = world.actors["carl"]
    await change.act(carl, rfc.id, "authorize", {"release_requirements": []})
    return await change.act(carl, rfc.id, "approve", {})


# --- the queue --------------------------------------------------------------------------------


async def test_queue_lists_submitted_rfcs_by_priority_with_impact_and_risk(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    low = await raise_rfc(world, change, estate["other"].id, priority="low", title="Low one")
    critical = await raise_rfc(world, change, estate["db"].id, priority="critical", title="Critical one")
    medium = await raise_rfc(world, change, estate["app"].id, priority="medium", title="Medium one")
    draft = await raise_rfc(world, change, estate["other"].id, submit=False, title="Still a draft")
    await sign_in_browser(client, world, "carl")
    response = await client.get("/changes")
    assert response.status_code == 200
    html = response.text
    assert "<h1>Change queue</h1>" in html
    assert rows_in_order(html) == [critical.key, medium.key, low.key]
    assert draft.key not in html
    row = html.split(f'data-rfc="{critical.key}"')[1].split("</tr>")[0]
    assert "ACME" in row and "Critical one" in row
    assert 'class="badge c-blue">Submitted' in row
    assert ">Critical<" in row
    assert 'class="badge c-green">Low<' in row  # the impact class
    assert re.search(r'class="risk risk-\w+"[^>]*>\d+<', row)  # the risk score
    assert 'action="/changes/' + critical.key + '/actions/authorize"' in row
    assert 'name="release_requirements"' in row
    assert 'data-action="withdraw"' in row  # one-click, no input needed
    assert 'data-action="reject"' not in row  # needs a comment: on the RFC page
    all_rfcs = await client.get("/changes?all=1")
    assert draft.key in all_rfcs.text and 'href="/changes"' in all_rfcs.text


async def test_one_click_authorize_from_the_queue(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    rfc = await raise_rfc(world, change, estate["other"].id)
    await sign_in_browser(client, world, "carl")
    queue = await client.get("/changes")
    token = csrf_from(queue.text)
    refused = await client.post(
        f"/changes/{rfc.key}/actions/authorize", data={"release_requirements": "x"}, follow_redirects=False
    )
    assert refused.status_code == 403  # no CSRF token: refused before the handler
    assert (await change.get(world.actors["carl"], rfc.id)).rfc.state is RFCState.SUBMITTED
    response = await client.post(
        f"/changes/{rfc.key}/actions/authorize",
        data={
            "_csrf_token": token,
            "version": str(rfc.version),
            "release_requirements": "test evidence, vendor notes\nrollback rehearsal",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/changes/{rfc.key}?done=authorize"
    stored = (await change.get(world.actors["carl"], rfc.id)).rfc
    assert stored.state is RFCState.AUTHORIZED
    assert stored.release_requirements == ("test evidence", "vendor notes", "rollback rehearsal")
    page = await client.get(response.headers["location"])
    assert "Authorized." in page.text and "flash-info" in page.text
    # The manager's next steps are offered: approve (one click) and refer to the committee.
    assert {"approve", "refer-to-committee"} <= action_buttons(page.text)
    # An empty requirements field authorizes with none ("an empty list if there are none").
    other = await raise_rfc(world, change, estate["db"].id)
    again = await post_form(client, f"/changes/{other.key}/actions/authorize", {"release_requirements": ""})
    assert again.status_code == 303
    assert (await change.get(world.actors["carl"], other.id)).rfc.release_requirements == ()


async def test_an_action_not_allowed_shows_the_409_message_and_changes_nothing(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    rfc = await raise_rfc(world, change, estate["other"].id)
    carl = world.actors["carl"]
    await sign_in_browser(client, world, "carl")
    response = await post_form(client, f"/changes/{rfc.key}/actions/approve", {})
    assert response.status_code == 409
    assert f"Cannot approve: {rfc.key} is submitted" in response.text
    assert "flash-error" in response.text and "nothing changed" in response.text
    after = (await change.get(carl, rfc.id)).rfc
    assert (after.state, after.version) == (RFCState.SUBMITTED, rfc.version)
    # A stale page: the RFC moved on since it was loaded.
    await change.act(carl, rfc.id, "set-priority", {"priority": "high", "reason": "customer escalated"})
    stale = await post_form(
        client,
        f"/changes/{rfc.key}/actions/authorize",
        {"version": str(rfc.version), "release_requirements": ""},
    )
    assert stale.status_code == 409
    assert "changed by someone else" in stale.text
    assert (await change.get(carl, rfc.id)).rfc.state is RFCState.SUBMITTED
    # Missing input: 422, the reason next to the field, nothing changed.
    missing = await post_form(client, f"/changes/{rfc.key}/actions/reject", {"comment": "  "})
    assert missing.status_code == 422
    box = missing.text.split('id="action-reject"')[1].split("</form>")[0]
    assert "action-box failed" in missing.text
    assert 'id="reject-comment-error"' in box and "required" in box
    assert (await change.get(carl, rfc.id)).rfc.state is RFCState.SUBMITTED
    # The role does not allow it: 403 with the service's reason.
    await sign_in_browser(client, world, "eve")
    forbidden = await post_form(client, f"/changes/{rfc.key}/actions/authorize", {"release_requirements": ""})
    assert forbidden.status_code == 403
    assert f"Only a change manager may authorize {rfc.key}" in forbidden.text
    unknown = await post_form(client, f"/changes/{rfc.key}/actions/teleport", {})
    assert unknown.status_code == 422
    assert (await change.get(carl, rfc.id)).rfc.state is RFCState.SUBMITTED


# --- the RFC form -----------------------------------------------------------------------------


def new_form(**values: str) -> dict[str, str]:
    return {"customer": "ACME", "title": "Grow ERP disk", "type": "normal", "priority": "medium", **values}


async def test_the_rfc_form_creates_a_draft_and_save_and_submit_submits(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "eve")
    form = await client.get("/changes/new")
    assert form.status_code == 200
    assert '<select id="f-customer" name="customer"' in form.text and "America/New_York" in form.text
    for name in ("title", "cis", "need", "desired_result", "plan", "backout_plan", "deadline", "cost", "budget"):
        assert f'name="{name}"' in form.text, name
    for name in ("customer_ref", "urgency", "vulnerability", "patch_components", "available_at", "testing_done"):
        assert f'name="{name}"' in form.text, name
    draft = await post_form(
        client,
        "/changes/new",
        new_form(cis="erp-db, erp-app", deadline="2026-12-01T09:00", cost="1200", intent="draft"),
        page="/changes/new",
    )
    assert draft.status_code == 303, draft.text
    key = draft.headers["location"].split("/changes/")[1].split("?")[0]
    stored = (await change.get(world.actors["eve"], key)).rfc
    assert stored.state is RFCState.DRAFT
    assert set(stored.ci_ids) == {estate["db"].id, estate["app"].id}
    assert stored.deadline == dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
    assert str(stored.cost) == "1200.00"
    page = await client.get(draft.headers["location"])
    assert "Saved as a draft." in page.text and "erp-db" in page.text
    submitted = await post_form(
        client,
        "/changes/new",
        new_form(
            cis="print-server",
            intent="submit",
            customer_ref="ACME-CHG-77",
            urgency="important",
            vulnerability="CVE-2026-0001 in the print spooler",
            patch_components="spooler\ndriver pack",
            available_at="2026-10-30T08:00",
            testing_done="Pilot on two servers.",
            **FULL,
        ),
        page="/changes/new",
    )
    assert submitted.status_code == 303, submitted.text
    key = submitted.headers["location"].split("/changes/")[1].split("?")[0]
    stored = (await change.get(world.actors["eve"], key)).rfc
    assert stored.state is RFCState.SUBMITTED
    assert stored.customer_ref == "ACME-CHG-77" and stored.is_patch
    assert stored.patch_components == ("spooler", "driver pack")
    shown = (await client.get(submitted.headers["location"])).text
    assert "Submitted." in shown and "CVE-2026-0001" in shown and "Important" in shown


async def test_bad_input_shows_field_errors_keeps_values_and_saves_nothing(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "eve")
    for intent in ("draft", "submit"):
        response = await post_form(
            client,
            "/changes/new",
            new_form(
                title="",
                cis="erp-db, no-such-ci, globex-web",
                cost="-5",
                deadline="next tuesday",
                need="<b>keep me</b>",
                intent=intent,
            ),
            page="/changes/new",
        )
        assert response.status_code == 422, response.text
        html = response.text
        assert "Nothing was saved" in html
        for name in ("title", "cis", "cost", "deadline"):
            assert f'id="{name}-error"' in html, name
        cis_error = html.split('id="cis-error"')[1].split("</ul>")[0]
        assert "no-such-ci" in cis_error and "globex-web" in cis_error
        assert "must be a date and time, e.g." in html.split('id="deadline-error"')[1].split("</ul>")[0]
        assert 'value="-5"' in html and 'value="erp-db, no-such-ci, globex-web"' in html
        assert "&lt;b&gt;keep me&lt;/b&gt;" in html and "<b>keep me</b>" not in html
    assert (await change.list_rfcs(world.actors["carl"]))[1] == 0


async def test_save_and_submit_without_what_submission_needs_keeps_the_draft_and_lists_what_is_missing(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    await sign_in_browser(client, world, "eve")
    response = await post_form(
        client, "/changes/new", new_form(cis="", need="Disk is filling.", intent="submit"), page="/changes/new"
    )
    assert response.status_code == 422
    html = response.text
    items, total = await change.list_rfcs(world.actors["carl"])
    assert total == 1 and items[0].state is RFCState.DRAFT
    key = items[0].key
    assert f"Saved as draft {key}, but not submitted" in html
    for name in ("desired_result", "plan", "backout_plan", "cis"):
        assert f'id="{name}-error"' in html, name
    assert 'id="need-error"' not in html
    assert f'action="/changes/{key}/edit"' in html
    fixed = await post_form(
        client,
        f"/changes/{key}/edit",
        {"title": "Grow ERP disk", "type": "normal", "priority": "high", "cis": "erp-db", "intent": "submit", **FULL},
        page=f"/changes/{key}/edit",
    )
    assert fixed.status_code == 303, fixed.text
    stored = (await change.get(world.actors["eve"], key)).rfc
    assert stored.state is RFCState.SUBMITTED and stored.priority.value == "high"
    assert (await client.get(f"/changes/{key}/edit", headers=HTML)).status_code == 409  # no longer editable


# --- the RFC page -----------------------------------------------------------------------------


async def test_rfc_page_shows_timeline_impact_and_only_the_viewers_actions(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    rfc = await raise_rfc(world, change, estate["db"].id, title="<script>alert(1)</script>")
    await change.act(world.actors["carl"], rfc.id, "set-priority", {"priority": "high", "reason": "month end"})
    await sign_in_browser(client, world, "eve")
    page = await client.get(f"/changes/{rfc.key}")
    assert page.status_code == 200
    html = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    timeline = html.split('id="timeline-heading"')[1]
    for what in ("Created", "Submitted", "Priority changed"):
        assert f"<strong>{what}</strong>" in timeline, what
    assert "by carl" in timeline and "month end" in timeline and "priority medium → high" in timeline
    assert FULL["backout_plan"] in html
    # The impact picture: the affected CI and the one that depends on it.
    assert "<svg" in html and "erp-db" in html and "erp-app" in html
    assert "Impact class" in html and "Risk score" in html and "Live" in html
    buttons = action_buttons(html)
    assert "authorize" not in buttons and "approve" not in buttons
    assert buttons == {"withdraw"}  # the originator may withdraw, nothing else
    await sign_in_browser(client, world, "carl")
    buttons = action_buttons((await client.get(f"/changes/{rfc.key}")).text)
    assert buttons == {"request-info", "set-priority", "authorize", "reject", "withdraw"}
    await sign_in_browser(client, world, "rita")
    assert action_buttons((await client.get(f"/changes/{rfc.key}")).text) == set()


async def test_schedule_from_the_page_reads_times_in_the_customers_time_zone(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    rfc = await to_approved(world, change, await raise_rfc(world, change, estate["other"].id))
    await sign_in_browser(client, world, "carl")
    page = (await client.get(f"/changes/{rfc.key}")).text
    assert 'type="datetime-local" id="schedule-planned_start"' in page
    assert "America/New_York" in page
    bad = await post_form(
        client, f"/changes/{rfc.key}/actions/schedule", {"planned_start": "soon", "planned_end": "2026-11-13T23:00"}
    )
    assert bad.status_code == 422
    assert "must be a date and time, e.g." in bad.text and 'value="soon"' in bad.text
    done = await post_form(
        client,
        f"/changes/{rfc.key}/actions/schedule",
        {"planned_start": "2026-11-13T22:00", "planned_end": "2026-11-13T23:30", "comment": "after close"},
    )
    assert done.status_code == 303, done.text
    stored = (await change.get(world.actors["carl"], rfc.id)).rfc
    assert stored.planned_start == dt.datetime(2026, 11, 14, 3, 0, tzinfo=dt.UTC)
    assert stored.planned_end == dt.datetime(2026, 11, 14, 4, 30, tzinfo=dt.UTC)


# --- the committee ----------------------------------------------------------------------------


async def test_committee_member_sees_pending_votes_and_votes_from_the_page(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    hub = await world.ci("PROV", "core-san", "storage", criticality="critical")
    await world.link(estate["db"].id, hub.id, "depends_on")
    eve, carl = world.actors["eve"], world.actors["carl"]
    rfc = await change.create(eve, {"customer": "PROV", "title": "SAN firmware", "cis": [hub.id], **FULL})
    await change.act(eve, rfc.id, "submit", {})
    await change.act(carl, rfc.id, "authorize", {"release_requirements": ["vendor notes"]})
    await change.act(carl, rfc.id, "refer-to-committee", {})
    await sign_in_browser(client, world, "kim")
    votes = await client.get("/changes/votes")
    assert votes.status_code == 200
    pending = votes.text.split('id="pending-heading"')[1].split("</section>")[0]
    assert rfc.key in pending and f'href="/changes/{rfc.key}#action-vote"' in pending
    page = (await client.get(f"/changes/{rfc.key}")).text
    assert 'name="vote" value="approve"' in page and "Committee votes" in page
    assert "Required" in page  # the committee is required: high impact
    no_choice = await post_form(client, f"/changes/{rfc.key}/actions/vote", {"comment": "ok"})
    assert no_choice.status_code == 422
    assert 'id="vote-vote-error"' in no_choice.text
    voted = await post_form(client, f"/changes/{rfc.key}/actions/vote", {"vote": "approve", "comment": "firmware ok"})
    assert voted.status_code == 303, voted.text
    after = await client.get("/changes/votes")
    assert rfc.key not in after.text.split('id="pending-heading"')[1].split("</section>")[0]
    assert rfc.key in after.text.split('id="voted-heading"')[1]
    page = (await client.get(f"/changes/{rfc.key}")).text
    assert "firmware ok" in page and "Kim" in page
    # The originator never votes on their own RFC; others may not open the votes page at all.
    await sign_in_browser(client, world, "eve")
    assert (await client.get("/changes/votes", headers=HTML)).status_code == 403
    assert "vote" not in action_buttons((await client.get(f"/changes/{rfc.key}")).text)


# --- the calendar -----------------------------------------------------------------------------


async def test_calendar_places_scheduled_rfcs_on_their_days_and_marks_conflicts(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    carl = world.actors["carl"]
    slot = {"planned_start": "2026-11-14T03:00:00Z", "planned_end": "2026-11-14T05:00:00Z"}
    keys = []
    for ci in (estate["db"].id, estate["app"].id):
        rfc = await to_approved(world, change, await raise_rfc(world, change, ci))
        await change.act(carl, rfc.id, "schedule", slot)
        keys.append(rfc.key)
    alone = await to_approved(world, change, await raise_rfc(world, change, estate["other"].id))
    await change.act(
        carl, alone.id, "schedule", {"planned_start": "2026-11-20T03:00:00Z", "planned_end": "2026-11-20T04:00:00Z"}
    )
    await sign_in_browser(client, world, "carl")
    response = await client.get("/changes/calendar?month=2026-11")
    assert response.status_code == 200
    html = response.text
    day = html.split('data-date="2026-11-14"')[1].split("</td>")[0]
    for key in keys:
        assert key in day
    assert day.count("cal-item in-conflict") == 2 and "Conflict" in day
    other_day = html.split('data-date="2026-11-20"')[1].split("</td>")[0]
    assert alone.key in other_day and "in-conflict" not in other_day
    assert 'href="/changes/calendar?month=2026-10"' in html and 'href="/changes/calendar?month=2026-12"' in html
    assert (await client.get("/changes/calendar?month=2026-13", headers=HTML)).status_code == 422
    december = (await client.get("/changes/calendar?month=2026-12")).text
    assert keys[0] not in december
    # The queue's "scheduled soon" table and the RFC page carry the same marker.
    assert "conflict-mark" in (await client.get("/changes")).text
    assert "conflict-mark" in (await client.get(f"/changes/{keys[0]}")).text


# --- tenancy ----------------------------------------------------------------------------------


async def test_a_customer_sees_only_their_own_rfcs_and_raises_one(
    world: World, client: Client, change: ChangeService, estate: dict[str, Any]
) -> None:
    eve = world.actors["eve"]
    internal = await change.create(eve, {"customer": "PROV", "title": "Internal switch swap", "cis": []})
    globex = await change.create(eve, {"customer": "GLOBEX", "title": "Globex web", "cis": [estate["globex"].id]})
    acme = await raise_rfc(world, change, estate["db"].id, title="Acme disk")
    await sign_in_browser(client, world, "acme-contact")
    listed = await client.get("/changes")
    assert listed.status_code == 200
    assert rows_in_order(listed.text) == [acme.key]
    assert "Internal switch swap" not in listed.text and "Globex web" not in listed.text
    assert "<h1>My changes</h1>" in listed.text
    for other in (internal, globex):
        assert (await client.get(f"/changes/{other.key}", headers=HTML)).status_code == 404
        refused = await post_form(client, f"/changes/{other.key}/actions/withdraw", {})
        assert refused.status_code == 404
    assert (await change.get(eve, globex.id)).rfc.state is RFCState.DRAFT
    own = (await client.get(f"/changes/{acme.key}")).text
    assert "Acme disk" in own and action_buttons(own) == set()
    assert (await client.get("/changes/calendar", headers=HTML)).status_code == 403
    assert (await client.get("/changes/votes", headers=HTML)).status_code == 403
    form = await client.get("/changes/new")
    assert form.status_code == 200
    assert 'name="customer"' not in form.text and "ACME" in form.text
    created = await post_form(
        client,
        "/changes/new",
        {"customer": "GLOBEX", "title": "Please patch", "cis": "erp-db", "intent": "submit", **FULL},
        page="/changes/new",
    )
    assert created.status_code == 303, created.text
    key = created.headers["location"].split("/changes/")[1].split("?")[0]
    stored = (await change.get(eve, key)).rfc
    assert stored.tenant_id == world.acme.id and stored.origin.value == "customer"
    assert stored.state is RFCState.SUBMITTED
    refused = await post_form(
        client, "/changes/new", {"title": "Theirs", "cis": "globex-web", "intent": "draft"}, page="/changes/new"
    )
    assert refused.status_code == 422 and 'id="cis-error"' in refused.text


# --- navigation -------------------------------------------------------------------------------


def test_navigation_links_change_pages_by_role() -> None:
    def keys(*roles: Role, tenant: int = 1) -> list[str]:
        return [link.key for link in navigation(Actor(1, "x", "X", tenant, 1, frozenset(roles)))]

    def labels(*roles: Role, tenant: int = 1) -> list[str]:
        return [link.label for link in navigation(Actor(1, "x", "X", tenant, 1, frozenset(roles)))]

    change_keys = {"changes", "new-change", "calendar"}
    assert [k for k in keys(Role.CHANGE_MANAGER) if k in change_keys] == ["changes", "new-change", "calendar"]
    assert "Change queue" in labels(Role.CHANGE_MANAGER)
    assert "votes" in keys(Role.COMMITTEE_MEMBER) and "new-change" not in keys(Role.COMMITTEE_MEMBER)
    assert "Changes" in labels(Role.RELEASE_MANAGER) and "new-change" not in keys(Role.RELEASE_MANAGER)
    customer = labels(Role.CUSTOMER, tenant=2)
    assert "My changes" in customer and "Raise a change" in customer
    assert "Change calendar" not in customer and "Votes" not in customer and "Change queue" not in customer


async def test_navigation_shows_change_links_by_role(world: World, client: Client) -> None:
    expected = {
        "carl": ({"/changes", "/changes/new", "/changes/calendar"}, {"/changes/votes"}),
        "kim": ({"/changes", "/changes/votes", "/changes/calendar"}, {"/changes/new"}),
        "eve": ({"/changes", "/changes/new", "/changes/calendar"}, {"/changes/votes"}),
        "acme-contact": ({"/changes", "/changes/new"}, {"/changes/votes", "/changes/calendar"}),
    }
    for username, (shown, hidden) in expected.items():
        await sign_in_browser(client, world, username)
        page = (await client.get("/cis")).text
        nav = page.split('<nav class="site-nav"')[1].split("</nav>")[0]
        links = set(re.findall(r'href="([^"]+)"', nav))
        assert shown <= links, (username, links)
        assert not hidden & links, (username, links)
        for href in shown:
            assert (await client.get(href, headers=HTML)).status_code == 200, (username, href)
    await sign_in_browser(client, world, "acme-contact")
    nav = (await client.get("/changes")).text.split('<nav class="site-nav"')[1].split("</nav>")[0]
    assert "My changes" in nav and "Raise a change" in nav and 'aria-current="page">My changes' in nav
