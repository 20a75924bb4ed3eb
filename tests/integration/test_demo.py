"""The demo data set (`keel demo`): size and shape, tenancy of the graph, the cycle, history,
the configuration audit, RFCs in every state with a past that reads in order, releases, patch
deadlines, incidents, alerts, problems, the finished month's reports, escalations, and idempotence.

Seeding takes seconds, and the tests on the seeded data only read, so the module seeds once:
the `demo` fixture does what `db` and `clock` do (empty tables, the same fixed time), then
ensure_provider and seed_demo, the way the command line does. The last tests take `db` (which
empties the tables) and so stay at the end of the file.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from change.models import RFC, ChangeType, RFCState
from change.services import ChangeService
from cmdb.accounts import Accounts
from cmdb.calendar import BusinessCalendar
from cmdb.errors import Conflict, NotFound
from cmdb.graphcache import GraphCache
from cmdb.models import CI, Actor, CIClass, CIStatus, Customer, Role
from cmdb.services import CMDBService, ensure_provider, system_actor
from incident.models import Incident, IncidentPriority, IncidentStatus
from problem.models import Problem, ProblemStatus
from release.models import ReleaseState
from tests.support import FakeClock, reset_tables
from web import demo as demo_module
from web.demo import CUSTOMERS, HISTORY_DAYS, UPDATES, DemoSummary, seed_demo
from web.demo_operations import Operations, OperationsFigures, build_operations, finished_month

PROVIDER_KEY = "PROV"
NOW = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)  # the `clock` fixture's time


@dataclass
class Demo:
    cmdb: CMDBService
    clock: FakeClock
    provider: Customer
    summary: DemoSummary

    @property
    def system(self) -> Actor:
        return system_actor(self.provider)

    async def actor(self, username: str) -> Actor:
        person = await self.cmdb.get_person(self.system, username)
        return Actor(person.id, person.username, person.name, person.tenant_id, self.provider.id, person.roles)

    async def all_cis(self, actor: Actor | None = None, customer: str | None = None) -> list[CI]:
        found: list[CI] = []
        while True:
            page, total = await self.cmdb.list_cis(
                actor or self.system,
                customer=customer,
                ci_class=None,
                status=None,
                q=None,
                limit=500,
                offset=len(found),
            )
            found += page
            if not page or len(found) >= total:
                return found

    async def ci(self, customer: str, name: str) -> CI:
        return await self.cmdb.get_ci(self.system, f"{customer}:{name}")

    @property
    def figures(self) -> OperationsFigures:
        assert self.summary.operations is not None
        return self.summary.operations

    @property
    def change(self) -> ChangeService:
        return ChangeService(self.clock, self.cmdb)

    async def rfcs(self, actor: Actor | None = None) -> list[RFC]:
        items, total = await self.change.list_rfcs(actor or self.system, limit=500)
        assert len(items) == total
        return items

    async def rfc(self, name: str) -> RFC:
        """A demo RFC by its name in the change stories."""
        return (await self.change.get(self.system, self.summary.rfc_keys[name])).rfc


@pytest.fixture(scope="module")
async def demo(database: None) -> AsyncIterator[Demo]:
    # On PostgreSQL, the thousands of reads below go through a pool as they do in the app.
    async with demo_module._connection_pool():
        await reset_tables()
        clock = FakeClock(NOW)
        provider = await ensure_provider(clock, PROVIDER_KEY, "Keel Managed Services")
        cmdb = CMDBService(clock, GraphCache())
        summary = await seed_demo(cmdb, clock, provider_key=PROVIDER_KEY)
        yield Demo(cmdb, clock, provider, summary)


async def test_summary_counts_match_the_database(demo: Demo) -> None:
    summary = demo.summary
    assert summary.created
    customers = [key for key in summary.customers if key != PROVIDER_KEY]
    assert len(customers) >= 3
    cis = await demo.all_cis()
    assert len(cis) == summary.total_cis >= 300
    by_customer: dict[str, Counter[str]] = {}
    keys = await demo.cmdb.customer_keys({ci.tenant_id for ci in cis})
    for ci in cis:
        by_customer.setdefault(keys[ci.tenant_id], Counter())[ci.ci_class.value] += 1
    assert {key: dict(counts) for key, counts in by_customer.items()} == summary.counts
    assert set(summary.class_totals()) == set(CIClass.values())
    for key in customers:
        assert sum(summary.counts[key].values()) >= 50, key
    index = await demo.cmdb.index()
    assert index.edge_count == summary.relationships
    assert 3 <= summary.relationships / summary.total_cis <= 5
    assert summary.windows >= len(customers) and summary.blackouts == len(customers)
    text = summary.describe()
    assert "admin / admin-demo" in text and "ACME" in text


async def test_every_role_is_present_and_the_sign_ins_work(demo: Demo) -> None:
    roles = {role for sign_in in demo.summary.sign_ins for role in sign_in.roles}
    assert roles == set(Role.values())
    # Filtered here rather than with list_people(role=...), which this checks independently of.
    people, total = await demo.cmdb.list_people(
        demo.system, customer=None, role=None, expertise=None, limit=100, offset=0
    )
    assert total == len(people) == len(demo.summary.sign_ins)
    assert {role.value for person in people for role in person.roles} == set(Role.values())
    engineers = [p for p in people if Role.ENGINEER in p.roles]
    assert len(engineers) >= 3 and len({frozenset(p.expertise) for p in engineers}) == len(engineers)
    committee = [p for p in people if Role.COMMITTEE_MEMBER in p.roles]
    assert len(committee) >= 3 and all(p.expertise for p in committee)
    for spec in CUSTOMERS:
        contacts, _ = await demo.cmdb.list_people(
            demo.system, customer=spec.key, role=None, expertise=None, limit=100, offset=0
        )
        assert [(p.username, p.roles) for p in contacts] == [(spec.contact.username, {Role.CUSTOMER})]
    # The printed passwords are the real ones (two accounts checked: hashing is slow on purpose).
    accounts = Accounts(demo.clock)
    for sign_in in (demo.summary.sign_ins[0], demo.summary.sign_ins[-1]):
        _, _, actor = await accounts.sign_in(sign_in.username, sign_in.password, "api")
        assert sorted(role.value for role in actor.roles) == list(sign_in.roles)


async def test_customers_have_calendars_sla_windows_and_blackouts(demo: Demo) -> None:
    for spec in CUSTOMERS:
        customer = await demo.cmdb.get_customer(demo.system, spec.key)
        calendar = BusinessCalendar.from_dict(customer.calendar)
        assert calendar.timezone == spec.timezone and calendar.holiday_region == spec.holiday_region
        assert calendar.closure_days
        assert customer.sla["impact_thresholds"]["high"] > customer.sla["impact_thresholds"]["medium"]
        windows = await demo.cmdb.windows(demo.system, spec.key)
        assert any(w.ci_id is None for w in windows) and any(w.ci_id is not None for w in windows)
        assert all(w.timezone == spec.timezone for w in windows)
        blackouts = await demo.cmdb.blackouts(demo.system, spec.key)
        assert len(blackouts) == 1 and blackouts[0].end > NOW


async def test_the_estate_is_realistic(demo: Demo) -> None:
    cis = await demo.all_cis()
    statuses = Counter(ci.status for ci in cis)
    assert set(statuses) == set(CIStatus)
    assert statuses[CIStatus.LIVE] > 0.8 * len(cis)
    services = [ci for ci in cis if ci.ci_class is CIClass.SERVICE]
    assert sum(ci.criticality.value in ("high", "critical") for ci in services) > 0.7 * len(services)
    assert all(ci.owner_id is not None for ci in cis)
    with_support = [ci for ci in cis if (await demo.cmdb.get_ci(demo.system, ci.id)).support_ids]
    assert len(with_support) > 0.8 * len(cis)
    today = NOW.date()
    warranties = [
        dt.date.fromisoformat(ci.attributes["warranty_expires"]) for ci in cis if "warranty_expires" in ci.attributes
    ]
    assert len(warranties) > 100
    soon = [w for w in warranties if today <= w <= today + dt.timedelta(days=45)]
    assert 3 <= len(soon) <= 20
    hardware = [ci for ci in cis if ci.ci_class in (CIClass.SERVER, CIClass.STORAGE, CIClass.UPS)]
    assert all(ci.attributes.get("serial_number") and ci.attributes.get("model") for ci in hardware)
    assert len({ci.attributes["serial_number"] for ci in hardware}) == len(hardware)
    # Each customer's test environment represents production CIs that exist.
    for spec in CUSTOMERS:
        env = await demo.ci(spec.key, f"{spec.prefix}-test")
        assert env.ci_class is CIClass.TEST_ENVIRONMENT
        for name in env.attributes["represents"]:
            await demo.ci(spec.key, name)


async def test_provider_hubs_reach_every_customer_for_provider_staff(demo: Demo) -> None:
    eve = await demo.actor("eve")
    customer_tenants = {(await demo.cmdb.get_customer(demo.system, spec.key)).id for spec in CUSTOMERS}
    for hub in ("san-01", "vmw-shared-cl01", "Backup service", "Monitoring service"):
        result = await demo.cmdb.impact(eve, f"{PROVIDER_KEY}:{hub}", direction="down", limit=10_000)
        assert result.total == len(result.items)
        reached = {row.ci.tenant_id for row in result.items if row.ci is not None}
        assert customer_tenants <= reached, hub
        assert all(row.ci is not None for row in result.items)  # staff see everything unredacted
    san = await demo.cmdb.impact(eve, f"{PROVIDER_KEY}:san-01", direction="down", limit=10_000)
    services = {row.ci.name for row in san.items if row.ci is not None and row.ci.ci_class is CIClass.SERVICE}
    assert {"ACME ERP", "Globex Web Shop", "Initech Claims", "SCL Dispatch"} <= services


async def test_a_customer_sees_its_own_cis_and_redacted_provider_ones(demo: Demo) -> None:
    pat = await demo.actor("pat")
    acme = await demo.cmdb.get_customer(demo.system, "ACME")
    result = await demo.cmdb.impact(pat, "ACME ERP", direction="up", limit=10_000)
    own = [row for row in result.items if row.ci is not None]
    redacted = [row for row in result.items if row.ci is None]
    assert own and redacted
    assert all(row.ci.tenant_id == acme.id for row in own if row.ci is not None)
    provider_ids = {ci.id for ci in await demo.all_cis(customer=PROVIDER_KEY)}
    assert {row.ci_id for row in redacted} <= provider_ids
    assert {CIClass.STORAGE, CIClass.SERVER, CIClass.CLUSTER} <= {row.ci_class for row in redacted}
    # Staff asking the same question see the same CIs, unredacted.
    staff = await demo.cmdb.impact(await demo.actor("eve"), "ACME:ACME ERP", direction="up", limit=10_000)
    assert {row.ci_id for row in staff.items} == {row.ci_id for row in result.items}
    # Nothing of another customer, and provider CIs cannot be opened directly.
    assert {ci.tenant_id for ci in await demo.all_cis(actor=pat)} == {acme.id}
    with pytest.raises(NotFound):
        await demo.cmdb.get_ci(pat, "san-01")
    with pytest.raises(NotFound):
        await demo.cmdb.impact(pat, "GLOBEX:globex-pos-db")
    down = await demo.cmdb.impact(pat, "acme-erp-db", direction="down", limit=10_000)
    assert down.items and all(row.ci is not None and row.ci.tenant_id == acme.id for row in down.items)


async def test_the_initech_cycle_exists_and_impact_terminates(demo: Demo) -> None:
    names = ("initech-policy", "initech-crm", "initech-dms")
    ids = {(await demo.ci("INITECH", name)).id for name in names}
    index = await demo.cmdb.index()
    cycles = index.cycles()
    assert any(set(cycle) == ids for cycle in cycles)
    # The only cycle is the deliberate one.
    assert all(set(cycle) <= ids for cycle in cycles)
    bill = await demo.actor("bill")
    result = await demo.cmdb.impact(bill, "initech-dms", direction="down", limit=10_000)
    reached = [row.ci_id for row in result.items]
    assert len(reached) == len(set(reached)) == result.total
    assert ids - {(await demo.ci("INITECH", "initech-dms")).id} <= set(reached)
    assert "Initech Claims" in {row.ci.name for row in result.items if row.ci is not None}
    path = await demo.cmdb.path(bill, "initech-crm", "initech-policy")
    assert [hop.type for hop in path] == ["depends_on", "depends_on"]


async def test_every_ci_has_history(demo: Demo) -> None:
    updated = {(u.customer or PROVIDER_KEY, u.ci) for u in UPDATES}
    keys = {spec.key for spec in CUSTOMERS} | {PROVIDER_KEY}
    tenants = {key: (await demo.cmdb.get_customer(demo.system, key)).id for key in keys}
    by_tenant = {tenant_id: key for key, tenant_id in tenants.items()}
    for ci in await demo.all_cis():
        _, entries, total = await demo.cmdb.history(demo.system, ci.id, limit=100, offset=0)
        # Newest first: a hub's many relationships can push its creation off the first page.
        _, oldest, _ = await demo.cmdb.history(demo.system, ci.id, limit=1, offset=total - 1)
        assert (oldest[0].entity, oldest[0].action, oldest[0].ci_id) == ("ci", "created", ci.id), ci.name
        assert oldest[0].after is not None and oldest[0].after["name"] == ci.name
        if (by_tenant[ci.tenant_id], ci.name) in updated:
            assert any(entry.action == "updated" and entry.ci_id == ci.id for entry in entries), ci.name
            assert ci.version >= 2


async def test_the_audit_lists_the_unauthorized_updates(demo: Demo) -> None:
    eve = await demo.actor("eve")
    entries, total = await demo.cmdb.audit(eve, customer=None, since=None, limit=100, offset=0)
    assert total == demo.summary.unauthorized_changes == len(entries) >= 5
    assert all(entry.unauthorized_fields for entry in entries)
    references = {entry.rfc for entry in entries}
    expected = {u.rfc for u in UPDATES if u.rfc}
    cited = {demo.summary.rfc_keys[u.demo_rfc] for u in UPDATES if u.demo_rfc}
    assert expected | cited <= references  # an RFC reference that is not approved does not authorize
    for key in cited:  # the cited RFCs exist and do not authorize (yet, or any more)
        rfc = (await demo.change.get(demo.system, key)).rfc
        assert rfc.state in (RFCState.SUBMITTED, RFCState.AUTHORIZED, RFCState.IN_REVIEW, RFCState.BACKED_OUT), key
    assert None in references  # and some were changed with no reference at all
    touched = {entry.ci_id for entry in entries}
    harmless = await demo.ci("GLOBEX", "globex-ws-005")  # only a non-controlled attribute changed
    assert harmless.id not in touched
    tenants = {entry.tenant_id for entry in entries}
    assert len(tenants) >= 4
    pat = await demo.actor("pat")
    acme = await demo.cmdb.get_customer(demo.system, "ACME")
    own, own_total = await demo.cmdb.audit(pat, customer=None, since=None, limit=100, offset=0)
    assert own_total >= 1 and all(entry.tenant_id == acme.id for entry in own)


async def test_every_rfc_state_is_there_and_the_summary_counts_them(demo: Demo) -> None:
    rfcs = await demo.rfcs()
    by_state = Counter(rfc.state.value for rfc in rfcs)
    assert set(by_state) == set(RFCState.values())
    assert demo.summary.rfcs == {state.value: by_state[state.value] for state in RFCState}
    assert list(demo.summary.rfcs) == RFCState.values()  # workflow order
    assert len(demo.summary.rfc_keys) == len(rfcs) == sum(demo.summary.rfcs.values())
    assert f"RFCs: {len(rfcs)} (draft " in demo.summary.describe()
    # Spread over the customers and the provider, with every change type and several priorities.
    tenants = {rfc.tenant_id for rfc in rfcs}
    assert tenants == {(await demo.cmdb.get_customer(demo.system, key)).id for key in demo.summary.customers}
    assert {rfc.type for rfc in rfcs} == set(ChangeType)
    assert len({rfc.priority for rfc in rfcs}) >= 3
    assert {rfc.origin.value for rfc in rfcs} >= {"internal", "customer"}
    for rfc in rfcs:
        if rfc.state not in (RFCState.DRAFT, RFCState.WITHDRAWN):
            assert rfc.need and rfc.desired_result and rfc.plan and rfc.backout_plan, rfc.key


async def test_customer_raised_rfcs_come_from_their_contacts(demo: Demo) -> None:
    contacts = {}
    for spec in CUSTOMERS:
        person = await demo.cmdb.get_person(demo.system, spec.contact.username)
        contacts[person.id] = person.tenant_id
    raised = [(rfc, contacts[rfc.originator_id]) for rfc in await demo.rfcs() if rfc.originator_id in contacts]
    assert len({tenant for _, tenant in raised}) == len(CUSTOMERS)
    assert all(rfc.origin.value == "customer" and rfc.tenant_id == tenant for rfc, tenant in raised)
    raised_rfcs = [rfc for rfc, _ in raised]
    assert any(rfc.customer_ref for rfc in raised_rfcs)


async def test_patch_rfcs_carry_urgency_and_a_past_availability(demo: Demo) -> None:
    patches = [rfc for rfc in await demo.rfcs() if rfc.is_patch]
    assert len({rfc.urgency for rfc in patches}) >= 4
    for rfc in patches:
        assert rfc.available_at is not None and rfc.available_at <= rfc.created_at <= NOW, rfc.key
        assert rfc.patch_components and rfc.patch_description, rfc.key


async def test_committee_votes_are_recorded_for_rfcs_in_review(demo: Demo) -> None:
    in_review = [rfc for rfc in await demo.rfcs() if rfc.state is RFCState.IN_REVIEW]
    assert in_review
    for rfc in in_review:
        votes = await demo.change.votes(demo.system, rfc.id)
        assert votes, rfc.key
        assert all(vote["comment"] for vote in votes)
        assert rfc.originator_id not in {vote["member"] for vote in votes}
    san = await demo.rfc("san-firmware")
    assert san.state is RFCState.IN_REVIEW and len(await demo.change.votes(demo.system, san.id)) == 2
    impact = await demo.change.impact(demo.system, san.id)
    assert impact.committee_required and impact.frozen and len(impact.customers) == 1 + len(CUSTOMERS)
    # The committee decided others: approved by vote, and rejected by Initech's veto.
    vetoed = await demo.rfc("initech-policy-ru")
    assert vetoed.state is RFCState.REJECTED
    assert "committee_rejected" in [e.action for e in await demo.change.timeline(demo.system, vetoed.id)]


async def test_scheduled_rfcs_fit_their_windows_and_a_conflict_pair_exists(demo: Demo) -> None:
    scheduled = [rfc for rfc in await demo.rfcs() if rfc.state is RFCState.SCHEDULED]
    assert len(scheduled) >= 2
    for rfc in scheduled:
        assert rfc.planned_start is not None and rfc.planned_end is not None
        assert NOW < rfc.planned_start < NOW + dt.timedelta(days=60), rfc.key
        assert not rfc.post_implementation_review_required, rfc.key  # normal changes, inside the windows
    pairs = await demo.change.conflicts(demo.system, NOW, NOW + dt.timedelta(days=60))
    assert len(pairs) == demo.summary.conflicts >= 1
    kernel, hana = await demo.rfc("acme-erp-kernel"), await demo.rfc("acme-hana-revision")
    found = {(a.key, b.key): pair for a, b, pair in pairs}
    pair = found.get((kernel.key, hana.key)) or found.get((hana.key, kernel.key))
    assert pair is not None
    erp = await demo.ci("ACME", "acme-erp")
    assert erp.id in pair.shared


async def test_the_emergency_change_runs_outside_the_windows_with_a_review_flag(demo: Demo) -> None:
    rfc = await demo.rfc("firewall-hotfix")
    assert (rfc.type, rfc.state, rfc.priority.value) == (ChangeType.EMERGENCY, RFCState.IMPLEMENTING, "critical")
    assert rfc.post_implementation_review_required and rfc.emergency_reason
    assert rfc.planned_start is not None and rfc.planned_end is not None
    assert rfc.planned_start <= NOW < rfc.planned_end
    timeline = await demo.change.timeline(demo.system, rfc.id)
    scheduled = next(e for e in timeline if e.action == "scheduled")
    assert scheduled.after is not None and scheduled.after.get("schedule_violations")  # the test clock's Monday


async def test_the_past_reads_in_order(demo: Demo) -> None:
    """Every event between the recording of the estate and now; each RFC's timeline in order;
    implementations inside the planned window; references to earlier RFCs resolve."""
    start = NOW - dt.timedelta(days=HISTORY_DAYS)
    assert demo.summary.history_from == start
    keys = {rfc.key for rfc in await demo.rfcs()}
    for rfc in await demo.rfcs():
        timeline = await demo.change.timeline(demo.system, rfc.id)
        moments = [entry.at for entry in timeline]
        assert moments == sorted(moments) and start < moments[0] and moments[-1] <= NOW, rfc.key
        assert timeline[0].action == "created" and moments[0] == rfc.created_at
        started = [e.at for e in timeline if e.action == "implementation_started"]
        if started and rfc.type is not ChangeType.EMERGENCY:
            assert rfc.planned_start is not None and rfc.planned_start <= started[0], rfc.key
        ended = [e.at for e in timeline if e.action in ("completed", "failed")]
        if ended:
            assert rfc.planned_end is not None and ended[0] <= rfc.planned_end, rfc.key
        if rfc.refers_to:
            assert rfc.refers_to in keys
    # RFC keys follow the order RFCs were raised.
    ordered = sorted(await demo.rfcs(), key=lambda r: (r.created_at, r.id))
    assert [r.key for r in ordered] == sorted(r.key for r in ordered)


async def test_outcomes_are_archived_and_completions_authorize_ci_updates(demo: Demo) -> None:
    rejected = await demo.rfc("globex-rdp")
    follow_up = await demo.rfc("globex-vendor-access")
    assert rejected.state is RFCState.REJECTED and follow_up.refers_to == rejected.key
    assert (await demo.rfc("initech-claimcenter")).state is RFCState.BACKED_OUT
    assert (await demo.rfc("scl-fleet-upgrade")).state is RFCState.FAILED
    eve = await demo.actor("eve")
    for name, customer, ci_name in (
        ("esx-patch", PROVIDER_KEY, "esx-05-os"),
        ("acme-test-reimage", "ACME", "acme-erp-tst-01-os"),
        ("scl-sql-cu", "SCL", "scl-dispatch-db"),
    ):
        rfc = await demo.rfc(name)
        assert rfc.state is RFCState.COMPLETED
        ci = await demo.ci(customer, ci_name)
        _, entries, _ = await demo.cmdb.history(eve, ci.id, limit=100, offset=0)
        actions = [(entry.action, entry.rfc) for entry in entries]
        # Newest first: the authorized update under the RFC follows its completion.
        update = next(i for i, (action, key) in enumerate(actions) if action == "updated" and key == rfc.key)
        done = actions.index(("rfc_completed", rfc.key))
        assert update < done, name
        assert not entries[update].unauthorized_fields, name
        assert entries[update].at >= entries[done].at
    audit, _ = await demo.cmdb.audit(eve, customer=None, since=None, limit=100, offset=0)
    completed = {(await demo.rfc(name)).key for name in ("esx-patch", "acme-test-reimage", "scl-sql-cu")}
    assert not completed & {entry.rfc for entry in audit}


async def test_customer_contacts_see_only_their_own_rfcs(demo: Demo) -> None:
    everything = await demo.rfcs()
    for spec in CUSTOMERS:
        contact = await demo.actor(spec.contact.username)
        tenant = (await demo.cmdb.get_customer(demo.system, spec.key)).id
        own = await demo.rfcs(contact)
        assert own and {rfc.tenant_id for rfc in own} == {tenant}
        assert {rfc.key for rfc in own} == {rfc.key for rfc in everything if rfc.tenant_id == tenant}
        other = next(rfc for rfc in everything if rfc.tenant_id != tenant)
        with pytest.raises(NotFound):
            await demo.change.get(contact, other.key)
        pairs = await demo.change.conflicts(contact, NOW, NOW + dt.timedelta(days=60))
        assert all(a.tenant_id == b.tenant_id == tenant for a, b, _ in pairs)


async def test_a_second_run_creates_nothing(demo: Demo) -> None:
    before_cis = len(await demo.all_cis())
    before_edges = (await demo.cmdb.index()).edge_count
    _, before_people = await demo.cmdb.list_people(
        demo.system, customer=None, role=None, expertise=None, limit=1, offset=0
    )
    again = await seed_demo(demo.cmdb, demo.clock, provider_key=PROVIDER_KEY)
    assert not again.created
    assert "already" in again.message
    assert again.counts == demo.summary.counts
    assert again.relationships == demo.summary.relationships
    assert again.unauthorized_changes == demo.summary.unauthorized_changes
    assert again.rfcs == demo.summary.rfcs and again.conflicts == demo.summary.conflicts
    assert f"RFCs: {sum(again.rfcs.values())}" in again.describe()
    assert [s.username for s in again.sign_ins] == [s.username for s in demo.summary.sign_ins]
    assert len(await demo.all_cis()) == before_cis
    assert len(await demo.rfcs()) == sum(demo.summary.rfcs.values())
    assert (await demo.cmdb.index()).edge_count == before_edges
    _, after_people = await demo.cmdb.list_people(
        demo.system, customer=None, role=None, expertise=None, limit=1, offset=0
    )
    assert after_people == before_people


# --- operations: releases, patches, incidents, alerts, problems, reports, escalations ----------


def _operations(demo: Demo) -> Operations:
    return build_operations(demo.clock, demo.cmdb, demo.change)


async def _all_incidents(demo: Demo, ops: Operations, actor: Actor | None = None) -> list[Incident]:
    items, total = await ops.incidents.list_incidents(actor or demo.system, limit=500)
    assert len(items) == total
    return items


async def test_releases_in_several_states_with_deployments_and_a_back_out(demo: Demo) -> None:
    ops = _operations(demo)
    releases, total = await ops.releases.list_releases(demo.system, limit=100)
    assert total == len(releases) == sum(demo.figures.releases.values()) >= 4
    states = Counter(r.state for r in releases)
    assert {ReleaseState.PLANNED, ReleaseState.TESTING, ReleaseState.APPROVED} <= set(states)
    assert states[ReleaseState.DEPLOYED] >= 2 and states[ReleaseState.BACKED_OUT] == 1
    assert len({r.tenant_id for r in releases}) >= 3
    for release in releases:
        view = await ops.releases.get(demo.system, release.id)
        if release.state is ReleaseState.DEPLOYED:
            assert view.deployments and release.deployed_at is not None and release.watch_until is not None
            assert release.deployed_at <= NOW and all(r.state is RFCState.COMPLETED for r in view.rfcs)
        if release.state is ReleaseState.BACKED_OUT:
            assert release.backout_reason and all(r.state is RFCState.BACKED_OUT for r in view.rfcs)
        if release.state is ReleaseState.APPROVED:
            # Failed in the first round of testing, passed in the second.
            assert release.test_round == 2 and view.evidence.complete
            assert {t.result.value for t in view.tests} == {"failed", "passed"}
    # A deployed release whose watch period saw incidents, which the trend analysis flagged.
    watched = [r for r in releases if r.state is ReleaseState.DEPLOYED]
    spiked = [p for p in await _problems(demo, ops) if p.source_release_id in {r.id for r in watched}]
    assert spiked and spiked[0].origin.value == "trend" and len(spiked[0].incident_ids) >= 3


async def test_patch_deadlines_are_met_at_risk_overdue_and_on_track(demo: Demo) -> None:
    ops = _operations(demo)
    patches = [rfc for rfc in await demo.rfcs() if rfc.is_patch]
    views = await ops.patches.urgency_for_rfcs([rfc.id for rfc in patches])
    states = Counter(view.state for view in views.values())
    assert {"on_track", "at_risk", "overdue", "met"} <= {str(getattr(s, "value", s)) for s in states}
    met = [rfc for rfc in patches if str(getattr(views[rfc.id].state, "value", views[rfc.id].state)) == "met"]
    holding = await ops.releases.releases_of_rfcs([rfc.id for rfc in met])
    assert all(holding.get(rfc.id) for rfc in met)


async def test_incidents_in_every_status_worked_confirmed_and_reopened(demo: Demo) -> None:
    ops = _operations(demo)
    incidents = await _all_incidents(demo, ops)
    assert demo.figures.incidents == {s.value: sum(i.status is s for i in incidents) for s in IncidentStatus}
    assert {i.status for i in incidents} == set(IncidentStatus)
    assert {i.priority for i in incidents} == set(IncidentPriority)
    assert {i.source.value for i in incidents} == {"manual", "customer", "alert"}
    for spec in CUSTOMERS:
        tenant = (await demo.cmdb.get_customer(demo.system, spec.key)).id
        own = [i for i in incidents if i.tenant_id == tenant]
        assert 15 <= len(own) <= 40, spec.key
        # Spread over the history, October included.
        assert min(i.created_at for i in own) < NOW - dt.timedelta(days=40)
    assert all(NOW - dt.timedelta(days=HISTORY_DAYS) < i.created_at <= NOW for i in incidents)
    assert any(i.reopen_count for i in incidents if i.status is IncidentStatus.CLOSED)
    contacts = {spec.contact.name for spec in CUSTOMERS} | {spec.contact.username for spec in CUSTOMERS}
    confirmed = [i for i in incidents if i.closure is not None and i.closure.confirmed_at is not None]
    assert len(confirmed) > len(incidents) / 2
    closed = next(i for i in confirmed if i.status is IncidentStatus.CLOSED)
    history = await ops.incidents.history(demo.system, closed.id)
    assert [e.action for e in history][:1] == ["created"] and "confirmed" in {e.action for e in history}
    assert {e.actor_name for e in history if e.action == "confirmed"} <= contacts
    actions: Counter[str] = Counter()
    for incident in incidents:
        actions.update(e.action for e in await ops.incidents.history(demo.system, incident.id))
    assert actions["escalated"] >= 1 and actions["rfc_raised"] == 1 and actions["reopened"] >= 1
    assert actions["time_recorded"] > len(incidents) and actions["communication"] > len(incidents) / 2
    view = await ops.incidents.get(demo.system, closed.id)
    assert view.time_entries and any(t.estimated_minutes for t in view.time_entries)
    # The day after an RFC completed on its CI, an incident there shows the change.
    sql_cu = await demo.rfc("scl-sql-cu")
    db = await demo.ci("SCL", "scl-dispatch-db")
    after = [i for i in incidents if db.id in i.ci_ids and i.created_at > sql_cu.updated_at - dt.timedelta(days=1)]
    assert after
    recent = await ops.incidents.recent_changes(demo.system, after[0].id)
    assert sql_cu.key in {change.key for change in recent}


async def test_alerts_opened_and_joined_incidents(demo: Demo) -> None:
    ops = _operations(demo)
    alerts, total = await ops.alerts.list_alerts(demo.system, limit=500)
    assert total == len(alerts) == sum(demo.figures.alerts.values())
    outcomes = Counter(a.outcome for a in alerts)
    assert outcomes["opened"] >= 4 and outcomes["joined"] >= 2 and outcomes["ignored"] >= 1
    assert {a.metric for a in alerts} >= {"cpu_percent", "disk_system_free_gb", "backup", "virus"}
    from_alerts = [i for i in await _all_incidents(demo, ops) if i.source.value == "alert"]
    assert {a.incident_id for a in alerts if a.outcome == "opened"} == {i.id for i in from_alerts}


async def _problems(demo: Demo, ops: Operations) -> list[Problem]:
    items, total = await ops.problems.list_problems(demo.system, limit=100)
    assert len(items) == total
    return items


async def test_problems_link_incidents_record_a_known_error_and_one_is_solved_by_an_rfc(demo: Demo) -> None:
    ops = _operations(demo)
    problems = await _problems(demo, ops)
    assert 2 <= len(problems) == sum(demo.figures.problems.values())
    assert all(len(p.incident_ids) >= 3 for p in problems)
    known = [p for p in problems if p.status is ProblemStatus.KNOWN_ERROR]
    assert known and all(p.root_cause and p.workaround for p in known)
    solved = [p for p in problems if p.status in (ProblemStatus.RESOLVED, ProblemStatus.CLOSED)]
    assert solved and solved[0].rfc_key is not None and solved[0].resolution
    rfc = (await demo.change.get(demo.system, solved[0].rfc_key)).rfc
    assert rfc.state is RFCState.COMPLETED and rfc.origin.value == "problem"


async def test_the_finished_month_is_reported_and_frozen_for_every_customer(demo: Demo) -> None:
    ops = _operations(demo)
    month = "2026-10"  # the month before the test clock's November
    assert finished_month(NOW, [await demo.cmdb.get_customer(demo.system, s.key) for s in CUSTOMERS]) == month
    assert demo.figures.reports == {month: len(CUSTOMERS)}
    for spec in CUSTOMERS:
        report = await ops.reports.monthly(demo.system, spec.key, month)
        assert report.frozen and report.issued_at is not None and report.issued_at <= NOW
        assert report.issued_at > dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
        assert report.data["incidents"]["total"] > 0, spec.key
        assert not report.data["draft"]
    # Somebody at each customer was told.
    contact = await demo.actor("pat")
    inbox, _, _ = await ops.notifications.inbox(contact, limit=100)
    assert "report.monthly" in {n.kind for n in inbox}


async def test_escalations_reach_the_service_managers_inbox(demo: Demo) -> None:
    ops = _operations(demo)
    sam = await demo.actor("sam")
    inbox, _, _ = await ops.notifications.inbox(sam, limit=200)
    kinds = Counter(n.kind for n in inbox)
    assert any(kind.startswith("incident.") for kind in kinds) and any(kind.startswith("rfc_patch") for kind in kinds)
    assert demo.figures.escalations >= 3
    open_now = [i for i in await _all_incidents(demo, ops) if i.status is not IncidentStatus.CLOSED]
    raised = await ops.notifications.escalations("incident", [i.id for i in open_now])
    assert any(raised.values())


async def test_operations_are_in_the_summary_and_the_demo_seeds_in_reasonable_time(demo: Demo) -> None:
    text = demo.summary.describe()
    for words in ("Releases: ", "Incidents: ", "Monitoring alerts: ", "Problems: ", "Monthly reports issued"):
        assert words in text
    assert demo.summary.seconds < 90  # about 20 s on SQLite; generous for slow CI machines
    again = await seed_demo(demo.cmdb, demo.clock, provider_key=PROVIDER_KEY)
    assert again.operations == demo.summary.operations


# --- these empty the tables (the `db` fixture): keep them last ---------------------------------


async def test_an_existing_compatible_account_is_used_as_it_is(db: None, clock: FakeClock, monkeypatch) -> None:
    await ensure_provider(clock, PROVIDER_KEY, "Keel Managed Services")
    cmdb = CMDBService(clock, GraphCache())
    operator = await cmdb.create_person(
        None, {"username": "admin", "name": "The Operator", "roles": ["administrator"], "password": "operator-secret"}
    )
    # The people and customers steps are enough to see who does what.
    monkeypatch.setattr(demo_module, "STEPS", demo_module.STEPS[:3])
    summary = await seed_demo(cmdb, clock, provider_key=PROVIDER_KEY)
    assert summary.created
    admin = next(s for s in summary.sign_ins if s.username == "admin")
    assert admin.password == "(unchanged)"
    system = system_actor(await cmdb.provider())
    assert (await cmdb.get_person(system, "admin")).id == operator.id
    _, total = await cmdb.list_customers(system, limit=100, offset=0)
    assert total == 1 + len(CUSTOMERS)


async def test_a_clashing_username_refuses_before_anything_is_written(db: None, clock: FakeClock) -> None:
    provider = await ensure_provider(clock, PROVIDER_KEY, "Keel Managed Services")
    cmdb = CMDBService(clock, GraphCache())
    await cmdb.create_person(None, {"username": "pat", "name": "Another Pat", "roles": ["engineer"]})
    with pytest.raises(Conflict, match="pat"):
        await seed_demo(cmdb, clock, provider_key=PROVIDER_KEY)
    system = system_actor(provider)
    _, customers = await cmdb.list_customers(system, limit=100, offset=0)
    _, people = await cmdb.list_people(system, customer=None, role=None, expertise=None, limit=100, offset=0)
    assert (customers, people) == (1, 1)


async def test_a_failed_run_leaves_nothing_behind(db: None, clock: FakeClock, monkeypatch) -> None:
    provider = await ensure_provider(clock, PROVIDER_KEY, "Keel Managed Services")
    cmdb = CMDBService(clock, GraphCache())
    system = system_actor(provider)

    async def half_way(ctx: demo_module.DemoContext) -> None:
        await cmdb.create_customer(system, {"key": CUSTOMERS[0].key, "name": CUSTOMERS[0].name})
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(demo_module, "STEPS", [("half way", half_way)])
    with pytest.raises(RuntimeError):
        await seed_demo(cmdb, clock, provider_key=PROVIDER_KEY)
    _, customers = await cmdb.list_customers(system, limit=100, offset=0)
    assert customers == 1  # so the next run does not mistake a broken seed for the demo
