"""SLA terms of every process are checked when a customer is saved: refused with the field
named, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import World


@pytest.mark.parametrize(
    ("sla", "field"),
    [
        ({"patch_schedule": {"urgentish": {"business_days": 2}}}, "sla.patch_schedule"),
        ({"patch_at_risk_share": 1.5}, "sla.patch_at_risk_share"),
        ({"alert_thresholds": {"cpu_percent": {"above": "hot"}}}, "sla.alert_thresholds.cpu_percent"),
        ({"alert_thresholds": {"coffee_level": {"below": 1}}}, "sla.alert_thresholds.coffee_level"),
        ({"incident_template": "vibes"}, "sla.incident_template"),
    ],
)
async def test_bad_sla_terms_are_refused_naming_the_field(
    world: World, sign_in: Any, sla: dict[str, Any], field: str
) -> None:
    admin = await sign_in("admin")
    before = (await admin.get("/api/customers/ACME")).json()
    response = await admin.patch("/api/customers/ACME", json={"sla": sla})
    assert response.status_code in (400, 422), response.text
    body = response.json()
    assert any(f["field"].startswith(field) for f in body["fields"]), body
    after = (await admin.get("/api/customers/ACME")).json()
    assert after == before


async def test_good_sla_terms_are_saved_and_merged(world: World, sign_in: Any) -> None:
    admin = await sign_in("admin")
    first = await admin.patch(
        "/api/customers/ACME", json={"sla": {"patch_schedule": {"critical": {"business_days": 2}}}}
    )
    assert first.status_code == 200, first.text
    second = await admin.patch(
        "/api/customers/ACME", json={"sla": {"alert_thresholds": {"cpu_percent": {"above": 95}}}}
    )
    assert second.status_code == 200, second.text
    sla = second.json()["sla"]
    assert sla["patch_schedule"] == {"critical": {"business_days": 2}}
    assert sla["alert_thresholds"] == {"cpu_percent": {"above": 95}}


async def test_bad_terms_refuse_a_new_customer(world: World, sign_in: Any) -> None:
    admin = await sign_in("admin")
    response = await admin.post(
        "/api/customers", json={"key": "INITECH", "name": "Initech", "sla": {"patch_at_risk_share": 0}}
    )
    assert response.status_code in (400, 422)
    assert (await admin.get("/api/customers/INITECH")).status_code == 404
