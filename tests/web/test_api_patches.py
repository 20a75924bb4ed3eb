"""The patch urgency API: `GET /api/rfcs/{id}/urgency`, the board `GET /api/patches`, compliance
`GET /api/patches/compliance`; bad input (422), other tenants (404), non-patches (404)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support import FakeClock, World


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    return {"acme": await world.ci("ACME", "acme-web"), "globex": await world.ci("GLOBEX", "globex-db", "database")}


async def _patch(session: Any, customer: str, ci: int, level: str, available_at: str, title: str = "Patch") -> Any:
    response = await session.post(
        "/api/rfcs",
        json={"customer": customer, "title": title, "cis": [ci], "urgency": level, "available_at": available_at},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_urgency_of_a_patch_rfc(estate: dict[str, Any], sign_in: Any, clock: FakeClock) -> None:
    eve = await sign_in("eve")
    rfc = await _patch(eve, "ACME", estate["acme"].id, "critical", "2026-11-02T14:00:00+00:00")
    for ref in (rfc["key"], str(rfc["id"])):
        response = await eve.get(f"/api/rfcs/{ref}/urgency")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rfc"] == rfc["id"] and body["key"] == rfc["key"]
        assert body["level"] == "critical"
        assert body["clock_start"] == "2026-11-02T14:00:00+00:00"
        assert body["due"] == "2026-11-05T14:00:00+00:00"
        assert body["state"] == "on_track" and body["met_at"] is None and body["met_on_time"] is None
        assert body["share_used"] == 0 and body["at_risk_from"] == "2026-11-04T16:00:00+00:00"
    clock.set(dt.datetime(2026, 11, 5, 15, tzinfo=dt.UTC))
    assert (await eve.get(f"/api/rfcs/{rfc['key']}/urgency")).json()["state"] == "overdue"


async def test_urgency_is_not_found_for_non_patches_and_other_tenants(estate: dict[str, Any], sign_in: Any) -> None:
    eve = await sign_in("eve")
    plain = await eve.post("/api/rfcs", json={"customer": "ACME", "title": "Plain", "cis": [estate["acme"].id]})
    response = await eve.get(f"/api/rfcs/{plain.json()['key']}/urgency")
    assert response.status_code == 404
    assert response.json()["error"] == "not_a_patch" and "not a patch" in response.json()["detail"]
    rfc = await _patch(eve, "ACME", estate["acme"].id, "critical", "2026-11-02T14:00:00+00:00")
    globex = await sign_in("globex-contact")
    for ref in (rfc["key"], str(rfc["id"])):
        assert (await globex.get(f"/api/rfcs/{ref}/urgency")).status_code == 404
    assert (await eve.get("/api/rfcs/RFC-2026-9999/urgency")).status_code == 404
    acme = await sign_in("acme-contact")
    assert (await acme.get(f"/api/rfcs/{rfc['key']}/urgency")).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"urgency": "whenever"}, "urgency"),
        ({"available_at": "2099-01-01T00:00:00Z"}, "available_at"),
        ({"available_at": "next week"}, "available_at"),
        ({"available_at": "2026-10-30T08:00:00"}, "available_at"),
    ],
)
async def test_bad_urgency_or_clock_start_is_refused_on_create_and_update(
    estate: dict[str, Any], sign_in: Any, change: dict[str, Any], field: str
) -> None:
    eve = await sign_in("eve")
    created = await eve.post(
        "/api/rfcs", json={"customer": "ACME", "title": "Patch", "cis": [estate["acme"].id], **change}
    )
    assert created.status_code == 422, created.text
    assert field in [f["field"] for f in created.json()["fields"]]
    rfc = await _patch(eve, "ACME", estate["acme"].id, "critical", "2026-11-02T14:00:00+00:00")
    updated = await eve.patch(f"/api/rfcs/{rfc['key']}", json=change)
    assert updated.status_code == 422, updated.text
    assert field in [f["field"] for f in updated.json()["fields"]]
    # Nothing changed: the urgency still answers from the stored values.
    assert (await eve.get(f"/api/rfcs/{rfc['key']}/urgency")).json()["level"] == "critical"


async def test_board_sorted_by_due_scoped_to_the_callers_tenant(
    estate: dict[str, Any], sign_in: Any, clock: FakeClock
) -> None:
    eve = await sign_in("eve")
    important = await _patch(eve, "GLOBEX", estate["globex"].id, "important", "2026-11-02T09:00:00+00:00")
    critical = await _patch(eve, "ACME", estate["acme"].id, "critical", "2026-11-02T14:00:00+00:00", "Fix the hole")
    moderate = await _patch(eve, "ACME", estate["acme"].id, "moderate", "2026-11-01T14:00:00+00:00")
    response = await eve.get("/api/patches")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["key"] for item in body["items"]] == [critical["key"], important["key"], moderate["key"]]
    assert body["total"] == 3 and body["counts"]["on_track"] == 3
    first = body["items"][0]
    assert first["customer"] == "ACME" and first["title"] == "Fix the hole" and first["rfc_state"] == "draft"
    assert first["state"] == "on_track" and first["due"] == "2026-11-05T14:00:00+00:00"
    page = (await eve.get("/api/patches?limit=1&offset=1")).json()
    assert [item["key"] for item in page["items"]] == [important["key"]] and page["total"] == 3
    only_globex = (await eve.get("/api/patches?customer=GLOBEX")).json()
    assert [item["key"] for item in only_globex["items"]] == [important["key"]]
    acme = await sign_in("acme-contact")
    mine = (await acme.get("/api/patches")).json()
    assert {item["customer"] for item in mine["items"]} == {"ACME"} and mine["total"] == 2
    assert (await acme.get("/api/patches?customer=GLOBEX")).status_code == 404
    clock.set(dt.datetime(2026, 11, 5, 15, tzinfo=dt.UTC))
    overdue = (await eve.get("/api/patches?state=overdue,at_risk")).json()
    assert [(item["key"], item["state"]) for item in overdue["items"]] == [(critical["key"], "overdue")]
    bad = await eve.get("/api/patches?state=late")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "state"
    assert (await eve.get("/api/patches?limit=0")).status_code in (400, 422)


async def test_compliance(estate: dict[str, Any], sign_in: Any, clock: FakeClock) -> None:
    eve = await sign_in("eve")
    rfc = await _patch(eve, "ACME", estate["acme"].id, "critical", "2026-11-02T14:00:00+00:00")
    clock.set(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    response = await eve.get("/api/patches/compliance?customer=ACME&month=2026-11")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer"] == "ACME" and body["month"] == "2026-11"
    assert body["share_met_on_time"] == 0.0
    assert body["counts"] == {"due": 1, "met_on_time": 0, "met_late": 0, "unmet": 1, "pending": 0}
    assert body["lacking"] == [
        {
            "ci": estate["acme"].id,
            "ci_name": "acme-web",
            "rfc": rfc["id"],
            "rfc_key": rfc["key"],
            "level": "critical",
            "due": "2026-11-05T14:00:00+00:00",
        }
    ]
    october = (await eve.get("/api/patches/compliance?customer=ACME&month=2026-10")).json()
    assert october["share_met_on_time"] is None and october["counts"]["due"] == 0
    future = await eve.get("/api/patches/compliance?customer=ACME&month=2026-12")
    assert future.status_code == 422 and future.json()["fields"][0]["field"] == "month"
    assert (await eve.get("/api/patches/compliance?customer=ACME&month=November")).status_code == 422
    assert (await eve.get("/api/patches/compliance?customer=NOPE&month=2026-11")).status_code == 404
    missing = await eve.get("/api/patches/compliance?month=2026-11")
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "customer"
    globex = await sign_in("globex-contact")
    assert (await globex.get("/api/patches/compliance?customer=ACME&month=2026-11")).status_code == 404
    own = (await globex.get("/api/patches/compliance?month=2026-11")).json()
    assert own["customer"] == "GLOBEX" and own["lacking"] == []


async def test_the_schema_documents_the_patch_routes(client: Any) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in ("/api/rfcs/{ref}/urgency", "/api/patches", "/api/patches/compliance"):
        assert path in schema["paths"], path
