"""Incidents through IncidentService on the test database: intake, SLA dues, the workflow,
recent changes, matching, watch periods, time and communications, risk feedback.

The world's clock starts on Monday 2026-11-02 14:00 UTC: 09:00 in New York (ACME), 14:00 in
London (GLOBEX); both open 09:00-17:00 local on weekdays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.notifications import NotificationService
from incident.models import IncidentStatus
from incident.services import IncidentService
from release.services import ReleaseService
from tests.support import World

UTC = dt.UTC


@dataclass
class Desk:
    world: World
    incidents: IncidentService
    change: ChangeService
    releases: ReleaseService
    notifications: NotificationService

    def actor(self, username: str) -> Any:
        return self.world.actors[username]


def build_desk(world: World) -> Desk:
    notifications = NotificationService(world.clock)
    change = ChangeService(world.clock, world.service)
    releases = ReleaseService(world.clock, world.service, change, notifications)
    incidents = IncidentService(world.clock, world.service, change, releases, notifications)
    change.incident_history = incidents
    return Desk(world, incidents, change, releases, notifications)


@pytest.fixture
async def desk(world: World) -> Desk:
    return build_desk(world)


async def _incident(desk: Desk, ci: Any, **extra: Any) -> Any:
    data = {"customer": "ACME", "title": "ERP is down", "cis": [ci.id], "symptoms": "users cannot log in", **extra}
    return await desk.incidents.create(desk.actor("eve"), data)


# --- intake -----------------------------------------------------------------------------------


async def test_create_gives_a_key_sla_dues_and_history(desk: Desk) -> None:
    server = await desk.world.ci("ACME", "erp-server")
    incident = await _incident(desk, server, priority="high", reported_by="Pat", contact="555-0100")
    assert incident.key == "INC-2026-0001"
    assert incident.status is IncidentStatus.NEW
    # High: response 2 business hours, resolution 8 (09:00 New York: due at closing, 17:00).
    assert incident.response_due == dt.datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    assert incident.resolution_due == dt.datetime(2026, 11, 2, 22, 0, tzinfo=UTC)
    assert incident.received_by_id == desk.actor("eve").person_id
    second = await _incident(desk, server)
    assert second.key == "INC-2026-0002"
    history = await desk.incidents.history(desk.actor("eve"), incident.key)
    assert [h.action for h in history] == ["created"]
    ci_history, _ = await cmdb_repo.history_for_ci(server.id, 50, 0)
    assert "incident_opened" in [h.action for h in ci_history]


async def test_create_refuses_bad_input_naming_fields(desk: Desk) -> None:
    await desk.world.ci("ACME", "erp-server")
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.create(
            desk.actor("eve"), {"customer": "ACME", "title": " ", "cis": ["nope"], "priority": "urgent", "colour": 1}
        )
    fields = {p.field for p in caught.value.problems}
    assert {"title", "cis", "priority", "colour"} <= fields
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.create(desk.actor("eve"), {"title": "x"})
    assert {"customer", "cis"} <= {p.field for p in caught.value.problems}


async def test_customer_records_own_incident_and_cannot_see_others(desk: Desk) -> None:
    acme_ci = await desk.world.ci("ACME", "erp-server")
    globex_ci = await desk.world.ci("GLOBEX", "globex-web")
    contact = desk.actor("acme-contact")
    mine = await desk.incidents.create(contact, {"customer": "ACME", "title": "Slow ERP", "cis": [acme_ci.name]})
    assert mine.source.value == "customer" and mine.reported_by == contact.name
    theirs = await desk.incidents.create(
        desk.actor("eve"), {"customer": "GLOBEX", "title": "Web down", "cis": [globex_ci.id]}
    )
    with pytest.raises(NotFound):
        await desk.incidents.get(contact, theirs.key)
    with pytest.raises(InvalidInput):
        await desk.incidents.create(contact, {"customer": "GLOBEX", "title": "x", "cis": [globex_ci.id]})
    listed, total = await desk.incidents.list_incidents(contact)
    assert total == 1 and [i.key for i in listed] == [mine.key]


# --- ALERTS interface ---------------------------------------------------------------------------


async def test_open_from_alert_repeat_and_is_open(desk: Desk) -> None:
    server = await desk.world.ci("ACME", "erp-server")
    observed = desk.world.clock.now() - dt.timedelta(minutes=5)
    incident = await desk.incidents.open_from_alert(
        tenant_id=desk.world.acme.id,
        ci_id=server.id,
        priority="critical",
        title="CPU above 90 %",
        symptoms="cpu_percent 97 for 600 s",
        observed_at=observed,
    )
    assert incident.source.value == "alert" and incident.ci_ids == (server.id,)
    assert incident.response_due == desk.world.clock.now() + dt.timedelta(hours=1)
    assert await desk.incidents.is_open(incident.id)
    await desk.incidents.record_alert_repeat(incident.id, summary="cpu_percent 99", observed_at=observed)
    history = await desk.incidents.history(desk.actor("eve"), incident.id)
    assert [h.action for h in history] == ["created", "alert_repeated"]
    assert history[0].actor_name == "system" and (history[1].after or {})["observed_at"] == observed.isoformat()
    assert not await desk.incidents.is_open(999_999)


# --- the workflow -------------------------------------------------------------------------------


async def test_full_life_acknowledge_hold_resolve_reopen_confirm(desk: Desk) -> None:
    world, eve, sam = desk.world, desk.actor("eve"), desk.actor("sam")
    server = await world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    # Normal: response by the close of the next business day; resolution 3 business days.
    assert incident.response_due == dt.datetime(2026, 11, 3, 22, 0, tzinfo=UTC)
    assert incident.resolution_due == dt.datetime(2026, 11, 5, 14, 0, tzinfo=UTC)
    world.clock.advance(minutes=20)
    acked = await desk.incidents.act(eve, incident.key, "acknowledge", {"priority": "high", "classification": "erp"})
    assert acked.status is IncidentStatus.OPEN and acked.classification == "erp"
    assert acked.responded_at == world.clock.now()
    # A new priority recomputes the targets from when the incident was received.
    assert acked.response_due == dt.datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    assert acked.resolution_due == dt.datetime(2026, 11, 2, 22, 0, tzinfo=UTC)
    taken = await desk.incidents.act(eve, incident.key, "take", {})
    assert taken.assignee_id == eve.person_id
    held = await desk.incidents.act(eve, incident.key, "hold", {"reason": "research"})
    assert held.status is IncidentStatus.HOLD_RESEARCH and held.paused_since is None  # research does not pause
    await desk.incidents.act(eve, incident.key, "hold", {"reason": "customer", "comment": "Asked for logs"})
    world.clock.advance(hours=2)  # two business hours waiting for the customer
    resumed = await desk.incidents.act(desk.actor("acme-contact"), incident.key, "resume", {"comment": "Logs sent"})
    assert resumed.status is IncidentStatus.OPEN and resumed.paused_since is None
    assert resumed.resolution_due == dt.datetime(2026, 11, 3, 16, 0, tzinfo=UTC)  # 17:00 + 2 business hours
    assert resumed.pauses[0].business_seconds == 7200
    with pytest.raises(Conflict) as caught:
        await desk.incidents.act(desk.actor("acme-contact"), incident.key, "confirm", {})
    assert caught.value.state == "open" and "resolve" in caught.value.allowed
    with pytest.raises(InvalidInput) as bad:
        await desk.incidents.act(eve, incident.key, "resolve", {"details": "Restarted"})
    assert [p.field for p in bad.value.problems] == ["actions_taken"]
    world.clock.advance(minutes=30)
    resolved = await desk.incidents.act(
        eve, incident.key, "resolve", {"details": "Disk full", "actions_taken": "Rotated the logs"}
    )
    assert resolved.status is IncidentStatus.HOLD_RESOLUTION and resolved.awaiting_confirmation
    assert resolved.closure is not None and resolved.closure.sla_covered and resolved.closure.resolved_by == "eve"
    assert resolved.closure.time_to_resolve_minutes == 170
    reopened = await desk.incidents.act(desk.actor("acme-contact"), incident.key, "reopen", {"reason": "Still slow"})
    assert reopened.status is IncidentStatus.OPEN and reopened.reopen_count == 1
    await desk.incidents.act(eve, incident.key, "resolve", {"details": "Disk full", "actions_taken": "Grew disk"})
    closed = await desk.incidents.act(desk.actor("acme-contact"), incident.key, "confirm", {})
    assert closed.status is IncidentStatus.CLOSED and closed.closed_at == world.clock.now()
    assert closed.closure is not None and closed.closure.confirmed_by == "acme-contact"
    assert not await desk.incidents.is_open(closed.id)
    actions = [h.action for h in await desk.incidents.history(sam, incident.key)]
    assert actions == [
        "created",
        "acknowledged",
        "taken",
        "held",
        "held",
        "resumed",
        "resolved",
        "reopened",
        "resolved",
        "confirmed",
    ]
    with pytest.raises(Conflict) as caught:
        await desk.incidents.act(desk.actor("acme-contact"), incident.key, "confirm", {})
    assert caught.value.state == "closed"


async def test_pause_can_be_switched_off_by_the_sla(desk: Desk) -> None:
    world, eve, admin = desk.world, desk.actor("eve"), desk.actor("admin")
    await world.service.update_customer(admin, "ACME", {"sla": {"pause_when_waiting_for_customer": False}}, None)
    server = await world.ci("ACME", "erp-server")
    incident = await _incident(desk, server, priority="high")
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    held = await desk.incidents.act(eve, incident.key, "hold", {"reason": "customer"})
    assert held.paused_since is None
    world.clock.advance(hours=2)
    resumed = await desk.incidents.act(eve, incident.key, "resume", {})
    assert resumed.resolution_due == incident.resolution_due


async def test_two_engineers_taking_one_incident_one_wins(desk: Desk) -> None:
    world = desk.world
    ola = desk.actor("ola")
    server = await world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    results = await asyncio.gather(
        desk.incidents.act(desk.actor("eve"), incident.key, "take", {}),
        desk.incidents.act(ola, incident.key, "take", {}),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and len(losses) == 1 and isinstance(losses[0], Conflict)
    final = (await desk.incidents.get(desk.actor("sam"), incident.key)).incident
    assert final.assignee_id == wins[0].assignee_id and final.version == incident.version + 1
    # Taking what someone else holds is refused; reassigning needs a reason.
    other = desk.actor("eve") if wins[0].assignee_id == ola.person_id else ola
    with pytest.raises(Conflict):
        await desk.incidents.act(other, incident.key, "take", {})
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(desk.actor("sam"), incident.key, "assign", {"person": other.username})
    assert [p.field for p in caught.value.problems] == ["reason"]
    moved = await desk.incidents.act(
        desk.actor("sam"), incident.key, "assign", {"person": other.username, "reason": "Needs ERP expertise"}
    )
    assert moved.assignee_id == other.person_id
    last = (await desk.incidents.history(desk.actor("sam"), incident.key))[-1]
    assert (last.after or {})["technical_escalation"] is True and (last.after or {})["reason"] == "Needs ERP expertise"


async def test_stale_version_and_roles(desk: Desk) -> None:
    server = await desk.world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    with pytest.raises(StaleVersion):
        await desk.incidents.act(desk.actor("eve"), incident.key, "acknowledge", {}, expected_version=7)
    with pytest.raises(Forbidden):
        await desk.incidents.act(desk.actor("acme-contact"), incident.key, "acknowledge", {})
    with pytest.raises(NotFound):
        await desk.incidents.act(desk.actor("globex-contact"), incident.key, "acknowledge", {})
    with pytest.raises(InvalidInput):
        await desk.incidents.act(desk.actor("eve"), incident.key, "dance", {})
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(desk.actor("eve"), incident.key, "acknowledge", {"priority": "urgent"})
    assert [p.field for p in caught.value.problems] == ["priority"]


async def test_escalate_technical_and_to_change_management(desk: Desk) -> None:
    eve, ola = desk.actor("eve"), desk.actor("ola")
    server = await desk.world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    await desk.incidents.act(eve, incident.key, "take", {})
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(eve, incident.key, "escalate", {"to": "acme-contact", "reason": "help"})
    assert [p.field for p in caught.value.problems] == ["to"]
    escalated = await desk.incidents.act(eve, incident.key, "escalate", {"to": "ola", "reason": "Beyond me"})
    assert escalated.assignee_id == ola.person_id and escalated.status is IncidentStatus.OPEN
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(ola, incident.key, "escalate", {"to": "change_management"})
    assert [p.field for p in caught.value.problems] == ["reason"]
    raised = await desk.incidents.act(
        ola, incident.key, "escalate", {"to": "change_management", "reason": "The backup procedure must change"}
    )
    assert raised.status is IncidentStatus.RFC_SUBMITTED and raised.rfc_key
    rfc = (await desk.change.get(ola, raised.rfc_key)).rfc
    assert rfc.origin.value == "incident" and rfc.origin_ref == incident.key and rfc.ci_ids == (server.id,)
    with pytest.raises(Conflict) as conflict:
        await desk.incidents.act(ola, incident.key, "raise-rfc", {"reason": "again"})
    assert conflict.value.state == "rfc_submitted"
    history = await desk.incidents.history(eve, incident.key)
    assert [(h.after or {}).get("kind") for h in history if h.action == "escalated"] == [
        "technical",
        "change_management",
    ]


async def test_out_of_sla_cause_is_referred_back_and_closed_by_staff(desk: Desk) -> None:
    eve = desk.actor("eve")
    server = await desk.world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(eve, incident.key, "close", {})
    assert [p.field for p in caught.value.problems] == ["out_of_sla_reason"]
    closed = await desk.incidents.act(
        eve, incident.key, "close", {"out_of_sla_reason": "Printer hardware not covered", "billable_permission": False}
    )
    assert closed.status is IncidentStatus.CLOSED
    assert closed.closure is not None and not closed.closure.sla_covered and closed.closure.referred_to_customer
    assert closed.closure.billable_permission is False
    # Resolved as out of SLA: referred back, staff may close without the customer's confirmation.
    other = await _incident(desk, server, title="Printer jam")
    await desk.incidents.act(eve, other.key, "acknowledge", {})
    with pytest.raises(InvalidInput):
        await desk.incidents.act(
            eve, other.key, "resolve", {"details": "d", "actions_taken": "a", "sla_covered": False}
        )
    await desk.incidents.act(
        eve,
        other.key,
        "resolve",
        {"details": "Jammed", "actions_taken": "None", "sla_covered": False, "out_of_sla_reason": "Not covered"},
    )
    done = await desk.incidents.act(eve, other.key, "close", {})
    assert done.status is IncidentStatus.CLOSED and done.closure is not None and done.closure.referred_to_customer
    # A covered resolution waits for the customer.
    third = await _incident(desk, server, title="Mail down")
    await desk.incidents.act(eve, third.key, "acknowledge", {})
    await desk.incidents.act(eve, third.key, "resolve", {"details": "d", "actions_taken": "a"})
    with pytest.raises(Conflict) as conflict:
        await desk.incidents.act(eve, third.key, "close", {})
    assert conflict.value.state == "hold_resolution" and "confirm" in conflict.value.allowed


# --- time, communications, editing -----------------------------------------------------------------


async def test_time_entries_per_person_and_communications(desk: Desk) -> None:
    eve, sam = desk.actor("eve"), desk.actor("sam")
    server = await desk.world.ci("ACME", "erp-server")
    incident = await _incident(desk, server)
    await desk.incidents.record_time(eve, incident.key, {"minutes": 30, "note": "Triage", "estimated_minutes": 20})
    await desk.incidents.record_time(sam, incident.key, {"minutes": 15, "person": "ola"})
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.record_time(eve, incident.key, {"minutes": 0})
    assert [p.field for p in caught.value.problems] == ["minutes"]
    with pytest.raises(Forbidden):
        await desk.incidents.record_time(desk.actor("acme-contact"), incident.key, {"minutes": 5})
    await desk.incidents.record_communication(
        eve, incident.key, {"channel": "phone", "summary": "Called Pat", "party": "Pat"}
    )
    await desk.incidents.record_communication(
        desk.actor("acme-contact"), incident.key, {"channel": "portal", "summary": "Any news?"}
    )
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.record_communication(eve, incident.key, {"channel": "pigeon", "summary": ""})
    assert {p.field for p in caught.value.problems} == {"channel", "summary"}
    view = await desk.incidents.get(eve, incident.key)
    assert [(e.person_id, e.minutes) for e in view.time_entries] == [
        (eve.person_id, 30),
        (desk.actor("ola").person_id, 15),
    ]
    assert [(c.direction, c.channel) for c in view.communications] == [("outbound", "phone"), ("inbound", "portal")]
    actions = [h.action for h in await desk.incidents.history(eve, incident.key)]
    assert actions == ["created", "time_recorded", "time_recorded", "communication", "communication"]


async def test_update_adds_cis_and_edits_text(desk: Desk) -> None:
    eve = desk.actor("eve")
    server = await desk.world.ci("ACME", "erp-server")
    db = await desk.world.ci("ACME", "erp-db", "database")
    incident = await _incident(desk, server)
    updated = await desk.incidents.update(eve, incident.key, {"cis": ["erp-db"], "errors": "ORA-01653"})
    assert updated.ci_ids == (server.id, db.id) and updated.errors == "ORA-01653"
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.update(eve, incident.key, {"status": "closed"})
    assert [p.field for p in caught.value.problems] == ["status"]
    with pytest.raises(StaleVersion):
        await desk.incidents.update(eve, incident.key, {"errors": "x"}, expected_version=1)
    last = (await desk.incidents.history(eve, incident.key))[-1]
    assert last.action == "updated" and (last.after or {})["after"]["errors"] == "ORA-01653"


# --- recent changes, matching, releases in their watch period, risk feedback ----------------------

FULL_RFC = {
    "need": "Patch the database.",
    "desired_result": "Patched.",
    "plan": "Apply the patch.",
    "backout_plan": "Restore the snapshot.",
}


async def _complete_rfc(desk: Desk, ci: Any, title: str, at: dt.datetime) -> Any:
    """An RFC taken through to completed at `at` (the clock is left there)."""
    eve, carl = desk.actor("eve"), desk.actor("carl")
    rfc = await desk.change.create(eve, {"customer": "ACME", "title": title, "cis": [ci.id], **FULL_RFC})
    await desk.change.act(eve, rfc.id, "submit", {})
    await desk.change.act(carl, rfc.id, "authorize", {"release_requirements": []})
    await desk.change.act(carl, rfc.id, "approve", {})
    start = at - dt.timedelta(minutes=30)
    slot = {"planned_start": start.isoformat(), "planned_end": at.isoformat()}
    await desk.change.act(carl, rfc.id, "schedule", slot)
    desk.world.clock.set(start)
    await desk.change.act(eve, rfc.id, "implement", {})
    desk.world.clock.set(at)
    return await desk.change.act(eve, rfc.id, "complete", {})


async def test_recent_changes_on_the_cis_and_what_they_depend_on(desk: Desk) -> None:
    world = desk.world
    app = await world.ci("ACME", "erp-app", "application")
    db = await world.ci("ACME", "erp-db", "database")
    storage = await world.ci("ACME", "san-01", "storage")
    printer = await world.ci("ACME", "printer")
    await world.link(app.id, db.id)  # the app depends on the database
    await world.link(db.id, storage.id)  # which depends on the SAN
    base = dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    await _complete_rfc(desk, storage, "Old SAN firmware", base - dt.timedelta(days=10))
    await _complete_rfc(desk, storage, "SAN firmware", base - dt.timedelta(days=3))
    await _complete_rfc(desk, db, "DB patch", base - dt.timedelta(days=1))
    await _complete_rfc(desk, app, "App release", base - dt.timedelta(hours=5))
    await _complete_rfc(desk, printer, "Printer driver", base - dt.timedelta(hours=4))
    world.clock.set(base)
    incident = await _incident(desk, db)
    view = await desk.incidents.get(desk.actor("eve"), incident.key)
    # What the database relies on (the SAN) and the database itself; not the app that relies
    # on it, not the printer, not what is older than a week. Newest first.
    assert [(c.title, c.direct) for c in view.recent_changes] == [("DB patch", True), ("SAN firmware", False)]
    wider = await desk.incidents.recent_changes(desk.actor("eve"), incident.key, days=14)
    assert [c.title for c in wider] == ["DB patch", "SAN firmware", "Old SAN firmware"]
    with pytest.raises(InvalidInput):
        await desk.incidents.recent_changes(desk.actor("eve"), incident.key, days=0)
    await world.service.update_customer(desk.actor("admin"), "ACME", {"sla": {"recent_change_days": 2}}, None)
    narrow = await desk.incidents.get(desk.actor("eve"), incident.key)
    assert [c.title for c in narrow.recent_changes] == ["DB patch"]


async def test_matches_same_and_neighbouring_cis_similar_symptoms(desk: Desk) -> None:
    world, eve = desk.world, desk.actor("eve")
    app = await world.ci("ACME", "erp-app", "application")
    db = await world.ci("ACME", "erp-db", "database")
    far = await world.ci("ACME", "far-away")
    await world.link(app.id, db.id)
    globex = await world.ci("GLOBEX", "globex-db", "database")
    same_ci = await _incident(desk, db, title="Database connection refused", symptoms="ORA-12541 no listener")
    neighbour = await _incident(desk, app, title="ERP login fails", symptoms="database connection refused at login")
    unrelated = await _incident(desk, db, title="Backup report missing", symptoms="nightly email not received")
    await _incident(desk, far, title="Database connection refused", symptoms="ORA-12541 no listener")
    await desk.incidents.create(eve, {"customer": "GLOBEX", "title": "Database connection refused", "cis": [globex.id]})
    closed = await _incident(desk, db, title="Database connection refused", symptoms="ORA-12541 no listener")
    await desk.incidents.act(eve, closed.key, "acknowledge", {})
    await desk.incidents.act(eve, closed.key, "close", {"out_of_sla_reason": "duplicate"})
    new = await _incident(desk, db, title="Database connection refused", symptoms="ORA-12541 listener down")
    found = await desk.incidents.matches(eve, new.key)
    assert [i.key for i, _ in found] == [same_ci.key, neighbour.key]
    assert found[0][1].same_cis == (db.id,) and found[1][1].neighbour_cis == (app.id,)
    assert unrelated.key not in [i.key for i, _ in found]
    linked = await desk.incidents.act(eve, new.key, "link", {"parent": same_ci.key})
    assert linked.parent_id == same_ci.id
    with pytest.raises(InvalidInput) as caught:
        await desk.incidents.act(eve, same_ci.key, "link", {"parent": new.key})  # a cycle
    assert [p.field for p in caught.value.problems] == ["parent"]
    view = await desk.incidents.get(eve, same_ci.key)
    assert [key for _, key, _ in view.children] == [new.key]


async def test_releases_watching_the_cis_are_linked(desk: Desk) -> None:
    from release.models import WatchMatch

    calls: list[tuple[int, tuple[int, ...]]] = []

    class Watching:
        async def watching(self, tenant_id: int, ci_ids: Any, at: dt.datetime) -> list[WatchMatch]:
            calls.append((tenant_id, tuple(ci_ids)))
            return [WatchMatch(release_id=41, key="REL-2026-0041", ci_ids=tuple(ci_ids))]

    desk.incidents.releases = Watching()  # type: ignore[assignment]
    server = await desk.world.ci("ACME", "erp-server")
    db = await desk.world.ci("ACME", "erp-db", "database")
    incident = await _incident(desk, server)
    assert calls == [(desk.world.acme.id, (server.id,))]
    view = await desk.incidents.get(desk.actor("eve"), incident.key)
    assert [rid for rid, _ in view.releases] == [41]
    await desk.incidents.update(desk.actor("eve"), incident.key, {"cis": [db.id]})
    assert calls[-1] == (desk.world.acme.id, (server.id, db.id))
    assert [rid for rid, _ in (await desk.incidents.get(desk.actor("eve"), incident.key)).releases] == [41]


async def test_incident_history_raises_the_rfc_risk(desk: Desk) -> None:
    eve = desk.actor("eve")
    db = await desk.world.ci("ACME", "erp-db", "database")
    rfc = await desk.change.create(eve, {"customer": "ACME", "title": "Patch DB", "cis": [db.id]})
    before = (await desk.change.impact(eve, rfc.id)).risk
    assert "incidents" not in [f["name"] for f in before["factors"]]
    for n in range(3):
        await _incident(desk, db, title=f"DB slow {n}")
    after = (await desk.change.impact(eve, rfc.id)).risk
    factor = next(f for f in after["factors"] if f["name"] == "incidents")
    assert "3 incidents" in factor["detail"] and after["score"] > before["score"]
    # Older than 90 days no longer counts.
    desk.world.clock.advance(days=91)
    later = (await desk.change.impact(eve, rfc.id)).risk
    assert "incidents" not in [f["name"] for f in later["factors"]]


async def test_incident_in_a_real_watch_period_is_linked_to_the_release(world: World) -> None:
    from tests.integration.test_releases import Kit, _ready_to_approve

    kit = Kit(world)
    web = await world.ci("ACME", "web-01", "server")
    shop = await world.ci("ACME", "shop", "application")
    await world.link(shop.id, web.id)  # the shop depends on the web server
    await world.ci("ACME", "test-lab", "test_environment")
    printer = await world.ci("ACME", "print-01", "server")
    release = await _ready_to_approve(kit, {"web": web})
    await kit.act("rita", release, "approve")
    await kit.act("rita", release, "deploy")
    done = await kit.act("rita", release, "complete")
    incidents = IncidentService(world.clock, world.service, kit.change, kit.releases, NotificationService(world.clock))
    world.clock.advance(days=1)
    eve = world.actors["eve"]
    on_shop = await incidents.create(eve, {"customer": "ACME", "title": "Shop errors", "cis": [shop.id]})
    on_printer = await incidents.create(eve, {"customer": "ACME", "title": "Printer", "cis": [printer.id]})
    assert (await incidents.get(eve, on_shop.key)).releases == [(done.id, done.key)]
    assert (await incidents.get(eve, on_printer.key)).releases == []
