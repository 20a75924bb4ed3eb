from typing import Any

from tests.support import World


async def test_engineer_creates_ci_and_reads_impact(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/cis", json={"name": "db-01", "customer": "ACME", "class": "database"})
    assert response.status_code == 201, response.text
    db_id = response.json()["id"]
    response = await eve.post("/api/cis", json={"name": "shop", "customer": "ACME", "class": "application"})
    shop_id = response.json()["id"]
    response = await eve.post("/api/relationships", json={"source": shop_id, "target": "db-01", "type": "depends_on"})
    assert response.status_code == 201, response.text
    response = await eve.get(f"/api/cis/{db_id}/impact?direction=down")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["ci"]["id"] == shop_id
