"""The problem API: create, list, actions with 409/422 bodies, history, trends, tenant 404s."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from litestar import Litestar

from tests.integration.test_problems import FakeWatch, period, seed_incident
from tests.support import World


@pytest.fixture
async def seeded(world: World) -> dict[str, Any]:
    mail = await world.ci("ACME", "mail01", "server")
    web = await world.ci("GLOBEX", "web01", "server")
    incidents = [await seed_incident(world, "ACME", [mail.id], f"Mail stalls {i}") for i in range(3)]
    globex = await seed_incident(world, "GLOBEX", [web.id], "Web down")
    return {"mail": mail, "web": web, "incidents": incidents, "globex": globex}


async def test_create_get_list_and_the_contract_fields(sign_in: Any, seeded: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    response = await eve.post(
        "/api/problems",
        json={"customer": "ACME", "title": "Mail stalls", "incidents": [seeded["incidents"][0][1]]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    for name in ("id", "key", "status", "incidents", "root_cause", "known_error", "version", "allowed_actions"):
        assert name in body
    assert body["key"] == "PRB-2026-0001" and body["status"] == "open" and body["customer"] == "ACME"
    assert body["incidents"] == [seeded["incidents"][0][0]] and body["cis"] == [seeded["mail"].id]
    assert "investigate" in body["allowed_actions"]
    for ref in (body["id"], body["key"]):
        got = await eve.get(f"/api/problems/{ref}")
        assert got.status_code == 200 and got.json()["id"] == body["id"]
    listed = (await eve.get("/api/problems?customer=ACME&status=open")).json()
    assert listed["total"] == 1 and listed["items"][0]["key"] == body["key"]
    assert (await eve.get("/api/problems?status=investigating")).json()["total"] == 0
    bad = await eve.get("/api/problems?status=sleeping")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "status"


async def test_bad_create_names_the_fields(sign_in: Any, seeded: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/problems", json={"customer": "ACME", "cis": ["nope"]})
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["fields"]} == {"title", "cis"}
    assert (await eve.post("/api/problems", content=b"[1]")).status_code == 422
    customer = await sign_in("acme-contact")
    assert (await customer.post("/api/problems", json={"customer": "ACME", "title": "x"})).status_code == 403


async def test_actions_conflicts_and_history(sign_in: Any, seeded: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    key = (await eve.post("/api/problems", json={"customer": "ACME", "title": "Mail stalls"})).json()["key"]
    closed = await eve.post(f"/api/problems/{key}/actions/close", json={})
    assert closed.status_code == 409
    assert closed.json()["state"] == "open" and "investigate" in closed.json()["allowed"]
    missing = await eve.post(f"/api/problems/{key}/actions/known-error", json={"root_cause": "Spool disk"})
    assert missing.status_code == 422 and [f["field"] for f in missing.json()["fields"]] == ["workaround"]
    linked = await eve.post(f"/api/problems/{key}/actions/link-incident", json={"incident": seeded["incidents"][1][1]})
    assert linked.status_code == 200 and linked.json()["incidents"] == [seeded["incidents"][1][0]]
    other = await eve.post(f"/api/problems/{key}/actions/link-incident", json={"incident": seeded["globex"][1]})
    assert other.status_code == 422 and other.json()["fields"][0]["field"] == "incident"
    stale = await eve.post(f"/api/problems/{key}/actions/investigate", json={}, headers={"If-Match": "1"})
    assert stale.status_code == 409
    version = linked.json()["version"]
    known = await eve.post(
        f"/api/problems/{key}/actions/known-error",
        json={"root_cause": "Spool disk fills", "workaround": "Purge the spool", "version": version},
    )
    assert known.status_code == 200 and known.json()["known_error"] is True
    raised = await eve.post(f"/api/problems/{key}/actions/raise-rfc", json={"comment": "Grow the spool volume"})
    assert raised.status_code == 200 and raised.json()["rfc_key"].startswith("RFC-2026-")
    rfc = (await eve.get(f"/api/rfcs/{raised.json()['rfc_key']}")).json()
    assert rfc["origin"] == "problem" and rfc["origin_ref"] == key
    early = await eve.post(f"/api/problems/{key}/actions/resolve", json={"resolution": "done"})
    assert early.status_code == 409 and early.json()["state"] == "known_error"
    unknown = await eve.post(f"/api/problems/{key}/actions/explode", json={})
    assert unknown.status_code == 422
    history = (await eve.get(f"/api/problems/{key}/history")).json()
    assert [h["action"] for h in history["items"]] == [
        "created",
        "incident_linked",
        "known_error_recorded",
        "rfc_raised",
    ]


async def test_customers_read_their_own_only(sign_in: Any, seeded: dict[str, Any]) -> None:
    eve = await sign_in("eve")
    acme = (await eve.post("/api/problems", json={"customer": "ACME", "title": "Acme"})).json()
    internal = (await eve.post("/api/problems", json={"customer": "PROV", "title": "Internal"})).json()
    contact = await sign_in("acme-contact")
    mine = await contact.get(f"/api/problems/{acme['key']}")
    assert mine.status_code == 200 and mine.json()["allowed_actions"] == []
    refused = await contact.post(f"/api/problems/{acme['key']}/actions/investigate", json={})
    assert refused.status_code == 403
    assert (await contact.get("/api/problems")).json()["total"] == 1
    outsider = await sign_in("globex-contact")
    for ref in (acme["id"], acme["key"], internal["key"]):
        assert (await outsider.get(f"/api/problems/{ref}")).status_code == 404
        assert (await outsider.get(f"/api/problems/{ref}/history")).status_code == 404
        assert (await outsider.post(f"/api/problems/{ref}/actions/investigate", json={})).status_code == 404
    assert (await outsider.get("/api/problems?customer=ACME")).status_code == 404
    assert (await outsider.get("/api/problems/trends?customer=ACME")).status_code == 404


async def test_trends_with_a_spike(app: Litestar, world: World, sign_in: Any, seeded: dict[str, Any]) -> None:
    watch = FakeWatch()
    app.state.problems.watch_source = watch
    now = world.clock.now()
    watch.periods = [period(world, 7, (seeded["mail"].id,), now - dt.timedelta(days=1))]
    eve = await sign_in("eve")
    response = await eve.get("/api/problems/trends?days=30&min_count=3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["name"], r["customer"], r["count"]) for r in body["repeated"]["by_ci"]] == [("mail01", "ACME", 3)]
    assert body["repeated"]["by_class"][0]["class"] == "server"
    assert body["repeated"]["by_customer"][0]["customer"] == "ACME"
    [spike] = body["spikes"]
    for name in ("release", "key", "customer", "watch_from", "watch_until", "incidents_in_watch", "rate"):
        assert name in spike
    assert spike["flagged"] and spike["ratio"] >= 2 and spike["problem"] == "PRB-2026-0001"
    proposed = (await eve.get("/api/problems/PRB-2026-0001")).json()
    assert proposed["origin"] == "trend" and proposed["source_release"] == 7
    contact = await sign_in("globex-contact")
    theirs = (await contact.get("/api/problems/trends?min_count=1")).json()
    assert [r["customer"] for r in theirs["repeated"]["by_customer"]] == ["GLOBEX"] and theirs["spikes"] == []
    assert (await eve.get("/api/problems/trends?days=0")).status_code in (400, 422)
