"""The RFC page of a patch shows its urgency: level, clock start, due time in the customer's
zone, the state labelled and coloured like the patch board, and the share of time used."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from change.services import ChangeService
from cmdb.notifications import NotificationService
from release.patches import PatchService
from tests.integration.test_releases import FULL
from tests.support import FakeClock, World
from tests.web.test_pages import HTML, signed_in

ROW = re.compile(r'<tr class="patch-row patch-(\w+)" data-state="(\w+)">')


async def _seed(world: World, clock: FakeClock) -> dict[str, Any]:
    change = ChangeService(clock, world.service)
    acme_ci = await world.ci("ACME", "acme-web")
    globex_ci = await world.ci("GLOBEX", "globex-db", "database")
    eve = world.actors["eve"]

    async def rfc(customer: str, ci: Any, title: str, **extra: Any) -> Any:
        return await change.create(eve, {"customer": customer, "title": title, "cis": [ci.id], **extra})

    return {
        "overdue": await rfc(
            "ACME", acme_ci, "Close the hole", urgency="critical", available_at="2026-11-02T14:00:00+00:00"
        ),
        "at_risk": await rfc(
            "GLOBEX", globex_ci, "Globex fix", urgency="important", available_at="2026-11-02T09:00:00+00:00"
        ),
        "plain": await rfc("ACME", acme_ci, "Not a patch"),
    }


async def _due(world: World, clock: FakeClock, rfc_id: int) -> dt.datetime:
    service = PatchService(clock, world.service, NotificationService(clock))
    return (await service.urgency_for_rfcs([rfc_id]))[rfc_id].due


async def test_patch_rfc_page_shows_level_clock_due_state_and_share(
    world: World, client: Any, clock: FakeClock
) -> None:
    rfcs = await _seed(world, clock)
    clock.set(dt.datetime(2026, 11, 12, 15, tzinfo=dt.UTC))
    await signed_in(client, world, "sam")

    response = await client.get(f"/changes/{rfcs['overdue'].key}", headers=HTML)
    assert response.status_code == 200, response.text
    html = response.text
    assert ROW.findall(html) == [("overdue", "overdue")]
    assert ">Overdue</span>" in html and ">Critical</span>" in html
    assert "2026-11-02 09:00 America/New_York" in html  # the clock start, in New York time
    due = await _due(world, clock, rfcs["overdue"].id)
    due_local = due.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M")
    assert f'<time datetime="{due.isoformat()}">{due_local} America/New_York' in html
    assert re.search(r"<td>\d{3,}%</td>", html)  # overdue: more than the whole allowed time used

    globex = (await client.get(f"/changes/{rfcs['at_risk'].key}", headers=HTML)).text
    assert ROW.findall(globex) == [("at_risk", "at_risk")]
    assert ">At risk</span>" in globex
    assert "2026-11-02 09:00 Europe/London" in globex
    assert re.search(r"<td>(\d+)%</td>", globex)


async def test_rfc_without_urgency_shows_no_patch_deadline(world: World, client: Any, clock: FakeClock) -> None:
    rfcs = await _seed(world, clock)
    await signed_in(client, world, "sam")
    html = (await client.get(f"/changes/{rfcs['plain'].key}", headers=HTML)).text
    assert "Patch deadline" not in html and not ROW.findall(html)


async def test_customer_sees_own_patch_urgency_and_not_another_tenants(
    world: World, client: Any, clock: FakeClock
) -> None:
    rfcs = await _seed(world, clock)
    clock.set(dt.datetime(2026, 11, 12, 15, tzinfo=dt.UTC))
    await signed_in(client, world, "acme-contact")
    own = await client.get(f"/changes/{rfcs['overdue'].key}", headers=HTML)
    assert own.status_code == 200 and ROW.findall(own.text) == [("overdue", "overdue")]
    other = await client.get(f"/changes/{rfcs['at_risk'].key}", headers=HTML)
    assert other.status_code == 404


async def test_queue_row_shows_the_patch_state_and_due(world: World, client: Any, clock: FakeClock) -> None:
    rfcs = await _seed(world, clock)
    change = ChangeService(clock, world.service)
    eve = world.actors["eve"]
    for rfc in (rfcs["overdue"], rfcs["plain"]):
        await change.update(eve, rfc.id, FULL)
        await change.act(eve, rfc.id, "submit", {})
    clock.set(dt.datetime(2026, 11, 12, 15, tzinfo=dt.UTC))
    await signed_in(client, world, "carl")
    html = (await client.get("/changes", headers=HTML)).text
    assert "<h1>Change queue</h1>" in html
    patch_row = html.split(f'data-rfc="{rfcs["overdue"].key}"')[1].split("</tr>")[0]
    assert 'class="patch-due patch-overdue"' in patch_row and ">Overdue</span>" in patch_row
    assert re.search(r"due \d+ days ago", patch_row)
    plain_row = html.split(f'data-rfc="{rfcs["plain"].key}"')[1].split("</tr>")[0]
    assert "patch-due" not in plain_row
