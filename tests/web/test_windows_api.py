"""Change windows and blackout periods live in the CMDB, per customer or per CI."""

from __future__ import annotations

from typing import Any

from tests.support import World


async def test_change_manager_records_windows_and_blackouts(world: World, sign_in: Any) -> None:
    carl = await sign_in("carl")
    ci = await world.ci("ACME", "erp-db", "database")
    window = {
        "name": "Saturday night",
        "days": [6],
        "start": "22:00",
        "duration_minutes": 360,
        "timezone": "America/New_York",
    }
    created = await carl.post("/api/customers/ACME/windows", json=window)
    assert created.status_code == 201, created.text
    per_ci = await carl.post("/api/customers/ACME/windows", json={**window, "name": "DB only", "ci": ci.id})
    assert per_ci.status_code == 201
    listed = (await carl.get("/api/customers/ACME/windows")).json()
    assert [(w["name"], w["ci"]) for w in listed["items"]] == [("Saturday night", None), ("DB only", ci.id)]
    blackout = await carl.post(
        "/api/customers/ACME/blackouts",
        json={"start": "2026-12-20T00:00:00Z", "end": "2027-01-02T00:00:00Z", "reason": "Holiday freeze"},
    )
    assert blackout.status_code == 201, blackout.text
    assert (await carl.get("/api/customers/ACME/blackouts")).json()["items"][0]["reason"] == "Holiday freeze"
    history = (await carl.get(f"/api/cis/{ci.id}/history")).json()
    assert "change_window" in {item["entity"] for item in history["items"]}


async def test_bad_windows_and_blackouts_are_refused(world: World, sign_in: Any) -> None:
    carl = await sign_in("carl")
    globex_ci = await world.ci("GLOBEX", "g-1")
    cases = [
        ({"name": "x", "days": [8], "start": "22:00", "duration_minutes": 60, "timezone": "UTC"}, "days"),
        ({"name": "x", "days": [6], "start": "25:00", "duration_minutes": 60, "timezone": "UTC"}, "start"),
        ({"name": "x", "days": [6], "start": "22:00", "duration_minutes": 0, "timezone": "UTC"}, "duration_minutes"),
        ({"name": "x", "days": [6], "start": "22:00", "duration_minutes": 60, "timezone": "Nowhere/City"}, "timezone"),
        (
            {"name": "x", "days": [6], "start": "22:00", "duration_minutes": 60, "timezone": "UTC", "ci": globex_ci.id},
            "ci",
        ),
    ]
    for body, field in cases:
        response = await carl.post("/api/customers/ACME/windows", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in {p["field"] for p in response.json()["fields"]}, (body, response.json())
    backwards = await carl.post(
        "/api/customers/ACME/blackouts", json={"start": "2027-01-02T00:00:00Z", "end": "2026-12-20T00:00:00Z"}
    )
    assert backwards.status_code == 422 and backwards.json()["fields"][0]["field"] == "end"
    assert (await carl.get("/api/customers/ACME/windows")).json()["total"] == 0


async def test_windows_of_another_customer_are_invisible_and_engineers_cannot_set_them(
    world: World, sign_in: Any
) -> None:
    carl = await sign_in("carl")
    window = {"name": "Sunday", "days": [7], "start": "02:00", "duration_minutes": 120, "timezone": "Europe/London"}
    assert (await carl.post("/api/customers/GLOBEX/windows", json=window)).status_code == 201
    acme = await sign_in("acme-contact")
    assert (await acme.get("/api/customers/GLOBEX/windows")).status_code == 404
    assert (await acme.get("/api/customers/GLOBEX/blackouts")).status_code == 404
    assert (await acme.post("/api/customers/ACME/windows", json=window)).status_code == 403
    eve = await sign_in("eve")
    assert (await eve.post("/api/customers/ACME/windows", json=window)).status_code == 403
