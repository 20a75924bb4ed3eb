"""Releases through the API: create, evidence, approval, deployment per CI, back-out, history,
errors naming what is missing, races and tenancy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import World

FULL = {
    "need": "A vendor fixed a hole in the web server.",
    "desired_result": "The patched version runs everywhere.",
    "plan": "Install the update, restart, verify.",
    "backout_plan": "Reinstall the previous package.",
}


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    web = await world.ci("ACME", "web-01", "server")
    app = await world.ci("ACME", "shop", "application")
    await world.link(app.id, web.id)
    env = await world.ci("ACME", "test-lab", "test_environment")
    globex = await world.ci("GLOBEX", "globex-web", "server")
    return {"web": web, "app": app, "env": env, "globex": globex}


async def _rfc(sign_in: Any, ci: int, *, customer: str = "ACME", approve: bool = True, **extra: Any) -> dict[str, Any]:
    eve, carl = await sign_in("eve"), await sign_in("carl")
    created = await eve.post(
        "/api/rfcs", json={"customer": customer, "title": "Patch httpd", "cis": [ci], **FULL, **extra}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert (await eve.post(f"/api/rfcs/{key}/actions/submit", json={})).status_code == 200
    if not approve:
        return created.json()
    response = await carl.post(f"/api/rfcs/{key}/actions/authorize", json={"release_requirements": ["regression test"]})
    assert response.status_code == 200, response.text
    response = await carl.post(f"/api/rfcs/{key}/actions/approve", json={})
    assert response.status_code == 200, response.text
    return response.json()


async def _release(sign_in: Any, rfcs: list[Any], **extra: Any) -> dict[str, Any]:
    rita = await sign_in("rita")
    response = await rita.post(
        "/api/releases", json={"customer": "ACME", "title": "November patches", "rfcs": rfcs, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_and_read_a_release(estate: dict[str, Any], sign_in: Any) -> None:
    rfc = await _rfc(sign_in, estate["web"].id)
    body = await _release(sign_in, [rfc["key"]])
    assert body["key"] == "REL-2026-0001"
    assert body["state"] == "planned"
    assert body["customer"] == "ACME"
    assert body["rfcs"] == [rfc["id"]] and body["rfc_keys"] == [rfc["key"]]
    assert body["requirements"] == [
        {"text": "regression test", "rfcs": [rfc["key"]], "satisfied": False, "test": None, "test_name": None}
    ]
    assert body["version"] == 1
    assert "record-test" in body["allowed_actions"]
    rita = await sign_in("rita")
    by_id = (await rita.get(f"/api/releases/{body['id']}")).json()
    assert by_id["key"] == body["key"]
    listing = (await rita.get("/api/releases?customer=ACME&state=planned")).json()
    assert listing["total"] == 1 and listing["items"][0]["rfc_keys"] == [rfc["key"]]
    assert (await rita.get("/api/releases?state=deployed")).json()["total"] == 0
    assert (await rita.get("/api/releases?state=nonsense")).status_code == 422


async def test_bad_input_names_the_field_and_wrong_states_answer_409(estate: dict[str, Any], sign_in: Any) -> None:
    rita = await sign_in("rita")
    response = await rita.post("/api/releases", json={"title": "x"})
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == "customer"
    submitted = await _rfc(sign_in, estate["web"].id, approve=False)
    release = await _release(sign_in, [])
    refused = await rita.post(f"/api/releases/{release['key']}/actions/add-rfc", json={"rfc": submitted["key"]})
    assert refused.status_code == 409
    assert (
        f"{submitted['key']} is submitted; only approved or scheduled RFCs can join a release"
        in refused.json()["detail"]
    )
    deploy = await rita.post(f"/api/releases/{release['key']}/actions/deploy", json={})
    assert deploy.status_code == 409
    assert deploy.json()["state"] == "planned" and "record-test" in deploy.json()["allowed"]
    unknown = await rita.post(f"/api/releases/{release['key']}/actions/launch", json={})
    assert unknown.status_code == 422 and unknown.json()["fields"][0]["field"] == "action"
    malformed = await rita.post(
        f"/api/releases/{release['key']}/actions/approve",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 422 and malformed.json()["fields"][0]["field"] == "body"


async def test_full_journey_with_missing_evidence_deployments_and_back_out(
    estate: dict[str, Any], sign_in: Any
) -> None:
    rfc = await _rfc(sign_in, estate["web"].id)
    release = await _release(sign_in, [rfc["id"]])
    key = release["key"]
    rita, eve = await sign_in("rita"), await sign_in("eve")
    refused = await rita.post(f"/api/releases/{key}/actions/approve", json={})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "missing_evidence" and body["state"] == "planned"
    refused = await rita.post(f"/api/releases/{key}/actions/start-testing", json={})
    assert refused.status_code == 200
    refused = await rita.post(f"/api/releases/{key}/actions/approve", json={})
    assert refused.status_code == 409
    missing = refused.json()["missing"]
    assert "at least one passed test" in missing
    assert any("'regression test'" in m for m in missing) and any("test environment" in m for m in missing)
    recorded = await eve.post(
        f"/api/releases/{key}/actions/record-test",
        json={
            "name": "regression suite",
            "result": "passed",
            "covers": ["regression test"],
            "negative_effects": "Cold start 2 s slower",
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    assert recorded.status_code == 200, recorded.text
    body = recorded.json()
    assert body["test_environment"] == estate["env"].id and body["represents"] == [estate["web"].id]
    assert body["requirements"][0]["satisfied"] is True and body["requirements"][0]["test_name"] == "regression suite"
    assert body["negative_effects"][0]["review"] is None
    test_id = body["tests"][0]["id"]
    refused = await rita.post(f"/api/releases/{key}/actions/approve", json={})
    assert refused.status_code == 409 and any("negative effects" in m for m in refused.json()["missing"])
    accepted = await rita.post(
        f"/api/releases/{key}/actions/review-effect", json={"test": test_id, "review": "accepted", "justification": "x"}
    )
    assert accepted.status_code == 409 and "critical patch" in accepted.json()["detail"]
    resolved = await rita.post(
        f"/api/releases/{key}/actions/review-effect", json={"test": test_id, "review": "resolved"}
    )
    assert resolved.status_code == 200
    assert resolved.json()["negative_effects"][0]["review"]["outcome"] == "resolved"
    approved = await rita.post(f"/api/releases/{key}/actions/approve", json={})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["approved_at"]
    deploying = await rita.post(f"/api/releases/{key}/actions/deploy", json={})
    assert deploying.json()["state"] == "deploying"
    done = await rita.post(
        f"/api/releases/{key}/actions/complete", json={"deployments": [{"ci": "web-01", "version": "httpd 2.4.62"}]}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "deployed" and body["watch_until"] and body["watch_days"] == 7
    assert body["deployments"][0]["ci_name"] == "web-01" and body["deployments"][0]["outcome"] == "deployed"
    installed = (await eve.get("/api/cis/web-01/deployments")).json()
    assert installed["total"] == 1 and installed["items"][0]["release_key"] == key
    assert installed["items"][0]["version"] == "httpd 2.4.62"
    ci_history = (await eve.get(f"/api/cis/{estate['web'].id}/history")).json()["items"]
    assert any(h["action"] == "deployed" and h["after"]["release"] == key for h in ci_history)
    no_reason = await rita.post(f"/api/releases/{key}/actions/back-out", json={})
    assert no_reason.status_code == 422 and no_reason.json()["fields"][0]["field"] == "reason"
    backed = await rita.post(f"/api/releases/{key}/actions/back-out", json={"reason": "Checkout broke"})
    assert backed.status_code == 200 and backed.json()["state"] == "backed_out"
    assert backed.json()["deployments"][0]["outcome"] == "backed_out"
    history = (await rita.get(f"/api/releases/{key}/history")).json()
    assert [h["action"] for h in history["items"]] == [
        "created",
        "testing_started",
        "test_recorded",
        "effect_reviewed",
        "approved",
        "deployment_started",
        "deployed",
        "backed_out",
    ]


async def test_if_match_and_two_simultaneous_approvals(estate: dict[str, Any], sign_in: Any) -> None:
    rfc = await _rfc(sign_in, estate["web"].id)
    release = await _release(sign_in, [rfc["key"]], test_environment="test-lab", represents=["web-01"])
    key = release["key"]
    rita, admin = await sign_in("rita"), await sign_in("admin")
    recorded = await rita.post(
        f"/api/releases/{key}/actions/record-test",
        json={"name": "regression", "result": "passed", "covers": ["regression test"]},
    )
    version = recorded.json()["version"]
    stale = await rita.post(f"/api/releases/{key}/actions/approve", json={}, headers={"If-Match": str(version - 1)})
    assert stale.status_code == 409 and stale.json()["error"] == "version_conflict"
    responses = await asyncio.gather(
        rita.post(f"/api/releases/{key}/actions/approve", json={"version": version}),
        admin.post(f"/api/releases/{key}/actions/approve", json={"version": version}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    history = (await rita.get(f"/api/releases/{key}/history")).json()["items"]
    assert [h["action"] for h in history].count("approved") == 1


async def test_roles_and_tenancy(estate: dict[str, Any], sign_in: Any) -> None:
    rfc = await _rfc(sign_in, estate["web"].id)
    release = await _release(sign_in, [rfc["key"]])
    key = release["key"]
    rita = await sign_in("rita")
    internal = await rita.post("/api/releases", json={"customer": "PROV", "title": "Internal tooling"})
    assert internal.status_code == 201
    eve, acme, globex = await sign_in("eve"), await sign_in("acme-contact"), await sign_in("globex-contact")
    assert (await eve.post("/api/releases", json={"customer": "ACME", "title": "x"})).status_code == 403
    assert (await eve.post(f"/api/releases/{key}/actions/approve", json={})).status_code == 403
    mine = await acme.get(f"/api/releases/{key}")
    assert mine.status_code == 200 and mine.json()["allowed_actions"] == []
    assert (await acme.post(f"/api/releases/{key}/actions/approve", json={})).status_code == 403
    listing = (await acme.get("/api/releases")).json()
    assert [r["key"] for r in listing["items"]] == [key]
    assert (await acme.get(f"/api/releases/{internal.json()['key']}")).status_code == 404
    for path in (f"/api/releases/{key}", f"/api/releases/{release['id']}", f"/api/releases/{key}/history"):
        assert (await globex.get(path)).status_code == 404, path
    assert (await globex.post(f"/api/releases/{key}/actions/record-test", json={})).status_code == 404
    assert (await globex.get("/api/releases")).json()["total"] == 0
    assert (await globex.get(f"/api/cis/{estate['web'].id}/deployments")).status_code == 404
    assert (await globex.get("/api/releases?customer=ACME")).status_code == 404
