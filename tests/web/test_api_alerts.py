"""POST /api/alerts and friends through HTTP: status codes, answers, races."""

from __future__ import annotations

import asyncio
from typing import Any

from cmdb import db
from incident import alerts_repository as alerts_repo
from tests.support import World


async def count(table: str) -> int:
    rows = await db.fetch(alerts_repo.engine(), f'SELECT count(*) AS n FROM "{table}"')
    return int(rows[0]["n"])


async def test_breach_answers_201_with_the_incident_and_a_repeat_200_joined(world: World, sign_in: Any) -> None:
    ci = await world.ci("ACME", "web-01")
    eve = await sign_in("eve")
    body = {"ci": "web-01", "metric": "cpu_percent", "value": 97, "duration_s": 420, "message": "load"}
    first = await eve.post("/api/alerts", json=body)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["breached"] is True and answer["outcome"] == "opened"
    assert answer["incident"]["key"].startswith("INC-2026-") and isinstance(answer["incident"]["id"], int)
    assert answer["threshold"] == {
        "metric": "cpu_percent",
        "kind": "above",
        "above": 90,
        "for_s": 300,
        "priority": "normal",
        "enabled": True,
        "source": "default",
    }
    assert answer["priority"] == "normal" and answer["ci"] == ci.id and isinstance(answer["alert"], int)
    again = await eve.post("/api/alerts", json=body)
    assert again.status_code == 200
    assert again.json()["outcome"] == "joined" and again.json()["incident"] == answer["incident"]
    rows = await db.fetch(alerts_repo.engine(), "SELECT key, priority, source FROM incident")
    assert rows == [{"key": answer["incident"]["key"], "priority": "normal", "source": "alert"}]


async def test_no_breach_answers_200_ignored(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "web-01")
    eve = await sign_in("eve")
    response = await eve.post("/api/alerts", json={"ci": "web-01", "metric": "ups", "value": "ok"})
    assert response.status_code == 200
    assert response.json()["breached"] is False and response.json()["outcome"] == "ignored"
    assert response.json()["incident"] is None


async def test_unknown_ci_or_metric_is_422_and_nothing_is_opened(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "web-01")
    eve = await sign_in("eve")
    for body, field in (
        ({"ci": "ghost", "metric": "ups", "value": "critical"}, "ci"),
        ({"ci": "web-01", "metric": "temperature", "value": 99}, "metric"),
        ({"ci": "web-01", "metric": "memory_percent", "value": "lots"}, "value"),
    ):
        response = await eve.post("/api/alerts", json=body)
        assert response.status_code == 422, response.text
        assert [f["field"] for f in response.json()["fields"]] == [field]
    assert await count("alert") == 0 and await count("incident") == 0
    malformed = await eve.post("/api/alerts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    not_an_object = await eve.post("/api/alerts", json=[1, 2])
    assert not_an_object.status_code == 422 and not_an_object.json()["fields"][0]["field"] == "body"


async def test_customers_and_other_roles_may_not_post_and_anonymous_is_401(
    world: World, sign_in: Any, client: Any
) -> None:
    await world.ci("ACME", "web-01")
    body = {"ci": "web-01", "metric": "ups", "value": "critical"}
    for username in ("acme-contact", "carl"):
        response = await (await sign_in(username)).post("/api/alerts", json=body)
        assert response.status_code == 403
    assert (await client.post("/api/alerts", json=body)).status_code == 401
    assert await count("alert") == 0


async def test_100_concurrent_copies_through_http_open_exactly_one_incident(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "web-01")
    eve = await sign_in("eve")
    body = {"ci": "web-01", "metric": "virus", "value": "EICAR-Test-File"}
    responses = await asyncio.gather(*(eve.post("/api/alerts", json=body) for _ in range(100)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 99 + [201]
    outcomes = [r.json()["outcome"] for r in responses]
    assert outcomes.count("opened") == 1 and outcomes.count("joined") == 99
    assert len({r.json()["incident"]["id"] for r in responses}) == 1
    assert await count("incident") == 1 and await count("alert") == 100


async def test_batch_answers_per_item(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "web-01")
    eve = await sign_in("eve")
    response = await eve.post(
        "/api/alerts/batch",
        json=[
            {"ci": "web-01", "metric": "backup", "value": "failure"},
            {"ci": "web-01", "metric": "backup", "value": "failure"},
            {"ci": "web-01", "metric": "backup", "value": "success"},
            {"ci": "web-01", "metric": "backup", "value": "exploded"},
        ],
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert {k: answer[k] for k in ("received", "breached", "opened", "joined", "ignored", "refused")} == {
        "received": 4,
        "breached": 2,
        "opened": 1,
        "joined": 1,
        "ignored": 1,
        "refused": 1,
    }
    assert [item.get("outcome", item.get("error")) for item in answer["items"]] == [
        "opened",
        "joined",
        "ignored",
        "invalid_input",
    ]
    assert answer["items"][3]["fields"][0]["field"] == "value"
    too_many = await eve.post("/api/alerts/batch", json=[{}] * 1001)
    assert too_many.status_code == 422
    assert await count("incident") == 1


async def test_list_and_thresholds_respect_tenants(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "a1")
    await world.ci("GLOBEX", "g1")
    eve = await sign_in("eve")
    await eve.post("/api/alerts", json={"ci": "a1", "metric": "memory_percent", "value": 10})
    await eve.post("/api/alerts", json={"ci": "g1", "metric": "memory_percent", "value": 10})
    listed = await eve.get("/api/alerts")
    assert listed.status_code == 200 and listed.json()["total"] == 2
    assert {item["customer"] for item in listed.json()["items"]} == {"ACME", "GLOBEX"}
    contact = await sign_in("acme-contact")
    own = await contact.get("/api/alerts")
    assert own.json()["total"] == 1 and own.json()["items"][0]["customer"] == "ACME"
    assert (await contact.get("/api/alerts?customer=GLOBEX")).status_code == 404
    assert (await contact.get("/api/alerts/thresholds?customer=GLOBEX")).status_code == 404
    thresholds = await contact.get("/api/alerts/thresholds?customer=ACME")
    assert thresholds.status_code == 200
    assert thresholds.json()["thresholds"]["memory_percent"]["above"] == 80
    assert thresholds.json()["problems"] == []
