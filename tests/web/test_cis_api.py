"""CIs and relationships through the API: validation, history, versions, audit, impact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import World


async def _counts(world: World) -> tuple[int, int, int]:
    from cmdb.tables import CITable, HistoryTable, RelationshipTable

    return await CITable.count(), await RelationshipTable.count(), await HistoryTable.count()


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        ({"name": "x", "customer": "ACME", "class": "spaceship"}, "class", "unknown class"),
        (
            {"name": "x", "customer": "ACME", "class": "server", "attributes": {"colour": "red"}},
            "attributes.colour",
            "not an attribute",
        ),
        (
            {"name": "x", "customer": "ACME", "class": "server", "attributes": {"cpu_cores": "many"}},
            "attributes.cpu_cores",
            "whole number",
        ),
        (
            {"name": "x", "customer": "ACME", "class": "server", "attributes": {"warranty_expires": "soon"}},
            "attributes.warranty_expires",
            "YYYY-MM-DD",
        ),
        ({"name": "x", "customer": "ACME", "class": "server", "status": "sleeping"}, "status", "unknown status"),
        ({"name": "x", "customer": "NOPE", "class": "server"}, "customer", "no customer"),
        ({"name": "a:b", "customer": "ACME", "class": "server"}, "name", "':'"),
        ({"customer": "ACME"}, "name", "is required"),
        ({"name": 12, "customer": "ACME", "class": "server"}, "name", "Expected `str | null`"),
    ],
)
async def test_bad_ci_input_is_refused_with_the_field_and_nothing_is_saved(
    world: World, sign_in: Any, body: dict[str, Any], field: str, reason_part: str
) -> None:
    eve = await sign_in("eve")
    before = await _counts(world)
    response = await eve.post("/api/cis", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["error"] == "invalid_input"
    problems = {p["field"]: p["reason"] for p in payload["fields"]}
    assert field in problems, payload
    assert reason_part in problems[field]
    assert field in payload["detail"]
    assert await _counts(world) == before


async def test_missing_fields_are_listed_together(sign_in: Any) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/cis", json={})
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["fields"]} == {"name", "customer", "class"}


async def test_duplicate_name_within_a_customer_is_refused_but_allowed_across(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    assert (
        await eve.post("/api/cis", json={"name": "web-01", "customer": "ACME", "class": "server"})
    ).status_code == 201
    again = await eve.post("/api/cis", json={"name": "web-01", "customer": "ACME", "class": "server"})
    assert again.status_code == 422
    assert again.json()["fields"][0]["field"] == "name"
    other = await eve.post("/api/cis", json={"name": "web-01", "customer": "GLOBEX", "class": "server"})
    assert other.status_code == 201
    # Provider staff naming an ambiguous CI are asked to qualify it.
    ambiguous = await eve.get("/api/cis/web-01")
    assert ambiguous.status_code == 422
    assert (await eve.get("/api/cis/GLOBEX:web-01")).json()["customer"] == "GLOBEX"


async def test_bad_relationships_are_refused(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    a = await world.ci("ACME", "a")
    b = await world.ci("ACME", "b")
    g = await world.ci("GLOBEX", "g")
    p = await world.ci("PROV", "p", "cluster")
    before = await _counts(world)
    cases = [
        ({"source": a.id, "target": b.id, "type": "likes"}, "type"),
        ({"source": a.id, "target": a.id, "type": "depends_on"}, "target"),
        ({"source": a.id, "target": g.id, "type": "depends_on"}, "target"),
        ({"source": p.id, "target": a.id, "type": "depends_on"}, "target"),
        ({"source": a.id, "target": 999999, "type": "depends_on"}, "target"),
        ({"target": b.id, "type": "depends_on"}, "source"),
    ]
    for body, field in cases:
        response = await eve.post("/api/relationships", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in {problem["field"] for problem in response.json()["fields"]}, body
    assert await _counts(world) == before
    assert (
        await eve.post("/api/relationships", json={"source": a.id, "target": p.id, "type": "hosted_on"})
    ).status_code == 201
    duplicate = await eve.post("/api/relationships", json={"source": a.id, "target": p.id, "type": "hosted_on"})
    assert duplicate.status_code == 422


async def test_every_write_appends_history(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    ci = (await eve.post("/api/cis", json={"name": "db-01", "customer": "ACME", "class": "database"})).json()
    app = await world.ci("ACME", "crm", "application")
    await eve.patch(f"/api/cis/{ci['id']}", json={"description": "primary", "attributes": {"version": "15.2"}})
    rel = (
        await eve.post("/api/relationships", json={"source": app.id, "target": ci["id"], "type": "depends_on"})
    ).json()
    assert (await eve.delete(f"/api/relationships/{rel['id']}")).status_code == 204
    history = (await eve.get(f"/api/cis/{ci['id']}/history")).json()
    actions = [(item["entity"], item["action"]) for item in history["items"]]
    assert actions == [
        ("relationship", "deleted"),
        ("relationship", "created"),
        ("ci", "updated"),
        ("ci", "created"),
    ]
    update = history["items"][2]
    assert update["actor"] == "eve"
    assert update["before"] == {"description": "", "attributes": {}}
    assert update["after"] == {"description": "primary", "attributes": {"version": "15.2"}}
    assert history["total"] == 4


async def test_history_cannot_be_edited_or_deleted_through_any_route(world: World, sign_in: Any) -> None:
    admin = await sign_in("admin")
    ci = await world.ci("ACME", "x")
    entry = (await admin.get(f"/api/cis/{ci.id}/history")).json()["items"][0]["id"]
    for method in ("patch", "delete", "post"):
        response = await getattr(admin, method)(f"/api/cis/{ci.id}/history/{entry}")
        assert response.status_code in (404, 405), (method, response.status_code)
        response = await getattr(admin, method)(f"/api/cis/{ci.id}/history")
        assert response.status_code in (404, 405), (method, response.status_code)


async def test_controlled_change_without_approved_rfc_is_flagged_in_the_audit(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    ci = await world.ci("ACME", "srv-9", attributes={"serial_number": "SN-1", "location": "Rack 4"})
    await eve.patch(f"/api/cis/{ci.id}", json={"attributes": {"location": "Rack 5"}})
    await eve.patch(f"/api/cis/{ci.id}", json={"attributes": {"serial_number": "SN-2"}, "rfc": "RFC-2026-0001"})
    audit = (await eve.get("/api/cis/audit")).json()
    assert audit["total"] == 1
    flagged = audit["items"][0]
    assert flagged["ci"] == ci.id
    assert flagged["unauthorized_fields"] == ["serial_number"]
    assert flagged["rfc"] == "RFC-2026-0001"


async def test_stale_version_is_refused_and_changes_nothing(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    ci = await world.ci("ACME", "v-1")
    first = await eve.patch(f"/api/cis/{ci.id}", json={"description": "one"}, headers={"If-Match": "1"})
    assert first.status_code == 200
    assert first.json()["version"] == 2
    stale = await eve.patch(f"/api/cis/{ci.id}", json={"description": "two"}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    assert stale.json()["error"] == "version_conflict"
    assert stale.json()["version"] == 2
    assert (await eve.get(f"/api/cis/{ci.id}")).json()["description"] == "one"


async def test_simultaneous_updates_of_one_version_let_exactly_one_win(world: World) -> None:
    ci = await world.ci("ACME", "race-1")
    eve = world.actors["eve"]

    async def attempt(text: str) -> str:
        try:
            await world.service.update_ci(eve, ci.id, {"description": text}, expected_version=1)
            return "won"
        except Exception as error:
            return type(error).__name__

    outcomes = await asyncio.gather(*(attempt(f"writer {i}") for i in range(10)))
    assert outcomes.count("won") == 1
    assert set(outcomes) == {"won", "StaleVersion"}


async def test_impact_terminates_on_cycles_and_respects_depth_and_types(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    a, b, c, d = [await world.ci("ACME", name) for name in "abcd"]
    await world.link(a.id, b.id)
    await world.link(b.id, c.id)
    await world.link(c.id, a.id)
    await world.link(d.id, c.id, "documented_by")
    down = (await eve.get(f"/api/cis/{c.id}/impact")).json()
    assert {(item["ci"]["name"], item["depth"]) for item in down["items"]} == {("b", 1), ("d", 1), ("a", 2)}
    only_depends = (await eve.get(f"/api/cis/{c.id}/impact?types=depends_on")).json()
    assert {item["ci"]["name"] for item in only_depends["items"]} == {"b", "a"}
    shallow = (await eve.get(f"/api/cis/{c.id}/impact?depth=1")).json()
    assert {item["ci"]["name"] for item in shallow["items"]} == {"b", "d"}
    up = (await eve.get(f"/api/cis/{a.id}/impact?direction=up")).json()
    assert [(item["ci"]["name"], item["via"]) for item in up["items"]] == [("b", a.id), ("c", b.id)]
    bad = await eve.get(f"/api/cis/{a.id}/impact?types=likes")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "types"
    assert (await eve.get(f"/api/cis/{a.id}/impact?direction=sideways")).status_code == 422


async def test_path_explains_how_two_cis_are_connected(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    svc = await world.ci("ACME", "svc", "service")
    app = await world.ci("ACME", "app", "application")
    vm = await world.ci("ACME", "vm", "virtual_machine")
    lonely = await world.ci("ACME", "lonely")
    await world.link(svc.id, app.id)
    await world.link(app.id, vm.id, "runs_on")
    path = (await eve.get(f"/api/cis/{svc.id}/path/{vm.id}")).json()
    assert [(h["source"]["name"], h["type"], h["target"]["name"]) for h in path["hops"]] == [
        ("svc", "depends_on", "app"),
        ("app", "runs_on", "vm"),
    ]
    reverse = (await eve.get(f"/api/cis/{vm.id}/path/{svc.id}")).json()
    assert reverse["length"] == 2
    assert (await eve.get(f"/api/cis/{svc.id}/path/{lonely.id}")).status_code == 404


async def test_customer_admin_routes(world: World, sign_in: Any) -> None:
    admin = await sign_in("admin")
    created = await admin.post(
        "/api/customers",
        json={
            "key": "INITECH",
            "name": "Initech",
            "timezone": "Europe/Berlin",
            "holiday_region": "DE-BE",
            "sla": {"watch_days": 5},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["calendar"]["holiday_region"] == "DE-BE"
    bad = await admin.post("/api/customers", json={"key": "X1", "name": "X", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "timezone"
    patched = await admin.patch("/api/customers/INITECH", json={"sla": {"watch_days": 9}}, headers={"If-Match": "1"})
    assert patched.status_code == 200 and patched.json()["sla"]["watch_days"] == 9
    stale = await admin.patch("/api/customers/INITECH", json={"name": "Initech AG"}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    person = await admin.post(
        "/api/people",
        json={
            "username": "pat",
            "name": "Pat",
            "roles": ["customer"],
            "customer": "INITECH",
            "password": "pat-password",
        },
    )
    assert person.status_code == 201 and person.json()["customer"] == "INITECH"
    wrong = await admin.post(
        "/api/people", json={"username": "pat2", "name": "Pat", "roles": ["engineer"], "customer": "INITECH"}
    )
    assert wrong.status_code == 422 and wrong.json()["fields"][0]["field"] == "roles"


async def test_openapi_schema_documents_the_api(client: Any) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/cis", "/api/cis/{ref}/impact", "/api/relationships", "/api/import/cis", "/api/customers"):
        assert path in schema["paths"], path
