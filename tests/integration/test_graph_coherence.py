"""Two app processes on one database stay coherent: each keeps its own graph cache and
catches up from the graph log before answering."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from cmdb.graphcache import GraphCache
from cmdb.services import CMDBService
from tests.support import World
from tests.web.conftest import SETTINGS
from web.app import create_app


async def test_an_edit_through_one_service_shows_in_the_others_next_query(world: World) -> None:
    eve = world.actors["eve"]
    first = CMDBService(world.clock, GraphCache())
    second = CMDBService(world.clock, GraphCache())
    db = await world.ci("ACME", "db")
    app = await world.ci("ACME", "app", "application")
    # Both caches are warm before the edit.
    assert (await first.impact(eve, db.id)).total == 0
    assert (await second.impact(eve, db.id)).total == 0
    rel = await first.create_relationship(eve, app.id, db.id, "depends_on")
    assert [row.ci_id for row in (await second.impact(eve, db.id)).items] == [app.id]
    await second.delete_relationship(eve, rel.id)
    assert (await first.impact(eve, db.id)).total == 0
    later = await world.ci("ACME", "late", "application")
    await second.create_relationship(eve, later.id, db.id, "depends_on")
    assert [row.ci_id for row in (await first.impact(eve, db.id)).items] == [later.id]
    assert first.graph.stats.rebuilds == 1, "caught up from the log, not rebuilt"
    assert first.graph.stats.log_entries_applied >= 3


async def test_a_cache_far_behind_rebuilds_instead_of_replaying(world: World) -> None:
    eve = world.actors["eve"]
    lagging = CMDBService(world.clock, GraphCache(max_lag=3))
    hub = await world.ci("ACME", "hub")
    assert (await lagging.impact(eve, hub.id)).total == 0
    for index in range(5):
        leaf = await world.ci("ACME", f"leaf-{index}")
        await world.link(leaf.id, hub.id)
    assert (await lagging.impact(eve, hub.id)).total == 5
    assert lagging.graph.stats.rebuilds == 2


async def test_two_app_instances_agree_through_http(world: World, clock: Any) -> None:
    one = create_app(SETTINGS, clock=clock)
    two = create_app(SETTINGS, clock=clock)
    async with AsyncTestClient(app=one) as client_one, AsyncTestClient(app=two) as client_two:
        tokens = []
        for client in (client_one, client_two):
            response = await client.post(
                "/api/auth/token", json={"username": "eve", "password": world.passwords["eve"]}
            )
            tokens.append({"Authorization": f"Bearer {response.json()['token']}"})
        db = (
            await client_one.post(
                "/api/cis", headers=tokens[0], json={"name": "db", "customer": "ACME", "class": "database"}
            )
        ).json()
        app = (
            await client_one.post(
                "/api/cis", headers=tokens[0], json={"name": "app", "customer": "ACME", "class": "application"}
            )
        ).json()
        assert (await client_two.get(f"/api/cis/{db['id']}/impact", headers=tokens[1])).json()["total"] == 0
        await client_one.post(
            "/api/relationships",
            headers=tokens[0],
            json={"source": app["id"], "target": db["id"], "type": "depends_on"},
        )
        impact = (await client_two.get(f"/api/cis/{db['id']}/impact", headers=tokens[1])).json()
        assert [item["ci"]["name"] for item in impact["items"]] == ["app"]


async def test_a_graph_query_inside_a_transaction_sees_that_transactions_writes(world: World) -> None:
    from cmdb import db
    from cmdb import repository as repo

    eve = world.actors["eve"]
    fresh = CMDBService(world.clock, GraphCache())
    async with db.atomic(repo.engine()):
        a = await world.ci("ACME", "tx-a")
        b = await world.ci("ACME", "tx-b")
        await world.link(a.id, b.id)
        # A cold cache built inside the writer's transaction must include its own writes.
        assert [row.ci_id for row in (await fresh.impact(eve, b.id)).items] == [a.id]
