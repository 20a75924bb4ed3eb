"""Incidents through the API: intake with matches, the workflow and its 409s, the SLA block,
recent changes, time and communications, tenancy on every route, and the race to take one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import World


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    db = await world.ci("ACME", "erp-db", "database")
    app = await world.ci("ACME", "erp-app", "application")
    await world.link(app.id, db.id)
    globex = await world.ci("GLOBEX", "globex-web")
    return {"db": db, "app": app, "globex": globex}


async def _create(session: Any, ci: int, **extra: Any) -> dict[str, Any]:
    body = {"customer": "ACME", "title": "Database connection refused", "cis": [ci], "symptoms": "ORA-12541", **extra}
    response = await session.post("/api/incidents", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_answers_the_record_with_sla_and_matches(sign_in: Any, estate: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    first = await _create(eve, estate["db"].id, priority="critical", reported_by="Pat", contact="pat@acme.test")
    for name in (
        "id",
        "key",
        "customer",
        "status",
        "priority",
        "cis",
        "response_due",
        "resolution_due",
        "reopen_count",
        "version",
    ):
        assert name in first
    assert first["key"] == "INC-2026-0001" and first["customer"] == "ACME" and first["status"] == "new"
    assert first["cis"] == [estate["db"].id] and first["reopen_count"] == 0
    assert first["response_due"] == "2026-11-02T15:00:00+00:00"
    assert first["sla"]["template"] == "priorities" and first["sla"]["response_target"] == "1 hour"
    assert first["sla"]["escalations"] == [] and "acknowledge" in first["allowed_actions"]
    assert first["matches"] == []
    second = await _create(eve, estate["app"].id, symptoms="ORA-12541 at login")
    assert [m["key"] for m in second["matches"]] == [first["key"]]
    assert second["matches"][0]["neighbour_cis"] == [estate["db"].id]
    again = await eve.get(f"/api/incidents/{second['key']}/matches")
    assert again.status_code == 200 and again.json()["total"] == 1
    linked = await eve.post(f"/api/incidents/{second['key']}/actions/link", json={"parent": first["key"]})
    assert linked.status_code == 200 and linked.json()["parent"] == first["id"]
    assert linked.json()["parent_key"] == first["key"]


async def test_bad_input_names_the_field(sign_in: Any, estate: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/incidents", json={"customer": "ACME", "title": "x", "cis": [], "priority": "p0"})
    assert response.status_code in (400, 422)
    body = response.json()
    assert "priority" in body["detail"] and "cis" in body["detail"]
    response = await eve.post("/api/incidents", json={"title": "x"})
    assert response.status_code in (400, 422) and "customer" in response.json()["detail"]
    incident = await _create(eve, estate["db"].id)
    response = await eve.post(f"/api/incidents/{incident['key']}/actions/hold", json={"reason": "lunch"})
    assert response.status_code == 409  # new: acknowledge first
    await eve.post(f"/api/incidents/{incident['key']}/actions/acknowledge", json={})
    response = await eve.post(f"/api/incidents/{incident['key']}/actions/hold", json={"reason": "lunch"})
    assert response.status_code in (400, 422) and "reason" in response.json()["detail"]
    response = await eve.post(f"/api/incidents/{incident['key']}/actions/acknowledge", content=b"[1]")
    assert response.status_code in (400, 422)
    response = await eve.post(f"/api/incidents/{incident['key']}/time", json={"minutes": "lots"})
    assert response.status_code in (400, 422) and "minutes" in response.json()["detail"]
    response = await eve.get(f"/api/incidents/{incident['key']}/recent-changes?days=0")
    assert response.status_code in (400, 422) and "days" in response.text
    response = await eve.get("/api/incidents?status=sleeping")
    assert response.status_code in (400, 422) and "status" in response.json()["detail"]


async def test_confirm_outside_hold_resolution_is_409_and_closure_flow(sign_in: Any, estate: dict[str, Any]) -> None:
    eve, contact = await sign_in("eve"), await sign_in("acme-contact")
    created = await contact.post(
        "/api/incidents", json={"customer": "ACME", "title": "ERP slow", "cis": ["erp-db"], "priority": "high"}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert created.json()["source"] == "customer"
    response = await contact.post(f"/api/incidents/{key}/actions/confirm", json={})
    assert response.status_code == 409
    assert response.json()["state"] == "new" and "acknowledge" in response.json()["allowed"]
    version = created.json()["version"]
    stale = await eve.post(f"/api/incidents/{key}/actions/acknowledge", json={}, headers={"If-Match": "99"})
    assert stale.status_code == 409
    acked = await eve.post(f"/api/incidents/{key}/actions/acknowledge", json={}, headers={"If-Match": str(version)})
    assert acked.status_code == 200 and acked.json()["status"] == "open"
    resolved = await eve.post(
        f"/api/incidents/{key}/actions/resolve", json={"details": "Index rebuilt", "actions_taken": "REINDEX"}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "hold_resolution"
    assert resolved.json()["waiting_for"] == "confirmation"
    reopened = await contact.post(f"/api/incidents/{key}/actions/reopen", json={"reason": "Still slow"})
    assert reopened.json()["status"] == "open" and reopened.json()["reopen_count"] == 1
    await eve.post(f"/api/incidents/{key}/actions/resolve", json={"details": "Stats", "actions_taken": "ANALYZE"})
    closed = await contact.post(f"/api/incidents/{key}/actions/confirm", json={})
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed" and body["reopen_count"] == 1
    closure = body["closure"]
    for name in (
        "reported_at",
        "reported_by",
        "details",
        "actions_taken",
        "resolved_by",
        "time_to_resolve_minutes",
        "sla_covered",
    ):
        assert name in closure
    assert closure["sla_covered"] is True and closure["confirmed_by"] == "acme-contact"
    history = (await eve.get(f"/api/incidents/{key}/history")).json()
    assert [h["action"] for h in history["items"]] == [
        "created",
        "acknowledged",
        "resolved",
        "reopened",
        "resolved",
        "confirmed",
    ]


async def test_other_tenants_incidents_are_404_on_every_route(
    sign_in: Any, world: World, estate: dict[str, Any]
) -> None:
    eve, globex = await sign_in("eve"), await sign_in("globex-contact")
    incident = await _create(eve, estate["db"].id)
    key = incident["key"]
    for url in ("", "/matches", "/recent-changes", "/history", "/time", "/communications", "/sla"):
        response = await globex.get(f"/api/incidents/{key}{url}")
        assert response.status_code == 404, (url, response.text)
        response = await globex.get(f"/api/incidents/{incident['id']}{url}")
        assert response.status_code == 404, (url, response.text)
    for action in ("confirm", "reopen", "acknowledge", "resolve"):
        response = await globex.post(f"/api/incidents/{key}/actions/{action}", json={})
        assert response.status_code == 404, action
    assert (
        await globex.post(f"/api/incidents/{key}/communications", json={"channel": "email", "summary": "x"})
    ).status_code == 404
    assert (await globex.post(f"/api/incidents/{key}/time", json={"minutes": 5})).status_code == 404
    assert (await globex.patch(f"/api/incidents/{key}", json={"errors": "x"})).status_code == 404
    listed = (await globex.get("/api/incidents")).json()
    assert listed == {"items": [], "total": 0}
    acme = await sign_in("acme-contact")
    assert (await acme.get(f"/api/incidents/{key}")).status_code == 200
    # The provider's own incidents are invisible to customers too.
    core = await world.ci("PROV", "core-switch", "network_device")
    internal = await eve.post("/api/incidents", json={"customer": "PROV", "title": "Core down", "cis": [core.id]})
    assert internal.status_code == 201, internal.text
    assert (await acme.get(f"/api/incidents/{internal.json()['key']}")).status_code == 404
    assert [i["key"] for i in (await acme.get("/api/incidents")).json()["items"]] == [key]


async def test_two_engineers_take_at_once_one_wins(sign_in: Any, world: World, estate: dict[str, Any]) -> None:
    eve, ola = await sign_in("eve"), await sign_in("ola")
    incident = await _create(eve, estate["db"].id)
    url = f"/api/incidents/{incident['key']}/actions/take"
    responses = await asyncio.gather(eve.post(url, json={}), ola.post(url, json={}))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["state"] == "new"
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["assignee"] in {world.actors["eve"].person_id, world.actors["ola"].person_id}


async def test_queue_time_communications_and_escalation_to_change(
    sign_in: Any, world: World, estate: dict[str, Any]
) -> None:
    eve, sam = await sign_in("eve"), await sign_in("sam")
    low = await _create(eve, estate["db"].id, priority="low", title="Report typo")
    critical = await _create(eve, estate["app"].id, priority="critical", title="ERP down")
    await eve.post(f"/api/incidents/{critical['key']}/actions/take", json={})
    mine = (await eve.get("/api/incidents/queue?scope=mine")).json()
    assert [i["key"] for i in mine["items"]] == [critical["key"]]
    everything = (await sam.get("/api/incidents/queue?scope=all")).json()
    assert [i["key"] for i in everything["items"]] == [critical["key"], low["key"]]  # nearest due first
    team = (await sam.get("/api/incidents/queue?scope=team")).json()
    assert [i["key"] for i in team["items"]] == [low["key"]]  # unassigned
    assert (await sam.get("/api/incidents/queue?scope=galaxy")).status_code in (400, 422)
    time = await eve.post(f"/api/incidents/{critical['key']}/time", json={"minutes": 45, "estimated_minutes": 30})
    assert time.status_code == 201 and time.json()["username"] == "eve"
    comm = await eve.post(
        f"/api/incidents/{critical['key']}/communications", json={"channel": "email", "summary": "Working on it"}
    )
    assert comm.status_code == 201 and comm.json()["direction"] == "outbound"
    view = (await eve.get(f"/api/incidents/{critical['key']}")).json()
    assert view["time_spent"] == {"total_minutes": 45, "by_person": {"eve": 45}}
    assert [c["summary"] for c in view["communications"]] == ["Working on it"]
    await eve.post(f"/api/incidents/{critical['key']}/actions/acknowledge", json={})
    raised = await eve.post(
        f"/api/incidents/{critical['key']}/actions/escalate",
        json={"to": "change_management", "reason": "Release procedure must change"},
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["status"] == "rfc_submitted" and raised.json()["rfc"].startswith("RFC-2026-")
    rfc = (await eve.get(f"/api/rfcs/{raised.json()['rfc']}")).json()
    assert rfc["state"] == "draft" and rfc["cis"] == [estate["app"].id]
    filtered = (await sam.get("/api/incidents?status=rfc_submitted,new&customer=ACME")).json()
    assert {i["key"] for i in filtered["items"]} == {critical["key"], low["key"]}
