"""One active release per RFC is a database guarantee: two simultaneous add-rfc of one RFC to
two releases leave exactly one holding it, even when both pass the service's own check."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cmdb import db
from cmdb.errors import Conflict
from release import repository as release_repo
from release.models import ReleaseState
from tests.integration.test_releases import Kit
from tests.support import World


@pytest.fixture
async def kit(world: World) -> Kit:
    await world.ci("ACME", "web-01", "server")
    return Kit(world)


async def _two_releases_and_an_rfc(kit: Kit) -> tuple[Any, Any, Any]:
    web = await kit.world.service.get_ci(kit.actor("admin"), "web-01")
    rfc = await kit.rfc([web.id])
    rita = kit.actor("rita")
    first = await kit.releases.create(rita, {"customer": "ACME", "title": "First"})
    second = await kit.releases.create(rita, {"customer": "ACME", "title": "Second"})
    return rfc, first, second


async def _race(kit: Kit, rfc: Any, first: Any, second: Any) -> list[Any]:
    return await asyncio.gather(
        kit.act("rita", first, "add-rfc", rfc=rfc.key),
        kit.act("rita", second, "add-rfc", rfc=rfc.key),
        return_exceptions=True,
    )


async def _active_holders(rfc_id: int) -> list[int]:
    rows = await db.fetch(
        release_repo.engine(), 'SELECT "release" FROM release_rfc WHERE rfc = ? AND active ORDER BY id', rfc_id
    )
    return [int(row["release"]) for row in rows]


async def test_simultaneous_add_rfc_to_two_releases_lets_exactly_one_win(kit: Kit) -> None:
    rfc, first, second = await _two_releases_and_an_rfc(kit)
    results = await _race(kit, rfc, first, second)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], Conflict), results
    assert rfc.key in str(losers[0])
    assert await _active_holders(rfc.id) == [winners[0].id]


async def test_the_index_refuses_when_both_pass_the_service_check(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the database guarantee both would commit: the service's check is blinded here,
    as it is in effect when two PostgreSQL transactions check before either commits."""
    rfc, first, second = await _two_releases_and_an_rfc(kit)

    async def nobody_holds(rfc_ids: Any, *, excluding: int | None = None) -> dict[int, str]:
        return {}

    monkeypatch.setattr(release_repo, "active_releases_holding", nobody_holds)
    results = await _race(kit, rfc, first, second)
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 1, results
    assert "one active release only" in str(conflicts[0])
    assert conflicts[0].state == "planned"
    assert len(await _active_holders(rfc.id)) == 1
    # The loser left nothing behind: its release has no RFC and its version did not move.
    loser = first if (await _active_holders(rfc.id)) == [second.id] else second
    view = await kit.releases.get(kit.actor("rita"), loser.key)
    assert view.release.rfc_ids == () and view.release.version == loser.version


async def test_create_with_an_rfc_held_elsewhere_is_refused_by_the_index(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    rfc, first, _second = await _two_releases_and_an_rfc(kit)
    await kit.act("rita", first, "add-rfc", rfc=rfc.key)

    async def nobody_holds(rfc_ids: Any, *, excluding: int | None = None) -> dict[int, str]:
        return {}

    monkeypatch.setattr(release_repo, "active_releases_holding", nobody_holds)
    with pytest.raises(Conflict, match="one active release only"):
        await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Third", "rfcs": [rfc.key]})


async def test_a_cancelled_release_lets_go_so_the_rfc_can_join_another(kit: Kit) -> None:
    rfc, first, second = await _two_releases_and_an_rfc(kit)
    first = await kit.act("rita", first, "add-rfc", rfc=rfc.key)
    cancelled = await kit.act("rita", first, "cancel", reason="Superseded")
    assert cancelled.state is ReleaseState.CANCELLED
    assert await _active_holders(rfc.id) == []
    joined = await kit.act("rita", second, "add-rfc", rfc=rfc.key)
    assert joined.rfc_ids == (rfc.id,)
    assert await _active_holders(rfc.id) == [second.id]
    # The cancelled release still lists the RFC: history kept.
    view = await kit.releases.get(kit.actor("rita"), first.key)
    assert view.release.rfc_ids == (rfc.id,)
