from tests.support import World


async def test_world_builds(world: World) -> None:
    web = await world.ci("ACME", "web-01")
    app = await world.ci("ACME", "shop", "application")
    await world.link(app.id, web.id, "runs_on")
    result = await world.service.impact(world.actors["eve"], web.id)
    assert [row.ci_id for row in result.items] == [app.id]
