"""Release management against the database: RFCs joining, test evidence, approval, deployment
per CI, back-out, RFC coupling, history, tenancy, races and the watch period."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.notifications import NotificationService
from release import repository as release_repo
from release.models import MissingEvidence, ReleaseState
from release.services import ReleaseService
from tests.support import World

FULL = {
    "need": "A vendor fixed a hole in the web server.",
    "desired_result": "The patched version runs everywhere.",
    "plan": "Install the update, restart, verify.",
    "backout_plan": "Reinstall the previous package from the local mirror.",
}


class Kit:
    def __init__(self, world: World) -> None:
        self.world = world
        self.change = ChangeService(world.clock, world.service)
        self.releases = ReleaseService(world.clock, world.service, self.change, NotificationService(world.clock))

    def actor(self, name: str) -> Any:
        return self.world.actors[name]

    async def rfc(
        self,
        ci_ids: list[int],
        *,
        customer: str = "ACME",
        requirements: list[str] | None = None,
        urgency: str | None = None,
        state: str = "approved",
        title: str = "Patch the web server",
    ) -> Any:
        eve, carl = self.actor("eve"), self.actor("carl")
        data: dict[str, Any] = {"customer": customer, "title": title, "cis": ci_ids, **FULL}
        if urgency:
            data.update(urgency=urgency, patch_description="httpd 2.4.62")
        rfc = await self.change.create(eve, data)
        if state == "draft":
            return rfc
        rfc = await self.change.act(eve, rfc.id, "submit", {})
        if state == "submitted":
            return rfc
        rfc = await self.change.act(carl, rfc.id, "authorize", {"release_requirements": requirements or []})
        rfc = await self.change.act(carl, rfc.id, "approve", {})
        if state == "scheduled":
            now = self.world.clock.now()
            rfc = await self.change.act(
                carl,
                rfc.id,
                "schedule",
                {
                    "planned_start": (now + dt.timedelta(hours=1)).isoformat(),
                    "planned_end": (now + dt.timedelta(hours=3)).isoformat(),
                },
            )
        return rfc

    async def act(self, who: str, release: Any, action: str, **data: Any) -> Any:
        return await self.releases.act(self.actor(who), release.key, action, data)


@pytest.fixture
async def kit(world: World) -> Kit:
    return Kit(world)


@pytest.fixture
async def estate(world: World) -> dict[str, Any]:
    web = await world.ci("ACME", "web-01", "server")
    app = await world.ci("ACME", "shop", "application")
    await world.link(app.id, web.id)  # the shop depends on the web server
    env = await world.ci("ACME", "test-lab", "test_environment")
    other = await world.ci("ACME", "print-01", "server")
    globex = await world.ci("GLOBEX", "globex-web", "server")
    globex_env = await world.ci("GLOBEX", "globex-lab", "test_environment")
    return {"web": web, "app": app, "env": env, "other": other, "globex": globex, "globex_env": globex_env}


async def _ready_to_approve(kit: Kit, estate: dict[str, Any], requirements: list[str] | None = None) -> Any:
    rfc = await kit.rfc([estate["web"].id], requirements=requirements or ["regression test"])
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": "November patches",
            "rfcs": [rfc.key],
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    return release


async def test_create_gives_a_key_and_holds_approved_rfcs(kit: Kit, estate: dict[str, Any]) -> None:
    rfc = await kit.rfc([estate["web"].id])
    release = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Nov", "rfcs": [rfc.id]})
    assert release.key == "REL-2026-0001"
    assert release.state is ReleaseState.PLANNED
    assert release.rfc_ids == (rfc.id,)
    second = await kit.releases.create(kit.actor("admin"), {"customer": "ACME", "title": "Dec"})
    assert second.key == "REL-2026-0002"
    view = await kit.releases.get(kit.actor("rita"), "REL-2026-0001")
    assert [r.key for r in view.rfcs] == [rfc.key]
    assert view.release.watch_days == 7


async def test_only_release_managers_create_and_bad_input_names_the_field(kit: Kit, estate: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        await kit.releases.create(kit.actor("eve"), {"customer": "ACME", "title": "x"})
    with pytest.raises(Forbidden):
        await kit.releases.create(kit.actor("acme-contact"), {"customer": "ACME", "title": "x"})
    cases = [
        ({"title": "x"}, "customer"),
        ({"customer": "ACME", "title": ""}, "title"),
        ({"customer": "NOPE", "title": "x"}, "customer"),
        ({"customer": "ACME", "title": "x", "rfcs": "RFC-1"}, "rfcs"),
        ({"customer": "ACME", "title": "x", "colour": "red"}, "colour"),
        (
            {"customer": "ACME", "title": "x", "test_environment": "web-01", "represents": ["web-01"]},
            "test_environment",
        ),
        ({"customer": "ACME", "title": "x", "test_environment": "test-lab", "represents": []}, "represents"),
        (
            {"customer": "ACME", "title": "x", "test_environment": "globex-lab", "represents": ["web-01"]},
            "test_environment",
        ),
        (
            {"customer": "ACME", "title": "x", "test_environment": "test-lab", "represents": ["globex-web"]},
            "represents",
        ),
        ({"customer": "ACME", "title": "x", "rfcs": ["RFC-2026-0999"]}, "rfcs"),
    ]
    for body, field in cases:
        with pytest.raises(InvalidInput) as caught:
            await kit.releases.create(kit.actor("rita"), body)
        assert field in {p.field for p in caught.value.problems}, (body, caught.value.detail)
    assert (await kit.releases.list_releases(kit.actor("rita")))[1] == 0


async def test_add_rfc_refuses_what_is_not_approved_other_customers_and_rfcs_in_another_release(
    kit: Kit, estate: dict[str, Any]
) -> None:
    release = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Nov"})
    submitted = await kit.rfc([estate["web"].id], state="submitted")
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "add-rfc", rfc=submitted.key)
    assert f"{submitted.key} is submitted; only approved or scheduled RFCs can join a release" in caught.value.detail
    globex = await kit.rfc([estate["globex"].id], customer="GLOBEX")
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "add-rfc", rfc=globex.key)
    assert "belongs to GLOBEX" in caught.value.detail
    approved = await kit.rfc([estate["web"].id])
    await kit.act("rita", release, "add-rfc", rfc=approved.key)
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "add-rfc", rfc=approved.id)
    assert "already in" in caught.value.detail
    other = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Dec"})
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", other, "add-rfc", rfc=approved.key)
    assert f"already in release {release.key}" in caught.value.detail
    scheduled = await kit.rfc([estate["other"].id], state="scheduled")
    updated = await kit.act("rita", other, "add-rfc", rfc=scheduled.key)
    assert updated.rfc_ids == (scheduled.id,)
    # Removing frees the RFC for another release.
    await kit.act("rita", release, "remove-rfc", rfc=approved.key)
    joined = await kit.act("rita", other, "add-rfc", rfc=approved.key)
    assert set(joined.rfc_ids) == {scheduled.id, approved.id}
    with pytest.raises(InvalidInput):
        await kit.act("rita", release, "add-rfc")


async def test_approval_lists_every_missing_piece_of_evidence(kit: Kit, estate: dict[str, Any]) -> None:
    rfc = await kit.rfc([estate["web"].id], requirements=["regression test", "load test"])
    release = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Nov", "rfcs": [rfc.key]})
    await kit.act("rita", release, "start-testing")
    with pytest.raises(MissingEvidence) as caught:
        await kit.act("rita", release, "approve")
    missing = caught.value.missing
    assert any("test environment" in m for m in missing)
    assert "at least one passed test" in missing
    assert any("'regression test'" in m for m in missing) and any("'load test'" in m for m in missing)
    assert caught.value.state == "testing"
    await kit.act(
        "eve", release, "set-test-environment", test_environment=estate["env"].id, represents=[estate["web"].id]
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["Regression  TEST"])
    with pytest.raises(MissingEvidence) as caught:
        await kit.act("rita", release, "approve")
    assert len(caught.value.missing) == 1 and "'load test'" in caught.value.missing[0]
    view = await kit.releases.get(kit.actor("rita"), release.key)
    satisfied = {r.text: (r.satisfied, r.test_name) for r in view.evidence.requirements}
    assert satisfied == {"regression test": (True, "regression"), "load test": (False, None)}
    await kit.act("eve", release, "record-test", name="load", result="passed", covers=["load test"])
    approved = await kit.act("rita", release, "approve")
    assert approved.state is ReleaseState.APPROVED
    assert approved.approved_at == kit.world.clock.now()
    assert await release_repo.patch_met_times([rfc.id, 999]) == {rfc.id: kit.world.clock.now()}


async def test_a_failed_test_fails_the_release_and_a_new_round_starts_over(kit: Kit, estate: dict[str, Any]) -> None:
    release = await _ready_to_approve(kit, estate)
    failed = await kit.act("eve", release, "record-test", name="smoke", result="failed")
    assert failed.state is ReleaseState.FAILED
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "approve")
    assert caught.value.state == "failed" and "start-testing" in caught.value.allowed
    again = await kit.act("rita", release, "start-testing")
    assert again.state is ReleaseState.TESTING and again.test_round == 2
    with pytest.raises(MissingEvidence) as caught:
        await kit.act("rita", release, "conclude-testing")
    assert caught.value.missing == ("at least one test",)
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    passed = await kit.act("rita", release, "conclude-testing")
    assert passed.state is ReleaseState.PASSED
    assert (await kit.act("rita", release, "approve")).state is ReleaseState.APPROVED
    tests = (await kit.releases.get(kit.actor("rita"), release.key)).tests
    assert [(t.round, t.result.value) for t in tests] == [(1, "passed"), (1, "failed"), (2, "passed")]


async def test_negative_effects_need_a_review_and_acceptance_needs_a_critical_patch(
    kit: Kit, estate: dict[str, Any]
) -> None:
    release = await _ready_to_approve(kit, estate)
    await kit.act("eve", release, "record-test", name="perf", result="passed", negative_effects="Login 20% slower")
    with pytest.raises(MissingEvidence) as caught:
        await kit.act("rita", release, "approve")
    assert any("negative effects found by test 'perf'" in m for m in caught.value.missing)
    test_id = next(t for t in (await kit.releases.get(kit.actor("rita"), release.key)).tests if t.name == "perf").id
    with pytest.raises(Conflict) as caught_conflict:
        await kit.act("rita", release, "review-effect", test=test_id, review="accepted", justification="needed")
    assert "only for a critical patch" in caught_conflict.value.detail
    with pytest.raises(Forbidden):
        await kit.act("eve", release, "review-effect", test=test_id, review="resolved")
    await kit.act("rita", release, "review-effect", test=test_id, review="resolved", comment="cache warmed")
    assert (await kit.act("rita", release, "approve")).state is ReleaseState.APPROVED


async def test_a_critical_patch_may_accept_an_effect_only_with_a_justification(
    kit: Kit, estate: dict[str, Any]
) -> None:
    rfc = await kit.rfc([estate["web"].id], urgency="critical")
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": "Hotfix",
            "rfcs": [rfc.key],
            "test_environment": "test-lab",
            "represents": [estate["web"].id],
        },
    )
    await kit.act("eve", release, "record-test", name="smoke", result="passed", negative_effects="Reports slower")
    test_id = (await kit.releases.get(kit.actor("rita"), release.key)).tests[0].id
    with pytest.raises(InvalidInput) as caught:
        await kit.act("rita", release, "review-effect", test=test_id, review="accepted", justification="  ")
    assert caught.value.problems[0].field == "justification"
    await kit.act("rita", release, "review-effect", test=test_id, review="accepted", justification="Worm in the wild")
    view = await kit.releases.get(kit.actor("rita"), release.key)
    assert view.tests[0].review is not None and view.tests[0].review_justification == "Worm in the wild"
    assert view.has_critical_patch
    assert (await kit.act("rita", release, "approve")).state is ReleaseState.APPROVED


async def test_deploying_needs_approval_and_completion_records_what_is_installed_where(
    kit: Kit, estate: dict[str, Any]
) -> None:
    release = await _ready_to_approve(kit, estate)
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "deploy")
    assert caught.value.state == "testing" and "only an approved release can be deployed" in caught.value.detail
    await kit.act("rita", release, "approve")
    with pytest.raises(Forbidden):
        await kit.act("eve", release, "deploy")
    deploying = await kit.act("rita", release, "deploy")
    assert deploying.state is ReleaseState.DEPLOYING and deploying.deploy_started_at is not None
    kit.world.clock.advance(hours=1)
    with pytest.raises(InvalidInput) as caught_input:
        await kit.act("rita", release, "complete", deployments=[{"ci": "globex-web", "version": "1"}])
    assert caught_input.value.problems[0].field == "deployments[0].ci"
    done = await kit.act(
        "rita",
        release,
        "complete",
        deployments=[{"ci": "web-01", "version": "httpd 2.4.62", "rfc": release.rfc_ids[0]}],
    )
    now = kit.world.clock.now()
    assert done.state is ReleaseState.DEPLOYED
    assert done.deployed_at == now and done.watch_until == now + dt.timedelta(days=7)
    _, rows, keys, total = await kit.releases.deployments_on_ci(kit.actor("eve"), "web-01")
    assert total == 1 and rows[0].version == "httpd 2.4.62" and keys[rows[0].release_id] == release.key
    history, _ = await cmdb_repo.history_for_ci(estate["web"].id, 50, 0)
    deployed = [h for h in history if h.action == "deployed"]
    assert deployed and deployed[0].after == {"version": "httpd 2.4.62", "release": release.key}
    assert deployed[0].rfc is not None and deployed[0].rfc.startswith("RFC-2026-")
    assert not deployed[0].unauthorized
    with pytest.raises(NotFound):
        await kit.releases.deployments_on_ci(kit.actor("globex-contact"), estate["web"].id)


async def test_the_watch_period_follows_the_customer_sla(kit: Kit, estate: dict[str, Any], world: World) -> None:
    await world.service.update_customer(
        world.actors["admin"], "ACME", {"sla": {"release_watch_days": 3}}, world.acme.version
    )
    release = await _ready_to_approve(kit, estate)
    await kit.act("rita", release, "approve")
    await kit.act("rita", release, "deploy")
    done = await kit.act("rita", release, "complete")
    assert done.watch_days == 3 and done.watch_until == kit.world.clock.now() + dt.timedelta(days=3)
    # The default deployment: every CI of every RFC, with the RFC's title (no patch description).
    _, rows, _, _ = await kit.releases.deployments_on_ci(kit.actor("rita"), estate["web"].id)
    assert [r.version for r in rows] == ["Patch the web server"]


async def test_rfcs_move_with_the_release(kit: Kit, estate: dict[str, Any]) -> None:
    scheduled = await kit.rfc([estate["web"].id], state="scheduled", requirements=["regression test"])
    approved = await kit.rfc([estate["other"].id])
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": "Nov",
            "rfcs": [scheduled.key, approved.key],
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    await kit.act("rita", release, "approve")
    # The scheduled RFC may not start before its planned start: the deployment waits too.
    with pytest.raises(Conflict) as caught:
        await kit.act("rita", release, "deploy")
    assert "planned start" in caught.value.detail
    assert (await kit.releases.get(kit.actor("rita"), release.key)).release.state is ReleaseState.APPROVED
    kit.world.clock.advance(hours=2)
    await kit.act("admin", release, "deploy")
    assert (await kit.change.get(kit.actor("rita"), scheduled.key)).rfc.state.value == "implementing"
    assert (await kit.change.get(kit.actor("rita"), approved.key)).rfc.state.value == "approved"
    await kit.act("rita", release, "complete")
    assert (await kit.change.get(kit.actor("rita"), scheduled.key)).rfc.state.value == "completed"


async def test_back_out_records_the_reason_and_backout_plans(kit: Kit, estate: dict[str, Any]) -> None:
    scheduled = await kit.rfc([estate["web"].id], state="scheduled", requirements=["regression test"])
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": "Nov",
            "rfcs": [scheduled.key],
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    await kit.act("rita", release, "approve")
    kit.world.clock.advance(hours=2)
    await kit.act("rita", release, "deploy")
    with pytest.raises(InvalidInput) as caught:
        await kit.act("rita", release, "back-out")
    assert caught.value.problems[0].field == "reason"
    await kit.act("rita", release, "complete")
    backed = await kit.act("rita", release, "back-out", reason="Checkout errors after the update")
    assert backed.state is ReleaseState.BACKED_OUT and backed.backout_reason == "Checkout errors after the update"
    assert (await kit.change.get(kit.actor("rita"), scheduled.key)).rfc.state.value == "completed"
    history = await kit.releases.history(kit.actor("rita"), release.key)
    assert [h.action for h in history] == [
        "created",
        "test_recorded",
        "approved",
        "deployment_started",
        "deployed",
        "backed_out",
    ]
    assert history[-1].after is not None
    assert history[-1].after["backout_plans"] == {scheduled.key: FULL["backout_plan"]}
    _, rows, _, _ = await kit.releases.deployments_on_ci(kit.actor("rita"), estate["web"].id)
    assert rows[0].outcome.value == "backed_out"
    ci_history, _ = await cmdb_repo.history_for_ci(estate["web"].id, 50, 0)
    assert "backed_out" in [h.action for h in ci_history]
    # A backed-out release frees nothing and accepts nothing more.
    with pytest.raises(Conflict) as refused:
        await kit.act("rita", release, "deploy")
    assert refused.value.allowed == ()


async def test_a_failed_deployment_backs_out_implementing_rfcs(kit: Kit, estate: dict[str, Any]) -> None:
    scheduled = await kit.rfc([estate["web"].id], state="scheduled", requirements=["regression test"])
    release = await kit.releases.create(
        kit.actor("rita"),
        {
            "customer": "ACME",
            "title": "Nov",
            "rfcs": [scheduled.key],
            "test_environment": "test-lab",
            "represents": ["web-01"],
        },
    )
    await kit.act("eve", release, "record-test", name="regression", result="passed", covers=["regression test"])
    await kit.act("rita", release, "approve")
    kit.world.clock.advance(hours=2)
    await kit.act("rita", release, "deploy")
    await kit.act("rita", release, "back-out", reason="Install script failed")
    assert (await kit.change.get(kit.actor("rita"), scheduled.key)).rfc.state.value == "backed_out"


async def test_customers_read_their_own_releases_only(kit: Kit, estate: dict[str, Any], world: World) -> None:
    release = await _ready_to_approve(kit, estate)
    internal = await kit.releases.create(kit.actor("rita"), {"customer": "PROV", "title": "Internal"})
    view = await kit.releases.get(kit.actor("acme-contact"), release.key)
    assert view.allowed == ()
    for who, ref in [("globex-contact", release.key), ("globex-contact", release.id), ("acme-contact", internal.key)]:
        with pytest.raises(NotFound):
            await kit.releases.get(kit.actor(who), ref)
        with pytest.raises(NotFound):
            await kit.releases.act(kit.actor(who), ref, "approve", {})
        with pytest.raises(NotFound):
            await kit.releases.history(kit.actor(who), ref)
    with pytest.raises(Forbidden):
        await kit.act("acme-contact", release, "approve")
    items, total = await kit.releases.list_releases(kit.actor("acme-contact"))
    assert total == 1 and items[0].key == release.key
    assert (await kit.releases.list_releases(kit.actor("globex-contact")))[1] == 0
    assert (await kit.releases.list_releases(kit.actor("rita")))[1] == 2


async def test_two_simultaneous_approvals_one_wins(kit: Kit, estate: dict[str, Any]) -> None:
    release = await _ready_to_approve(kit, estate)
    results = await asyncio.gather(
        kit.act("rita", release, "approve"), kit.act("admin", release, "approve"), return_exceptions=True
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and len(losses) == 1
    assert isinstance(losses[0], Conflict)
    history = await kit.releases.history(kit.actor("rita"), release.key)
    assert [h.action for h in history].count("approved") == 1


async def test_a_stale_version_is_refused(kit: Kit, estate: dict[str, Any]) -> None:
    release = await _ready_to_approve(kit, estate)
    current = (await kit.releases.get(kit.actor("rita"), release.key)).release
    with pytest.raises(StaleVersion):
        await kit.releases.act(kit.actor("rita"), release.key, "approve", {}, expected_version=current.version - 1)
    approved = await kit.releases.act(kit.actor("rita"), release.key, "approve", {}, expected_version=current.version)
    assert approved.version == current.version + 1


async def test_unknown_inputs_are_refused(kit: Kit, estate: dict[str, Any]) -> None:
    release = await _ready_to_approve(kit, estate)
    with pytest.raises(InvalidInput) as caught:
        await kit.act("rita", release, "approve", colour="red")
    assert caught.value.problems[0].field == "colour"
    with pytest.raises(InvalidInput) as caught:
        await kit.act("eve", release, "record-test", name="x", result="maybe")
    assert caught.value.problems[0].field == "result"


async def _deployed(kit: Kit, estate: dict[str, Any]) -> Any:
    release = await _ready_to_approve(kit, estate)
    await kit.act("rita", release, "approve")
    await kit.act("rita", release, "deploy")
    return await kit.act("rita", release, "complete")


async def test_watching_matches_released_cis_and_their_dependents_in_the_period(
    kit: Kit, estate: dict[str, Any], world: World
) -> None:
    done = await _deployed(kit, estate)
    at = kit.world.clock.now() + dt.timedelta(days=2)
    acme = world.acme.id
    matches = await kit.releases.watching(acme, [estate["app"].id], at)
    assert [(m.key, m.ci_ids) for m in matches] == [(done.key, (estate["app"].id,))]
    assert [m.ci_ids for m in await kit.releases.watching(acme, [estate["web"].id, estate["other"].id], at)] == [
        (estate["web"].id,)
    ]
    assert await kit.releases.watching(acme, [estate["other"].id], at) == []
    assert await kit.releases.watching(acme, [estate["app"].id], at + dt.timedelta(days=6)) == []
    assert await kit.releases.watching(acme, [estate["app"].id], done.deployed_at - dt.timedelta(minutes=1)) == []
    assert await kit.releases.watching(world.globex.id, [estate["app"].id], at) == []
    periods = await kit.releases.watch_periods(acme, at - dt.timedelta(days=30), at)
    assert len(periods) == 1 and periods[0].key == done.key
    assert set(periods[0].ci_ids) == {estate["web"].id, estate["app"].id}
    assert periods[0].watch_until == done.watch_until
    assert await kit.releases.watch_periods(None, at + dt.timedelta(days=10), at + dt.timedelta(days=20)) == []
    assert len(await kit.releases.watch_periods(None, at, at)) == 1
    assert await kit.releases.watch_periods(world.globex.id, at, at) == []


async def test_cancel_frees_the_rfcs(kit: Kit, estate: dict[str, Any]) -> None:
    rfc = await kit.rfc([estate["web"].id])
    release = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Nov", "rfcs": [rfc.key]})
    cancelled = await kit.act("rita", release, "cancel", reason="Superseded")
    assert cancelled.state is ReleaseState.CANCELLED
    other = await kit.releases.create(kit.actor("rita"), {"customer": "ACME", "title": "Dec", "rfcs": [rfc.key]})
    assert other.rfc_ids == (rfc.id,)
    assert await release_repo.patch_met_times([rfc.id]) == {}
