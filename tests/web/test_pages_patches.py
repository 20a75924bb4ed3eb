"""The patch urgency board page: sorted by due time, rows coloured and labelled by state,
filters, tenancy, navigation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from change.services import ChangeService
from tests.support import FakeClock, World
from tests.web.test_pages import HTML, signed_in


async def _seed(world: World, clock: FakeClock) -> dict[str, Any]:
    change = ChangeService(clock, world.service)
    acme_ci = await world.ci("ACME", "acme-web")
    globex_ci = await world.ci("GLOBEX", "globex-db", "database")
    eve = world.actors["eve"]

    async def patch(customer: str, ci: Any, level: str, available_at: str, title: str) -> Any:
        return await change.create(
            eve,
            {"customer": customer, "title": title, "cis": [ci.id], "urgency": level, "available_at": available_at},
        )

    return {
        "overdue": await patch("ACME", acme_ci, "critical", "2026-11-02T14:00:00+00:00", "Close the <script> hole"),
        "at_risk": await patch("GLOBEX", globex_ci, "important", "2026-11-02T09:00:00+00:00", "Globex database fix"),
        "on_track": await patch("ACME", acme_ci, "moderate", "2026-11-02T14:00:00+00:00", "Quarterly bundle"),
    }


def rows_of(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr class="patch-row patch-(\w+)" data-rfc="([^"]+)"', html)


async def test_board_sorted_by_due_with_state_classes_and_labels(world: World, client: Any, clock: FakeClock) -> None:
    patches = await _seed(world, clock)
    clock.set(dt.datetime(2026, 11, 12, 15, tzinfo=dt.UTC))  # critical overdue; important 80 % used
    await signed_in(client, world, "sam")
    response = await client.get("/patches", headers=HTML)
    assert response.status_code == 200, response.text
    html = response.text
    assert rows_of(html) == [
        ("overdue", patches["overdue"].key),
        ("at_risk", patches["at_risk"].key),
        ("on_track", patches["on_track"].key),
    ]
    # Never colour alone: every state is written out too.
    for label in ("Overdue", "At risk", "On track"):
        assert f">{label}</span>" in html
    assert f'href="/changes/{patches["overdue"].key}"' in html
    assert "Close the &lt;script&gt; hole" in html and "<script> hole" not in html
    assert 'href="/patches"' in html  # in the navigation
    assert "EST" in html and "GMT" in html  # due times in each customer's own zone

    only_overdue = (await client.get("/patches?state=overdue", headers=HTML)).text
    assert rows_of(only_overdue) == [("overdue", patches["overdue"].key)]
    globex = (await client.get("/patches?customer=GLOBEX", headers=HTML)).text
    assert rows_of(globex) == [("at_risk", patches["at_risk"].key)]
    bad = await client.get("/patches?state=late", headers=HTML)
    assert bad.status_code == 422


async def test_a_customer_sees_only_their_own_patches(world: World, client: Any, clock: FakeClock) -> None:
    patches = await _seed(world, clock)
    await signed_in(client, world, "acme-contact")
    html = (await client.get("/patches?customer=GLOBEX", headers=HTML)).text
    assert [key for _, key in rows_of(html)] == [patches["overdue"].key, patches["on_track"].key]
    assert 'id="customer"' not in html  # no customer filter for a customer contact


async def test_met_patches_show_with_the_met_filter(world: World, client: Any, clock: FakeClock) -> None:
    from release.tables import ReleaseRFCTable, ReleaseTable

    patches = await _seed(world, clock)
    rfc = patches["overdue"]
    approved = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)
    rows = await ReleaseTable.insert(
        ReleaseTable(
            key="REL-2026-0001",
            tenant=rfc.tenant_id,
            title="Patch release",
            state="approved",
            approved_at=approved,
            created_at=approved,
            updated_at=approved,
        )
    ).returning(ReleaseTable.id)
    await ReleaseRFCTable.insert(ReleaseRFCTable(release=rows[0]["id"], rfc=rfc.id, added_at=approved))
    await signed_in(client, world, "sam")
    open_ones = (await client.get("/patches", headers=HTML)).text
    assert rfc.key not in [key for _, key in rows_of(open_ones)]
    met = (await client.get("/patches?state=met", headers=HTML)).text
    assert rows_of(met) == [("met", rfc.key)]
    assert ">Met</span>" in met
    everything = (await client.get("/patches?state=all", headers=HTML)).text
    assert len(rows_of(everything)) == 3


async def test_board_needs_sign_in(world: World, client: Any) -> None:
    response = await client.get("/patches", headers=HTML, follow_redirects=False)
    assert response.status_code in (302, 303, 401)
