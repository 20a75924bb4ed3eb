"""The CI page shows what runs there: the deployments releases made on it (release link,
version, when, outcome) and its incidents not closed, tenant-scoped like the page itself."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from incident.tables import IncidentTable
from tests.integration.test_incidents import build_desk
from tests.integration.test_releases import Kit
from tests.support import World
from tests.web.test_pages import HTML, signed_in

Client = AsyncTestClient[Litestar]


def section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    return html[start : html.index("</section>", start)]


async def _deployed(kit: Kit, ci: Any, version: str) -> Any:
    """A release through test, approval and deployment that installed `version` on `ci`."""
    await kit.world.ci("ACME", f"lab-{version}", "test_environment")
    rfc = await kit.rfc([ci.id], requirements=["regression test"])
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": f"Ship {version}",
            "rfcs": [rfc.key],
            "test_environment": f"lab-{version}",
            "represents": [ci.name],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    await kit.act("rita", release, "approve")
    await kit.act("rita", release, "deploy")
    kit.world.clock.advance(hours=1)
    return await kit.act("rita", release, "complete", deployments=[{"ci": ci.name, "version": version}])


async def test_ci_page_lists_deployments_and_open_incidents(world: World, client: Client) -> None:
    web = await world.ci("ACME", "web-01", "server")
    quiet = await world.ci("ACME", "print-01", "server")
    kit = Kit(world)
    first = await _deployed(kit, web, "httpd 2.4.61")
    second = await _deployed(kit, web, "httpd 2.4.62")
    await kit.act("rita", second, "back-out", reason="Broke the login page")
    desk = build_desk(world)
    eve = world.actors["eve"]
    down = await desk.incidents.create(eve, {"customer": "ACME", "title": "Web is down", "cis": [web.id]})
    closed = await desk.incidents.create(eve, {"customer": "ACME", "title": "Old outage", "cis": [web.id]})
    await IncidentTable.update({IncidentTable.status: "closed"}).where(IncidentTable.id == closed.id)
    elsewhere = await desk.incidents.create(eve, {"customer": "ACME", "title": "Printer jam", "cis": [quiet.id]})

    await signed_in(client, world, "eve")
    html = (await client.get(f"/cis/{web.id}", headers=HTML)).text
    deployments = section(html, "deployments-heading")
    assert re.findall(r'<tr data-release="([^"]+)">', deployments) == [second.key, first.key]  # newest first
    assert f'<a href="/releases/{first.key}">{first.key}</a>' in deployments
    assert "httpd 2.4.61" in deployments and "httpd 2.4.62" in deployments
    assert ">Backed out</span>" in deployments and ">Deployed</span>" in deployments
    assert "<time datetime=" in deployments
    incidents = section(html, "incidents-heading")
    assert re.findall(r'<tr data-incident="([^"]+)">', incidents) == [down.key]
    assert f'href="/incidents/{down.key}"' in incidents and "Web is down" in incidents
    assert closed.key not in incidents and elsewhere.key not in incidents

    empty = (await client.get(f"/cis/{quiet.id}", headers=HTML)).text
    assert "Nothing deployed here by a release." in section(empty, "deployments-heading")
    assert elsewhere.key in section(empty, "incidents-heading")


async def test_customer_sees_own_ci_operations_and_not_another_tenants(world: World, client: Client) -> None:
    web = await world.ci("ACME", "web-01", "server")
    globex = await world.ci("GLOBEX", "globex-web", "server")
    kit = Kit(world)
    release = await _deployed(kit, web, "httpd 2.4.62")
    desk = build_desk(world)
    incident = await desk.incidents.create(
        world.actors["eve"], {"customer": "ACME", "title": "Web is down", "cis": [web.id]}
    )
    await signed_in(client, world, "acme-contact")
    html = (await client.get(f"/cis/{web.id}", headers=HTML)).text
    assert release.key in section(html, "deployments-heading")
    assert incident.key in section(html, "incidents-heading")
    other = await client.get(f"/cis/{globex.id}", headers=HTML)
    assert other.status_code == 404
