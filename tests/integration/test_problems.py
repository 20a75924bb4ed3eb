"""ProblemService against the database: problems, linked incidents, known errors, the RFC that
removes the cause, history, tenant isolation, and trend analysis proposing a problem once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.notifications import NotificationService
from incident.services import IncidentService
from problem.models import ProblemOrigin, ProblemStatus
from problem.services import ProblemService
from release.models import WatchPeriod
from release.services import ReleaseService
from tests.support import World

FULL_RFC = {"plan": "Apply the vendor fix.", "backout_plan": "Restore the snapshot."}


async def seed_incident(
    world: World, customer: str, ci_ids: list[int], title: str, at: dt.datetime | None = None
) -> Any:
    """An incident recorded through IncidentService by eve, at `at` (the clock goes back after)."""
    change = ChangeService(world.clock, world.service)
    notifications = NotificationService(world.clock)
    releases = ReleaseService(world.clock, world.service, change, notifications)
    incidents = IncidentService(world.clock, world.service, change, releases, notifications)
    now = world.clock.now()
    world.clock.set(at or now)
    try:
        incident = await incidents.create(
            world.actors["eve"], {"customer": customer, "title": title, "cis": ci_ids, "priority": "high"}
        )
    finally:
        world.clock.set(now)
    return incident.id, incident.key


class FakeWatch:
    """Release watch periods as trend analysis reads them, without building releases."""

    def __init__(self) -> None:
        self.periods: list[WatchPeriod] = []

    async def watch_periods(self, tenant_id: int | None, since: dt.datetime, until: dt.datetime) -> list[WatchPeriod]:
        return [
            p
            for p in self.periods
            if (tenant_id is None or p.tenant_id == tenant_id) and p.deployed_at <= until and p.watch_until >= since
        ]


def make_service(world: World) -> tuple[ProblemService, ChangeService, FakeWatch]:
    change = ChangeService(world.clock, world.service)
    notifications = NotificationService(world.clock)
    releases = ReleaseService(world.clock, world.service, change, notifications)
    incidents = IncidentService(world.clock, world.service, change, releases, notifications)
    service = ProblemService(world.clock, world.service, change, releases, incidents)
    watch = FakeWatch()
    service.watch_source = watch
    return service, change, watch


@dataclass
class Setup:
    service: ProblemService
    change: ChangeService
    watch: FakeWatch
    mail: Any
    db: Any
    web: Any
    incidents: list[tuple[int, str]]
    globex_incident: tuple[int, str]


@pytest.fixture
async def setup(world: World) -> Setup:
    service, change, watch = make_service(world)
    mail = await world.ci("ACME", "mail01", "server")
    db = await world.ci("ACME", "db01", "database")
    await world.link(mail.id, db.id)  # mail01 depends on db01
    web = await world.ci("GLOBEX", "web01", "server")
    incidents = [await seed_incident(world, "ACME", [mail.id], f"Mail queue stalls {i}") for i in range(3)]
    globex_incident = await seed_incident(world, "GLOBEX", [web.id], "Web down")
    return Setup(service, change, watch, mail, db, web, incidents, globex_incident)


async def test_create_with_incidents_takes_their_cis(world: World, setup: Setup) -> None:
    eve = world.actors["eve"]
    problem = await setup.service.create(
        eve,
        {
            "customer": "ACME",
            "title": "Mail queue stalls every night",
            "incidents": [setup.incidents[0][1], setup.incidents[1][0]],
            "cis": ["db01"],
        },
    )
    assert problem.key == "PRB-2026-0001"
    assert problem.status is ProblemStatus.OPEN and problem.origin is ProblemOrigin.MANUAL
    assert problem.incident_ids == (setup.incidents[0][0], setup.incidents[1][0])
    assert problem.ci_ids == tuple(sorted((setup.mail.id, setup.db.id)))
    again = (await setup.service.get(eve, problem.key)).problem
    assert again == problem
    history = await setup.service.history(eve, problem.id)
    assert [h.action for h in history] == ["created"]
    # The CIs carry the problem in their own history, so the next engineer finds it.
    ci_history, _ = await cmdb_repo.history_for_ci(setup.mail.id, 50, 0)
    assert any(h.action == "problem_created" for h in ci_history)


async def test_create_refuses_bad_input_naming_fields(world: World, setup: Setup) -> None:
    with pytest.raises(InvalidInput) as caught:
        await setup.service.create(
            world.actors["eve"],
            {"customer": "ACME", "incidents": [setup.globex_incident[1]], "cis": ["web01"], "colour": "red"},
        )
    assert {p.field for p in caught.value.problems} == {"title", "incidents", "cis", "colour"}
    with pytest.raises(InvalidInput) as caught:
        await setup.service.create(world.actors["eve"], {"title": "x"})
    assert caught.value.problems[0].field == "customer"


async def test_customers_do_not_raise_or_act(world: World, setup: Setup) -> None:
    with pytest.raises(Forbidden):
        await setup.service.create(world.actors["acme-contact"], {"customer": "ACME", "title": "x"})
    problem = await setup.service.create(world.actors["sam"], {"customer": "ACME", "title": "x"})
    view = await setup.service.get(world.actors["acme-contact"], problem.key)
    assert view.allowed == []
    with pytest.raises(Forbidden):
        await setup.service.act(world.actors["acme-contact"], problem.key, "investigate", {})


async def test_other_tenants_problems_are_not_found(world: World, setup: Setup) -> None:
    acme = await setup.service.create(world.actors["eve"], {"customer": "ACME", "title": "Acme's"})
    internal = await setup.service.create(world.actors["eve"], {"customer": "PROV", "title": "Internal"})
    globex_contact = world.actors["globex-contact"]
    for ref in (acme.id, acme.key, internal.key):
        with pytest.raises(NotFound):
            await setup.service.get(globex_contact, ref)
        with pytest.raises(NotFound):
            await setup.service.history(globex_contact, ref)
        with pytest.raises(NotFound):
            await setup.service.act(globex_contact, ref, "investigate", {})
    mine, total = await setup.service.list_problems(world.actors["acme-contact"])
    assert [p.key for p in mine] == [acme.key] and total == 1
    _, total = await setup.service.list_problems(world.actors["eve"])
    assert total == 2
    with pytest.raises(NotFound):
        await setup.service.list_problems(globex_contact, customer="ACME")


async def test_link_incident_same_tenant_only(world: World, setup: Setup) -> None:
    eve = world.actors["eve"]
    problem = await setup.service.create(eve, {"customer": "ACME", "title": "Mail"})
    linked = await setup.service.act(eve, problem.key, "link-incident", {"incident": setup.incidents[2][1]})
    assert linked.incident_ids == (setup.incidents[2][0],) and linked.ci_ids == (setup.mail.id,)
    with pytest.raises(InvalidInput) as caught:
        await setup.service.act(eve, problem.key, "link-incident", {"incident": setup.globex_incident[1]})
    assert caught.value.problems[0].field == "incident"
    with pytest.raises(InvalidInput):
        await setup.service.act(eve, problem.key, "link-incident", {"incident": setup.incidents[2][0]})
    with pytest.raises(InvalidInput):
        await setup.service.act(eve, problem.key, "link-incident", {})
    found, total = await setup.service.list_problems(eve, incident=setup.incidents[2][1])
    assert total == 1 and found[0].key == problem.key
    incident_history = await cmdb_repo.history_for_entity("incident", setup.incidents[2][0])
    assert [h.action for h in incident_history][-1] == "problem_linked"


async def test_known_error_raise_rfc_resolve_close(world: World, setup: Setup) -> None:
    eve, sam, carl = world.actors["eve"], world.actors["sam"], world.actors["carl"]
    problem = await setup.service.create(
        eve, {"customer": "ACME", "title": "Mail queue stalls", "incidents": [setup.incidents[0][1]]}
    )
    await setup.service.act(eve, problem.key, "investigate", {})
    with pytest.raises(InvalidInput) as caught:
        await setup.service.act(eve, problem.key, "known-error", {"root_cause": "Spool disk fills"})
    assert [p.field for p in caught.value.problems] == ["workaround"]
    known = await setup.service.act(
        eve, problem.key, "known-error", {"root_cause": "Spool disk fills", "workaround": "Purge the spool"}
    )
    assert known.status is ProblemStatus.KNOWN_ERROR and known.known_error
    with pytest.raises(StaleVersion):
        await setup.service.act(sam, problem.key, "raise-rfc", {}, expected_version=known.version - 1)
    raised = await setup.service.act(sam, problem.key, "raise-rfc", {}, expected_version=known.version)
    assert raised.rfc_key is not None and raised.rfc_state == "draft"
    rfc = (await setup.change.get(sam, raised.rfc_key)).rfc
    assert rfc.origin.value == "problem" and rfc.origin_ref == problem.key
    assert rfc.ci_ids == (setup.mail.id,) and problem.key in rfc.title
    with pytest.raises(Conflict) as conflict:
        await setup.service.act(sam, problem.key, "raise-rfc", {})
    assert conflict.value.state == "known_error"
    with pytest.raises(Conflict) as conflict:
        await setup.service.act(sam, problem.key, "resolve", {"resolution": "done"})
    assert "must be completed" in conflict.value.detail
    # Take the RFC through to completed.
    await setup.change.update(eve, rfc.id, FULL_RFC)
    await setup.change.act(eve, rfc.id, "submit", {})
    await setup.change.act(carl, rfc.id, "authorize", {"release_requirements": []})
    await setup.change.act(carl, rfc.id, "approve", {})
    slot = {"planned_start": "2026-11-10T03:00:00+00:00", "planned_end": "2026-11-10T04:00:00+00:00"}
    await setup.change.act(carl, rfc.id, "schedule", slot)
    world.clock.set(dt.datetime(2026, 11, 10, 3, 5, tzinfo=dt.UTC))
    await setup.change.act(eve, rfc.id, "implement", {})
    await setup.change.act(eve, rfc.id, "complete", {})
    resolved = await setup.service.act(sam, problem.key, "resolve", {})
    assert resolved.status is ProblemStatus.RESOLVED
    closed = await setup.service.act(sam, problem.key, "close", {"comment": "No recurrence in a week"})
    assert closed.status is ProblemStatus.CLOSED
    history = await setup.service.history(eve, problem.key)
    assert [h.action for h in history] == [
        "created",
        "investigation_started",
        "known_error_recorded",
        "rfc_raised",
        "resolved",
        "closed",
    ]
    assert history[3].rfc == rfc.key


async def test_raise_rfc_refused_creates_no_rfc(world: World, setup: Setup) -> None:
    problem = await setup.service.create(world.actors["eve"], {"customer": "ACME", "title": "x"})
    with pytest.raises(InvalidInput):
        await setup.service.act(world.actors["eve"], problem.key, "raise-rfc", {"colour": "red"})
    _, total = await setup.change.list_rfcs(world.actors["eve"])
    assert total == 0


async def test_resolve_without_rfc_needs_a_note(world: World, setup: Setup) -> None:
    eve = world.actors["eve"]
    problem = await setup.service.create(eve, {"customer": "ACME", "title": "x"})
    await setup.service.act(eve, problem.key, "investigate", {})
    with pytest.raises(InvalidInput) as caught:
        await setup.service.act(eve, problem.key, "resolve", {})
    assert caught.value.problems[0].field == "resolution"
    resolved = await setup.service.act(eve, problem.key, "resolve", {"resolution": "Config corrected; no change"})
    assert resolved.resolution == "Config corrected; no change"


def period(world: World, release_id: int, cis: tuple[int, ...], deployed: dt.datetime, days: int = 7) -> WatchPeriod:
    return WatchPeriod(
        release_id, f"REL-2026-{release_id:04d}", world.acme.id, deployed, deployed + dt.timedelta(days=days), cis
    )


async def test_trends_repeated_and_spike_proposes_a_problem_once(world: World, setup: Setup) -> None:
    now = world.clock.now()
    deployed = now - dt.timedelta(days=2)
    for hours in (3, 10, 20, 30):
        await seed_incident(world, "ACME", [setup.db.id], "DB slow", at=deployed + dt.timedelta(hours=hours))
    setup.watch.periods = [period(world, 41, (setup.db.id, setup.mail.id), deployed)]
    eve = world.actors["eve"]
    report = await setup.service.trends(eve)
    body = report.as_dict()
    by_ci = {row["name"]: row["count"] for row in body["repeated"]["by_ci"]}
    assert by_ci == {"mail01": 3, "db01": 4}
    # The class counts across customers for provider staff: globex's web01 is a server too.
    assert {row["class"]: (row["count"], row["customers"]) for row in body["repeated"]["by_class"]} == {
        "database": (4, ["ACME"]),
        "server": (4, ["ACME", "GLOBEX"]),
    }
    assert [(row["customer"], row["count"]) for row in body["repeated"]["by_customer"]] == [("ACME", 7)]
    [spike] = body["spikes"]
    # The three mail incidents were raised at "now" too: 7 incidents in 2 days of watch.
    assert spike["flagged"] and spike["incidents_in_watch"] == 7
    assert spike["rate"] == pytest.approx(3.5) and spike["baseline_rate"] == 0
    assert spike["problem"] == "PRB-2026-0001" and body["proposed_now"] == ["PRB-2026-0001"]
    proposed = (await setup.service.get(eve, "PRB-2026-0001")).problem
    assert proposed.origin is ProblemOrigin.TREND and proposed.status is ProblemStatus.OPEN
    assert proposed.source_release_id == 41 and len(proposed.incident_ids) == 7
    assert proposed.ci_ids == tuple(sorted((setup.mail.id, setup.db.id)))
    release_history = await cmdb_repo.history_for_entity("release", 41)
    assert [h.action for h in release_history] == ["incident_spike_flagged"]
    # Again, and from the scheduler's job: still exactly one proposal for that release.
    again = (await setup.service.trends(eve)).as_dict()
    assert again["proposed_now"] == [] and again["spikes"][0]["problem"] == "PRB-2026-0001"
    assert await setup.service.analyse_trends(now) == 0
    _, total = await setup.service.list_problems(eve)
    assert total == 1


async def test_no_proposal_below_the_minimum(world: World, setup: Setup) -> None:
    now = world.clock.now()
    quiet = await world.ci("ACME", "quiet01", "server")
    await seed_incident(world, "ACME", [quiet.id], "Blip", at=now - dt.timedelta(hours=5))
    setup.watch.periods = [period(world, 42, (quiet.id,), now - dt.timedelta(days=1))]
    body = (await setup.service.trends(world.actors["eve"])).as_dict()
    assert [(s["key"], s["flagged"], s["problem"]) for s in body["spikes"]] == [("REL-2026-0042", False, None)]
    assert await setup.service.analyse_trends(now) == 0


async def test_trends_of_a_customer_are_their_own(world: World, setup: Setup) -> None:
    body = (await setup.service.trends(world.actors["globex-contact"], min_count=1)).as_dict()
    assert [row["customer"] for row in body["repeated"]["by_customer"]] == ["GLOBEX"]
    assert [row["name"] for row in body["repeated"]["by_ci"]] == ["web01"]
    with pytest.raises(NotFound):
        await setup.service.trends(world.actors["globex-contact"], customer="ACME")
    with pytest.raises(InvalidInput) as caught:
        await setup.service.trends(world.actors["eve"], days=0, min_count=0)
    assert {p.field for p in caught.value.problems} == {"days", "min_count"}


async def test_job_is_offered_to_the_scheduler(world: World, setup: Setup) -> None:
    [job] = setup.service.jobs()
    assert job.name == "trend-analysis" and job.every == dt.timedelta(hours=1)
    now = world.clock.now()
    for hours in (1, 2, 3):
        await seed_incident(world, "ACME", [setup.db.id], "DB slow", at=now - dt.timedelta(hours=hours))
    setup.watch.periods = [period(world, 43, (setup.db.id,), now - dt.timedelta(hours=4))]
    assert await job.run(now) == 1
    assert await job.run(now) == 0


async def test_spike_after_a_real_release_is_proposed_once(world: World) -> None:
    """End to end: a release deployed through ReleaseService, incidents recorded through
    IncidentService on a CI that depends on the released one, trends read real watch periods."""
    from tests.integration.test_releases import Kit

    kit = Kit(world)
    incidents = IncidentService(world.clock, world.service, kit.change, kit.releases, NotificationService(world.clock))
    service = ProblemService(world.clock, world.service, kit.change, kit.releases, incidents)
    web = await world.ci("ACME", "web-01", "server")
    shop = await world.ci("ACME", "shop", "application")
    await world.link(shop.id, web.id)  # the shop depends on the web server
    await world.ci("ACME", "test-lab", "test_environment")
    rfc = await kit.rfc([web.id], requirements=["regression test"])
    rita = world.actors["rita"]
    release = await kit.releases.create(
        rita,
        {
            "customer": "ACME",
            "title": "Nov",
            "rfcs": [rfc.key],
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    await kit.act("rita", release, "approve")
    await kit.act("rita", release, "deploy")
    deployed = await kit.act("rita", release, "complete")
    start = world.clock.now()
    for hours in (2, 5, 9, 20):
        await seed_incident(world, "ACME", [shop.id], "Checkout errors", at=start + dt.timedelta(hours=hours))
    world.clock.set(start + dt.timedelta(days=1))
    body = (await service.trends(world.actors["sam"], customer="ACME")).as_dict()
    [spike] = body["spikes"]
    assert spike["key"] == deployed.key and spike["incidents_in_watch"] == 4 and spike["flagged"]
    assert spike["problem"] == "PRB-2026-0001"
    assert await service.analyse_trends(world.clock.now()) == 0
    problem = (await service.get(world.actors["sam"], "PRB-2026-0001")).problem
    assert problem.source_release_id == deployed.id and problem.ci_ids == (shop.id,)
    assert len(problem.incident_ids) == 4


async def test_two_simultaneous_actions_one_wins(world: World, setup: Setup) -> None:
    import asyncio

    problem = await setup.service.create(world.actors["eve"], {"customer": "ACME", "title": "Race"})
    results = await asyncio.gather(
        setup.service.act(world.actors["eve"], problem.key, "investigate", {}),
        setup.service.act(world.actors["sam"], problem.key, "investigate", {}),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, Conflict)) == 1
    history = await setup.service.history(world.actors["eve"], problem.key)
    assert [h.action for h in history] == ["created", "investigation_started"]


async def test_concurrent_analyses_propose_once(world: World, setup: Setup) -> None:
    import asyncio

    now = world.clock.now()
    for hours in (1, 2, 3):
        await seed_incident(world, "ACME", [setup.db.id], "DB slow", at=now - dt.timedelta(hours=hours))
    setup.watch.periods = [period(world, 44, (setup.db.id,), now - dt.timedelta(hours=4))]
    other, _, _ = make_service(world)
    other.watch_source = setup.watch
    created = await asyncio.gather(setup.service.analyse_trends(now), other.analyse_trends(now))
    assert sorted(created) == [0, 1]
    found, total = await setup.service.list_problems(world.actors["eve"])
    assert total == 1 and found[0].source_release_id == 44
