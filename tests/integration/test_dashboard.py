"""The service manager's dashboard read from the database: a small October worked out by hand.

The rows are written with plain SQL, the way the incident service leaves them, so the figures
are checked against the tables themselves (period bounds, customer filter, escalations,
reassignments in the history, time entries with estimates).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from cmdb import db
from cmdb import repository as repo
from cmdb.errors import Forbidden, InvalidInput, NotFound
from incident.dashboard import ServiceDashboard
from incident.metrics import Attainment, Rate
from tests.support import World


def at(day: int, hour: int = 9, minute: int = 0, month: int = 10) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


async def insert_incident(world: World, customer: str, key: str, **columns: Any) -> int:
    tenant = (await world.service.get_customer(world.actors["admin"], customer)).id
    values = {"key": key, "tenant": tenant, "title": key, "updated_at": columns.get("created_at"), **columns}
    names = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" for _ in values)
    engine = repo.engine()
    async with db.atomic(engine):
        await db.executemany(engine, f'INSERT INTO "incident" ({names}) VALUES ({marks})', [list(values.values())])
        rows = await db.fetch(engine, 'SELECT id FROM "incident" WHERE "key" = ?', key)
    return int(rows[0]["id"])


async def insert(table: str, **values: Any) -> None:
    names = ", ".join(f'"{name}"' for name in values)
    marks = ", ".join("?" for _ in values)
    engine = repo.engine()
    async with db.atomic(engine):
        await db.executemany(engine, f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [list(values.values())])


async def assign(
    world: World, incident_id: int, tenant: str, username: str, when: dt.datetime, previous: str | None = None
) -> None:
    """An assignment as the workflow records it: `previous_assignee_id` set means a reassignment,
    which the workflow marks as a technical escalation."""
    tenant_id = (await world.service.get_customer(world.actors["admin"], tenant)).id
    person = world.actors[username].person_id
    after: dict[str, Any] = {
        "action": "assign",
        "assignee": username,
        "assignee_id": person,
        "previous_assignee_id": world.actors[previous].person_id if previous else None,
    }
    if previous:
        after["technical_escalation"] = True
    await insert(
        "history",
        tenant=tenant_id,
        entity="incident",
        entity_id=incident_id,
        action="assigned",
        actor_id=person,
        actor_name=username,
        at=when,
        after=json.dumps(after),
        unauthorized=False,
        unauthorized_fields="[]",
        comment="",
    )


async def time_entry(
    world: World, incident_id: int, username: str, minutes: int, estimate: int | None, when: dt.datetime
) -> None:
    await insert(
        "incident_time",
        incident=incident_id,
        person=world.actors[username].person_id,
        minutes=minutes,
        estimated_minutes=estimate,
        at=when,
        note="",
    )


@pytest.fixture
async def october(world: World) -> dict[str, int]:
    return await build_october(world)


async def build_october(world: World) -> dict[str, int]:
    """A: met both, one engineer (first contact). B: response late, reassigned (a technical
    escalation). C: reopened,
    open again, resolution due passed. D: acknowledged only, awaiting confirmation, escalated
    administratively. E (GLOBEX): nothing done, both due passed, escalated technically.
    F: 1 November (outside). G: 31 October 23:59, nothing due yet."""
    ids: dict[str, int] = {}
    ids["A"] = await insert_incident(
        world, "ACME", "INC-2026-0001", priority="high", status="closed", created_at=at(5),
        response_due=at(5, 11), responded_at=at(5, 10), resolution_due=at(5, 17), resolved_at=at(5, 13),
        closed_at=at(6),
    )  # fmt: skip
    ids["B"] = await insert_incident(
        world, "ACME", "INC-2026-0002", priority="critical", status="closed", created_at=at(6),
        response_due=at(6, 10), responded_at=at(6, 10, 30), resolution_due=at(6, 13), resolved_at=at(6, 12),
        closed_at=at(7),
    )  # fmt: skip
    ids["C"] = await insert_incident(
        world, "ACME", "INC-2026-0003", priority="normal", status="open", created_at=at(10),
        response_due=at(11, 17), responded_at=at(10, 12), resolution_due=at(13, 17), resolved_at=at(12),
        reopen_count=1,
    )  # fmt: skip
    ids["D"] = await insert_incident(
        world, "ACME", "INC-2026-0004", priority="low", status="hold_resolution", waiting_for="confirmation",
        created_at=at(20), response_due=at(21, 17), acknowledged_at=at(20, 10), resolution_due=at(24, 17),
        resolved_at=at(23),
    )  # fmt: skip
    ids["E"] = await insert_incident(
        world, "GLOBEX", "INC-2026-0005", priority="high", status="open", created_at=at(15),
        response_due=at(15, 11), resolution_due=at(15, 17), rfc_key="RFC-2026-0099",
    )  # fmt: skip
    ids["F"] = await insert_incident(
        world, "ACME", "INC-2026-0006", priority="high", status="new", created_at=at(1, 0, 0, month=11),
        response_due=at(1, 2, 0, month=11), resolution_due=at(1, 8, 0, month=11),
    )  # fmt: skip
    ids["G"] = await insert_incident(
        world, "ACME", "INC-2026-0007", priority="high", status="new", created_at=at(31, 23, 59),
        response_due=at(3, 11, 0, month=11), resolution_due=at(4, 17, 0, month=11),
    )  # fmt: skip
    await assign(world, ids["A"], "ACME", "eve", at(5, 10))
    await assign(world, ids["B"], "ACME", "eve", at(6, 10, 30))
    await assign(world, ids["B"], "ACME", "sam", at(6, 11), previous="eve")
    acme = (await world.service.get_customer(world.actors["admin"], "ACME")).id
    await insert(
        "escalation", subject_kind="incident", subject_id=ids["D"], level="resolution_warning", tenant=acme,
        created_at=at(22), detail="",
    )  # fmt: skip
    await insert(
        "escalation", subject_kind="rfc", subject_id=ids["A"], level="at_risk", tenant=acme,
        created_at=at(22), detail="",
    )  # fmt: skip  # another kind of record with the same id: not this incident's escalation
    await time_entry(world, ids["A"], "eve", 120, 90, at(5, 12))
    await time_entry(world, ids["B"], "sam", 60, 60, at(6, 12))
    await time_entry(world, ids["C"], "eve", 45, None, at(12))
    await time_entry(world, ids["C"], "eve", 30, None, at(1, 10, 0, month=11))  # November: outside
    return ids


@pytest.fixture
def dashboard(world: World) -> ServiceDashboard:
    return ServiceDashboard(world.clock, world.service)


async def test_last_full_month_for_all_customers_matches_the_hand_count(
    world: World, october: dict[str, int], dashboard: ServiceDashboard
) -> None:
    found = await dashboard.figures(world.actors["sam"])
    assert (found.period_from, found.period_to) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    figures = found.figures
    assert figures.incidents == 6  # A B C D E G
    assert figures.response == Attainment(met=3, missed=2, pending=1)  # A C D / B E / G
    assert figures.resolution == Attainment(met=3, missed=2, pending=1)  # A B D / C E / G
    assert figures.escalation == Rate(3, 6)  # B (reassigned), D (administrative), E (RFC raised)
    assert figures.reopen == Rate(1, 4)  # C of A B C D
    assert figures.first_contact == Rate(1, 3)  # A of A B D
    eve, sam = figures.engineers
    assert (eve.name, eve.incidents, eve.entries, eve.estimated_entries) == ("Eve", 2, 2, 1)
    assert (eve.estimated_minutes, eve.actual_on_estimated_minutes, eve.actual_minutes) == (90, 120, 165)
    assert (sam.estimated_minutes, sam.actual_minutes, sam.variance_minutes) == (60, 60, 0)
    data = found.as_dict()
    assert data["from"] == "2026-10-01" and data["to"] == "2026-10-31" and data["customer"] is None
    assert data["escalation_rate"] == {"count": 3, "of": 6, "rate": 0.5}


async def test_one_customer_only(world: World, october: dict[str, int], dashboard: ServiceDashboard) -> None:
    found = await dashboard.figures(world.actors["sam"], customer="ACME")
    figures = found.figures
    assert found.customer_key == "ACME"
    assert figures.incidents == 5
    assert figures.response == Attainment(3, 1, 1)
    assert figures.resolution == Attainment(3, 1, 1)
    assert figures.escalation == Rate(2, 5)
    globex = await dashboard.figures(world.actors["admin"], customer="GLOBEX")
    assert globex.figures.incidents == 1 and globex.figures.engineers == ()


async def test_a_chosen_period_includes_both_days(
    world: World, october: dict[str, int], dashboard: ServiceDashboard
) -> None:
    found = await dashboard.figures(
        world.actors["eve"], period_from=dt.date(2026, 10, 31), period_to=dt.date(2026, 11, 1)
    )
    assert found.figures.incidents == 2  # G at 23:59 on the 31st, F at midnight on the 1st
    assert [e.actual_minutes for e in found.figures.engineers] == [30]


async def test_who_may_read_and_what_is_refused(
    world: World, october: dict[str, int], dashboard: ServiceDashboard
) -> None:
    with pytest.raises(Forbidden):
        await dashboard.figures(world.actors["acme-contact"])
    with pytest.raises(Forbidden):
        await dashboard.figures(world.actors["carl"])  # a change manager only
    with pytest.raises(NotFound):
        await dashboard.figures(world.actors["sam"], customer="NOPE")
    with pytest.raises(InvalidInput) as refused:
        await dashboard.figures(world.actors["sam"], period_from=dt.date(2026, 10, 2), period_to=dt.date(2026, 10, 1))
    assert refused.value.problems[0].field == "to"


async def test_figures_from_incidents_worked_through_the_service(world: World, dashboard: ServiceDashboard) -> None:
    """The same figures when the rows come from IncidentService itself: its history records
    reassignments and escalations the way the dashboard reads them."""
    from tests.integration.test_incidents import build_desk

    desk = build_desk(world)
    eve, sam, contact = world.actors["eve"], world.actors["sam"], world.actors["acme-contact"]
    server = await world.ci("ACME", "erp-server")
    data = {"customer": "ACME", "cis": [server.id], "priority": "high"}
    handed_over = await desk.incidents.create(eve, {**data, "title": "ERP down"})
    await desk.incidents.act(eve, handed_over.key, "acknowledge", {})
    await desk.incidents.act(eve, handed_over.key, "take", {})
    await desk.incidents.act(sam, handed_over.key, "assign", {"person": "sam", "reason": "needs a DBA"})
    await desk.incidents.record_time(eve, handed_over.key, {"minutes": 40, "estimated_minutes": 30})
    world.clock.advance(minutes=30)
    await desk.incidents.act(sam, handed_over.key, "resolve", {"details": "Index rebuilt", "actions_taken": "Rebuild"})
    await desk.incidents.act(contact, handed_over.key, "confirm", {})
    refused = await desk.incidents.create(eve, {**data, "title": "Mail slow"})
    await desk.incidents.act(eve, refused.key, "acknowledge", {})
    await desk.incidents.act(eve, refused.key, "take", {})
    await desk.incidents.act(eve, refused.key, "resolve", {"details": "Queue flushed", "actions_taken": "Flush"})
    await desk.incidents.act(contact, refused.key, "reopen", {"reason": "Still slow"})
    clean = await desk.incidents.create(eve, {**data, "title": "Printer offline"})
    await desk.incidents.act(eve, clean.key, "acknowledge", {})
    await desk.incidents.act(eve, clean.key, "take", {})
    await desk.incidents.act(eve, clean.key, "resolve", {"details": "Cable", "actions_taken": "Replugged"})

    found = await dashboard.figures(sam, period_from=dt.date(2026, 11, 1), period_to=dt.date(2026, 11, 30))
    figures = found.figures
    assert figures.incidents == 3
    assert figures.response == Attainment(3, 0, 0)
    assert figures.resolution == Attainment(2, 0, 1)  # the reopened one is open again, not due yet
    assert figures.escalation == Rate(1, 3)  # the reassignment is a technical escalation
    assert figures.reopen == Rate(1, 3)
    assert figures.first_contact == Rate(1, 2)  # the printer; the ERP went to a second engineer
    (eve_time,) = figures.engineers
    assert (eve_time.name, eve_time.estimated_minutes, eve_time.actual_minutes) == ("Eve", 30, 40)
