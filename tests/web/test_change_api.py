"""RFCs through the API: drafting, the workflow, impact, committee, scheduling, conflicts,
races and tenancy."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from tests.support import World

FULL = {
    "need": "The ERP database runs out of disk in two weeks.",
    "desired_result": "Data volume grown to 2 TB with no data loss.",
    "plan": "Extend the LUN, grow the volume, verify.",
    "backout_plan": "Restore the snapshot taken before the change.",
}


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    db = await world.ci("ACME", "erp-db", "database", criticality="medium")
    app = await world.ci("ACME", "erp-app", "application", criticality="medium")
    await world.link(app.id, db.id)
    other = await world.ci("ACME", "print-server", criticality="low")
    globex = await world.ci("GLOBEX", "globex-web")
    return {"db": db, "app": app, "other": other, "globex": globex}


async def _ready(session: Any, ci: int, **extra: Any) -> dict[str, Any]:
    response = await session.post(
        "/api/rfcs", json={"customer": "ACME", "title": "Grow ERP disk", "cis": [ci], **FULL, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_draft_needs_only_customer_title_and_cis_and_submit_lists_what_is_missing(
    estate: dict[str, Any], sign_in: Any
) -> None:
    eve = await sign_in("eve")
    draft = await eve.post("/api/rfcs", json={"customer": "ACME", "title": "Grow ERP disk", "cis": [estate["db"].id]})
    assert draft.status_code == 201, draft.text
    body = draft.json()
    assert body["state"] == "draft"
    assert body["key"] == "RFC-2026-0001"
    assert body["cis"] == [estate["db"].id]
    refused = await eve.post(f"/api/rfcs/{body['key']}/actions/submit", json={})
    assert refused.status_code == 422
    assert {p["field"] for p in refused.json()["fields"]} == {"need", "desired_result", "plan", "backout_plan"}
    assert (await eve.get(f"/api/rfcs/{body['id']}")).json()["state"] == "draft"


async def test_bad_rfc_input_names_the_field(estate: dict[str, Any], sign_in: Any) -> None:
    eve = await sign_in("eve")
    cases = [
        ({"customer": "ACME", "title": "x", "cis": [estate["globex"].id]}, "cis"),
        ({"customer": "ACME", "title": "x", "cis": [], "type": "risky"}, "type"),
        ({"customer": "ACME", "title": "x", "cis": [], "urgency": "whenever"}, "urgency"),
        ({"customer": "ACME", "title": "x", "cis": [], "available_at": "2099-01-01T00:00:00Z"}, "available_at"),
        ({"customer": "ACME", "title": "x", "cis": [], "cost": "-5"}, "cost"),
        ({"customer": "ACME", "title": "", "cis": []}, "title"),
        ({"title": "x", "cis": []}, "customer"),
        ({"customer": "ACME", "title": "x", "cis": [], "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = await eve.post("/api/rfcs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in {p["field"] for p in response.json()["fields"]}, (body, response.json())
    assert (await eve.get("/api/rfcs")).json()["total"] == 0


async def test_low_impact_change_runs_from_submission_to_completion(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl, rita = await sign_in("eve"), await sign_in("carl"), await sign_in("rita")
    rfc = await _ready(eve, estate["other"].id)
    key = rfc["key"]
    steps = [
        (eve, "submit", {}, "submitted"),
        (carl, "authorize", {"release_requirements": ["test evidence"]}, "authorized"),
        (carl, "approve", {}, "approved"),
        (
            carl,
            "schedule",
            {"planned_start": "2026-11-07T02:00:00Z", "planned_end": "2026-11-07T04:00:00Z"},
            "scheduled",
        ),
    ]
    for session, action, body, state in steps:
        response = await session.post(f"/api/rfcs/{key}/actions/{action}", json=body)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["state"] == state
    world.clock.set(dt.datetime(2026, 11, 7, 2, 5, tzinfo=dt.UTC))
    assert (await rita.post(f"/api/rfcs/{key}/actions/implement", json={})).json()["state"] == "implementing"
    done = await rita.post(f"/api/rfcs/{key}/actions/complete", json={"comment": "grown, verified"})
    assert done.json()["state"] == "completed"
    assert done.json()["release_requirements"] == ["test evidence"]
    timeline = (await eve.get(f"/api/rfcs/{key}/timeline")).json()
    kinds = [item["action"] for item in timeline["items"]]
    assert kinds == [
        "created",
        "submitted",
        "authorized",
        "approved",
        "scheduled",
        "implementation_started",
        "completed",
    ]
    assert {item["actor"] for item in timeline["items"]} == {"eve", "carl", "rita"}
    history = (await eve.get(f"/api/cis/{estate['other'].id}/history")).json()
    archived = [item["action"] for item in history["items"] if item["entity"] == "rfc"]
    assert archived == ["rfc_completed", "rfc_implementation_started", "rfc_approved"]


async def test_an_action_the_state_does_not_allow_answers_409_with_state_and_allowed(
    estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    rfc = await _ready(eve, estate["other"].id)
    response = await carl.post(f"/api/rfcs/{rfc['key']}/actions/approve", json={})
    assert response.status_code == 409
    body = response.json()
    assert body["state"] == "draft"
    assert "submit" in body["allowed"]
    forbidden = await eve.post(f"/api/rfcs/{rfc['key']}/actions/submit", json={})
    assert forbidden.status_code == 200
    assert (
        await eve.post(f"/api/rfcs/{rfc['key']}/actions/authorize", json={"release_requirements": []})
    ).status_code == 403
    unknown = await carl.post(f"/api/rfcs/{rfc['key']}/actions/teleport", json={})
    assert unknown.status_code == 422


async def test_request_info_then_resubmit_and_reject_closes_for_good(estate: dict[str, Any], sign_in: Any) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    rfc = await _ready(eve, estate["other"].id)
    key = rfc["key"]
    await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    sent_back = await carl.post(f"/api/rfcs/{key}/actions/request-info", json={"comment": "Which LUN?"})
    assert sent_back.json()["state"] == "needs_information"
    edited = await eve.patch(f"/api/rfcs/{key}", json={"plan": "Extend LUN 7, grow the volume, verify."})
    assert edited.status_code == 200 and edited.json()["plan"].startswith("Extend LUN 7")
    assert (await eve.post(f"/api/rfcs/{key}/actions/submit", json={})).json()["state"] == "submitted"
    rejected = await carl.post(f"/api/rfcs/{key}/actions/reject", json={"comment": "Buy a new array instead."})
    assert rejected.json()["state"] == "rejected"
    again = await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    assert again.status_code == 409 and again.json()["allowed"] == []
    assert (await eve.patch(f"/api/rfcs/{key}", json={"plan": "x"})).status_code == 409
    follow_up = await _ready(eve, estate["other"].id, refers_to=key)
    assert follow_up["refers_to"] == key


async def test_high_impact_change_goes_through_the_committee(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    hub = await world.ci("PROV", "core-san", "storage", criticality="critical")
    globex_vm = await world.ci("GLOBEX", "globex-vm")
    await world.link(estate["db"].id, hub.id, "depends_on")
    await world.link(globex_vm.id, hub.id, "depends_on")
    rfc = await eve.post("/api/rfcs", json={"customer": "PROV", "title": "SAN firmware", "cis": [hub.id], **FULL})
    key = rfc.json()["key"]
    await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    impact = (await carl.get(f"/api/rfcs/{key}/impact")).json()
    assert impact["class"] == "high" and impact["committee_required"] is True
    assert set(impact["cis"]) >= {hub.id, estate["db"].id, estate["app"].id, globex_vm.id}
    assert len(impact["customers"]) == 3
    assert impact["risk"]["score"] > 0 and impact["risk"]["factors"]
    await carl.post(
        f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": ["vendor notes", "test evidence"]}
    )
    refused = await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
    assert refused.status_code == 409
    assert (await carl.post(f"/api/rfcs/{key}/actions/refer-to-committee", json={})).json()["state"] == "in_review"
    assert (
        await eve.post(f"/api/rfcs/{key}/actions/vote", json={"vote": "approve", "comment": "mine"})
    ).status_code == 403
    ola = await sign_in("ola")
    assert ola  # a committee member who is also an engineer, but not the originator
    for name in ("kim", "lee"):
        member = await sign_in(name)
        response = await member.post(f"/api/rfcs/{key}/actions/vote", json={"vote": "approve", "comment": "ok"})
        assert response.status_code == 200 and response.json()["state"] == "in_review"
    decided = await ola.post(f"/api/rfcs/{key}/actions/vote", json={"vote": "approve", "comment": "ok"})
    assert decided.json()["state"] == "approved"
    # The impact was frozen at authorization: a new dependant does not change it.
    late = await world.ci("ACME", "late-app", "application")
    await world.link(late.id, hub.id)
    assert late.id not in (await carl.get(f"/api/rfcs/{key}/impact")).json()["cis"]


async def test_schedule_must_fit_windows_unless_emergency(world: World, estate: dict[str, Any], sign_in: Any) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    window = {
        "name": "Saturday night",
        "days": [6],
        "start": "22:00",
        "duration_minutes": 360,
        "timezone": "America/New_York",
    }
    assert (await carl.post("/api/customers/ACME/windows", json=window)).status_code == 201
    for change_type in ("normal", "emergency"):
        rfc = await _ready(eve, estate["other"].id, type=change_type)
        key = rfc["key"]
        await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
        await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": []})
        await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
        tuesday = {"planned_start": "2026-11-10T15:00:00Z", "planned_end": "2026-11-10T16:00:00Z"}
        response = await carl.post(f"/api/rfcs/{key}/actions/schedule", json=tuesday)
        if change_type == "normal":
            assert response.status_code == 422, response.text
            saturday = {"planned_start": "2026-11-08T03:30:00Z", "planned_end": "2026-11-08T05:00:00Z"}
            fits = await carl.post(f"/api/rfcs/{key}/actions/schedule", json=saturday)
            assert fits.status_code == 200, fits.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["post_implementation_review_required"] is True


async def test_overlapping_changes_sharing_a_downstream_ci_are_in_conflict(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    keys = []
    for ci in (estate["db"].id, estate["app"].id, estate["other"].id):
        rfc = await _ready(eve, ci)
        key = rfc["key"]
        await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
        await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": []})
        await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
        slot = {"planned_start": "2026-11-14T03:00:00Z", "planned_end": "2026-11-14T05:00:00Z"}
        assert (await carl.post(f"/api/rfcs/{key}/actions/schedule", json=slot)).status_code == 200
        keys.append(key)
    conflicts = (await carl.get("/api/rfcs/conflicts?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z")).json()
    assert [item["rfcs"] for item in conflicts["items"]] == [[keys[0], keys[1]]]
    assert conflicts["items"][0]["shared_cis"] == [estate["app"].id]
    later = (await carl.get("/api/rfcs/conflicts?from=2026-11-15T00:00:00Z&to=2026-12-01T00:00:00Z")).json()
    assert later["total"] == 0


@pytest.mark.parametrize("round_", range(50))
async def test_two_change_managers_acting_at_once_exactly_one_wins(
    world: World, estate: dict[str, Any], round_: int
) -> None:
    from change.services import ChangeService

    service = ChangeService(world.clock, world.service)
    eve = world.actors["eve"]
    rfc = await service.create(
        eve, {"customer": "ACME", "title": f"race {round_}", "cis": [estate["other"].id], **FULL}
    )
    await service.act(eve, rfc.id, "submit", {})

    async def attempt(name: str, action: str, params: dict[str, Any]) -> str:
        try:
            await service.act(world.actors[name], rfc.id, action, params)
            return "won"
        except Exception as error:
            return type(error).__name__

    outcomes = await asyncio.gather(
        attempt("carl", "authorize", {"release_requirements": []}),
        attempt("cora", "reject", {"comment": "no"}),
    )
    assert sorted(outcomes) == ["Conflict", "won"]
    final = await service.get(world.actors["carl"], rfc.id)
    assert final.rfc.version == 3


async def test_customers_raise_and_follow_their_own_rfcs_only(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve = await sign_in("eve")
    internal = await eve.post("/api/rfcs", json={"customer": "PROV", "title": "Internal", "cis": []})
    globex_rfc = await eve.post(
        "/api/rfcs", json={"customer": "GLOBEX", "title": "Globex", "cis": [estate["globex"].id]}
    )
    acme = await sign_in("acme-contact")
    own = await acme.post("/api/rfcs", json={"customer": "ACME", "title": "Please patch", "cis": ["erp-db"], **FULL})
    assert own.status_code == 201, own.text
    assert own.json()["origin"] == "customer"
    assert (await acme.post(f"/api/rfcs/{own.json()['key']}/actions/submit", json={})).json()["state"] == "submitted"
    for other in (internal.json(), globex_rfc.json()):
        for suffix in ("", "/impact", "/timeline"):
            assert (await acme.get(f"/api/rfcs/{other['key']}{suffix}")).status_code == 404
        assert (await acme.post(f"/api/rfcs/{other['key']}/actions/withdraw", json={})).status_code == 404
    listed = (await acme.get("/api/rfcs")).json()
    assert [item["key"] for item in listed["items"]] == [own.json()["key"]]
    assert (await acme.post("/api/rfcs", json={"customer": "GLOBEX", "title": "x", "cis": []})).status_code == 422


async def test_an_approved_rfc_authorizes_controlled_changes_to_its_cis(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    ci = estate["other"].id
    rfc = await _ready(eve, ci)
    key = rfc["key"]
    await eve.patch(f"/api/cis/{ci}", json={"attributes": {"serial_number": "A"}, "rfc": key})
    await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": []})
    await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
    await eve.patch(f"/api/cis/{ci}", json={"attributes": {"serial_number": "B"}, "rfc": key})
    audit = (await eve.get("/api/cis/audit")).json()
    assert [item["after"]["attributes"]["serial_number"] for item in audit["items"]] == ["A"]


async def test_standard_changes_come_from_the_catalogue_and_skip_the_committee(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    catalogue = (await eve.get("/api/rfcs/catalogue")).json()
    assert "server-imaging" in {t["key"] for t in catalogue["items"]}
    missing = await eve.post(
        "/api/rfcs", json={"customer": "ACME", "title": "x", "cis": [estate["other"].id], "type": "standard"}
    )
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "template"
    wrong_class = await eve.post(
        "/api/rfcs",
        json={
            "customer": "ACME",
            "title": "x",
            "cis": [estate["db"].id],
            "type": "standard",
            "template": "server-imaging",
        },
    )
    assert wrong_class.status_code == 422 and wrong_class.json()["fields"][0]["field"] == "cis"
    rfc = await eve.post(
        "/api/rfcs",
        json={
            "customer": "ACME",
            "title": "Re-image print server",
            "cis": [estate["other"].id],
            "type": "standard",
            "template": "server-imaging",
            "need": "Drifted configuration",
            "desired_result": "Clean node",
        },
    )
    assert rfc.status_code == 201, rfc.text
    assert rfc.json()["plan"].startswith("Drain the node")
    key = rfc.json()["key"]
    await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": []})
    assert (await carl.post(f"/api/rfcs/{key}/actions/refer-to-committee", json={})).status_code == 409
    assert (await carl.post(f"/api/rfcs/{key}/actions/approve", json={})).json()["state"] == "approved"


async def test_committee_members_are_suggested_by_expertise(world: World, estate: dict[str, Any], sign_in: Any) -> None:
    await world.add_person("dbexpert", ["committee_member"], expertise=["database", "application"])
    await world.add_person("netexpert", ["committee_member"], expertise=["network_device"])
    eve = await sign_in("eve")
    rfc = await _ready(eve, estate["db"].id)
    committee = (await eve.get(f"/api/rfcs/{rfc['key']}/committee")).json()
    assert committee["suggested"][0]["username"] == "dbexpert"
    assert committee["suggested"][0]["matching_expertise"] == ["application", "database"]
    assert "eve" not in {s["username"] for s in committee["suggested"]}
    assert "quorum" in committee["rule"].lower()


async def test_customer_side_approval_when_the_sla_requires_it(
    world: World, estate: dict[str, Any], sign_in: Any
) -> None:
    admin, eve, carl = await sign_in("admin"), await sign_in("eve"), await sign_in("carl")
    assert (await admin.patch("/api/customers/ACME", json={"sla": {"customer_approval": True}})).status_code == 200
    rfc = await _ready(eve, estate["other"].id)
    assert rfc["customer_approval_required"] is True
    key = rfc["key"]
    await eve.post(f"/api/rfcs/{key}/actions/submit", json={})
    await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": []})
    await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
    slot = {"planned_start": "2026-11-14T03:00:00Z", "planned_end": "2026-11-14T05:00:00Z"}
    waiting = await carl.post(f"/api/rfcs/{key}/actions/schedule", json=slot)
    assert waiting.status_code == 409 and "customer-approve" in waiting.json()["allowed"]
    globex = await sign_in("globex-contact")
    assert (await globex.post(f"/api/rfcs/{key}/actions/customer-approve", json={})).status_code == 404
    acme = await sign_in("acme-contact")
    approved = await acme.post(f"/api/rfcs/{key}/actions/customer-approve", json={"comment": "Go ahead"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["customer_approved_by"] == world.actors["acme-contact"].person_id
    assert (await carl.post(f"/api/rfcs/{key}/actions/schedule", json=slot)).json()["state"] == "scheduled"
