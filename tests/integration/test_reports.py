"""The monthly report service: month bounds in the customer's zone, the figures, RFC states at
month end, freezing on issue, the scheduler issuing once, and access."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from change.services import ChangeService
from cmdb import db
from cmdb import repository as cmdb_repo
from cmdb.errors import Conflict, Forbidden, InvalidInput, NotFound
from cmdb.notifications import NotificationService
from incident.services import IncidentService
from problem.reports import ReportService
from problem.services import ProblemService
from release.patches import PatchService
from release.services import ReleaseService
from tests.support import FakeClock, World

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


def build(world: World, mailer: FakeMailer | None = None) -> tuple[ReportService, NotificationService]:
    clock, cmdb = world.clock, world.service
    notifications = NotificationService(clock, mailer)
    change = ChangeService(clock, cmdb)
    releases = ReleaseService(clock, cmdb, change, notifications)
    patches = PatchService(clock, cmdb, notifications)
    incidents = IncidentService(clock, cmdb, change, releases, notifications)
    problems = ProblemService(clock, cmdb, change, releases, incidents)
    return ReportService(clock, cmdb, change, patches, incidents, problems, notifications), notifications


_keys = iter(range(1, 1_000_000))


async def add_incident(
    tenant_id: int,
    created: dt.datetime,
    *,
    priority: str = "normal",
    title: str = "Mail is slow",
    responded: dt.datetime | None = None,
    resolved: dt.datetime | None = None,
    response_due: dt.datetime | None = None,
    resolution_due: dt.datetime | None = None,
    ci_id: int | None = None,
    source: str = "manual",
    reopen_count: int = 0,
    actions_taken: str = "",
) -> int:
    """An incident row as the incident service stores it (raw, so each figure is exact)."""
    ts = cmdb_repo.bulk_timestamp
    engine = cmdb_repo.engine()
    closure = json.dumps({"actions_taken": actions_taken}) if actions_taken else None
    async with db.atomic(engine):
        rows = await db.fetch(
            engine,
            "INSERT INTO incident (key, tenant, title, status, priority, source, created_at, updated_at, "
            "responded_at, resolved_at, response_due, resolution_due, reopen_count, closure, pauses, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', 1) RETURNING id",
            f"INC-T-{next(_keys):05d}",
            tenant_id,
            title,
            "closed" if resolved else "open",
            priority,
            source,
            ts(created),
            ts(created),
            ts(responded) if responded else None,
            ts(resolved) if resolved else None,
            ts(response_due or created + dt.timedelta(hours=2)),
            ts(resolution_due or created + dt.timedelta(days=2)),
            reopen_count,
            closure,
        )
        incident_id = int(rows[0]["id"])
        if ci_id is not None:
            await db.fetch(engine, "INSERT INTO incident_ci (incident, ci) VALUES (?, ?)", incident_id, ci_id)
    return incident_id


async def add_rfc(tenant_id: int, title: str, events: list[tuple[dt.datetime, str, str]]) -> int:
    """An RFC with its history, the way ChangeService._record writes it: each entry carries the
    state after it; the row keeps the last state and time."""
    ts = cmdb_repo.bulk_timestamp
    engine = cmdb_repo.engine()
    created, last_at, last_state = events[0][0], events[-1][0], events[-1][2]
    key = f"RFC-T-{next(_keys):04d}"
    async with db.atomic(engine):
        rows = await db.fetch(
            engine,
            "INSERT INTO rfc (key, tenant, title, type, state, priority, origin, need, desired_result, "
            "affected_people, plan, backout_plan, release_requirements, impact_frozen, impact_adjustments, "
            "post_implementation_review_required, emergency_reason, customer_approval_required, patch_components, "
            "vulnerability, patch_description, testing_done, version, created_at, updated_at) VALUES "
            "(?, ?, ?, 'normal', ?, 'medium', 'internal', '', '', '[]', '', '', '[]', ?, '[]', ?, '', ?, '[]', "
            "'', '', '', 1, ?, ?) RETURNING id",
            key,
            tenant_id,
            title,
            last_state,
            False,
            False,
            False,
            ts(created),
            ts(last_at),
        )
        rfc_id = int(rows[0]["id"])
        await cmdb_repo.append_history(
            [
                cmdb_repo.history_row(
                    tenant_id=tenant_id,
                    entity="rfc",
                    entity_id=rfc_id,
                    action=action,
                    actor_id=None,
                    actor_name="eve",
                    at=moment,
                    after={"state": state},
                    rfc=key,
                )
                for moment, action, state in events
            ]
        )
    return rfc_id


async def add_alert(
    tenant_id: int, ci_id: int, observed: dt.datetime, outcome: str, metric: str = "cpu_percent"
) -> None:
    engine = cmdb_repo.engine()
    async with db.atomic(engine):
        await db.fetch(
            engine,
            "INSERT INTO alert (tenant, ci, metric, value, message, observed_at, received_at, breached, outcome) "
            "VALUES (?, ?, ?, '95', '', ?, ?, ?, ?)",
            tenant_id,
            ci_id,
            metric,
            cmdb_repo.bulk_timestamp(observed),
            cmdb_repo.bulk_timestamp(observed),
            outcome != "ignored",
            outcome,
        )


# --- month bounds ----------------------------------------------------------------------------


async def test_the_month_follows_the_customers_time_zone(world: World) -> None:
    reports, _ = build(world)
    acme, globex = world.acme.id, world.globex.id
    # 03:00 UTC on 1 October is still 30 September in New York; 03:30 UTC on 1 November is
    # still 31 October there.
    await add_incident(acme, at("2026-10-01T03:00:00"))
    await add_incident(acme, at("2026-11-01T03:30:00"))
    await add_incident(acme, at("2026-10-15T12:00:00"))
    # London is on GMT after 25 October: 23:30 UTC on 31 October is still October there, and
    # 23:30 UTC on 30 September (BST) is already 1 October.
    await add_incident(globex, at("2026-10-31T23:30:00"))
    await add_incident(globex, at("2026-09-30T23:30:00"))
    admin = world.actors["admin"]

    october = (await reports.monthly(admin, "ACME", "2026-10")).data
    september = (await reports.monthly(admin, "ACME", "2026-09")).data
    assert october["incidents"]["total"] == 2
    assert september["incidents"]["total"] == 1
    assert october["period"]["start"] == "2026-10-01T04:00:00+00:00"  # midnight EDT
    assert october["period"]["end"] == "2026-11-01T04:00:00+00:00"
    assert (await reports.monthly(admin, "GLOBEX", "2026-10")).data["incidents"]["total"] == 2
    assert (await reports.monthly(admin, "GLOBEX", "2026-09")).data["incidents"]["total"] == 0


async def test_weeks_split_the_month_at_mondays(world: World) -> None:
    reports, _ = build(world)
    await add_incident(world.acme.id, at("2026-10-02T15:00:00"), priority="critical")  # Friday 2 Oct
    await add_incident(world.acme.id, at("2026-10-05T15:00:00"), priority="high")  # Monday 5 Oct
    await add_incident(world.acme.id, at("2026-10-31T15:00:00"), priority="low")  # Saturday 31 Oct
    data = (await reports.monthly(world.actors["admin"], "ACME", "2026-10")).data
    weeks = data["incidents"]["weeks"]
    assert [w["label"] for w in weeks] == ["1 Oct", "5 Oct", "12 Oct", "19 Oct", "26 Oct"]
    assert weeks[0]["counts"]["critical"] == 1
    assert weeks[1]["counts"]["high"] == 1
    assert weeks[4]["counts"]["low"] == 1
    assert data["incidents"]["by_priority"] == {"critical": 1, "high": 1, "normal": 0, "low": 1}


# --- figures ---------------------------------------------------------------------------------


async def test_agreed_time_attainment_counts_met_missed_and_pending(world: World) -> None:
    reports, _ = build(world)
    world.clock.set(at("2026-11-02T14:00:00"))
    acme = world.acme.id
    base = at("2026-10-10T14:00:00")
    due = base + dt.timedelta(hours=2)
    fix_due = base + dt.timedelta(days=1)
    # answered and fixed in time
    await add_incident(
        acme,
        base,
        responded=base + dt.timedelta(hours=1),
        resolved=base + dt.timedelta(hours=5),
        response_due=due,
        resolution_due=fix_due,
        actions_taken="Restarted the mail relay",
    )
    # answered late, fixed late
    await add_incident(
        acme,
        base,
        responded=base + dt.timedelta(hours=3),
        resolved=base + dt.timedelta(days=2),
        response_due=due,
        resolution_due=fix_due,
    )
    # never answered, its due time passed: measured, missed
    await add_incident(acme, base, response_due=due, resolution_due=fix_due, reopen_count=1)
    # raised late on 31 October, due after "now": not measured yet
    late = at("2026-10-31T20:00:00")
    await add_incident(acme, late, response_due=at("2026-11-05T00:00:00"), resolution_due=at("2026-11-09T00:00:00"))

    data = (await reports.monthly(world.actors["sam"], "ACME", "2026-10")).data
    assert data["sla"]["response"] == {"met": 1, "measured": 3, "percent": 33}
    assert data["sla"]["resolution"] == {"met": 1, "measured": 3, "percent": 33}
    assert data["incidents"]["resolved"] == 2
    assert data["incidents"]["reopened"] == 1
    assert data["incidents"]["open_at_end"] == 2
    items = {item["resolution"] for item in data["incidents"]["items"]}
    assert "Restarted the mail relay" in items
    assert "One of three were answered" not in data["summary"]
    assert "answered within the agreed time (33 %)" in data["summary"]
    assert "RFC" not in data["summary"] and "SLA" not in data["summary"]


async def test_alerts_and_repeated_incidents_become_health_and_findings(world: World) -> None:
    reports, _ = build(world)
    web = await world.ci("ACME", "web-01")
    acme = world.acme.id
    for day in (3, 9, 17):
        await add_incident(acme, at(f"2026-10-{day:02d}T15:00:00"), ci_id=web.id, source="alert")
    await add_alert(acme, web.id, at("2026-10-03T15:00:00"), "opened")
    await add_alert(acme, web.id, at("2026-10-03T15:05:00"), "joined")
    await add_alert(acme, web.id, at("2026-10-04T15:00:00"), "ignored", metric="memory_percent")
    await add_alert(world.globex.id, web.id, at("2026-10-04T15:00:00"), "opened")  # another tenant's

    data = (await reports.monthly(world.actors["admin"], "ACME", "2026-10")).data
    alerts = data["health"]["alerts"]
    assert alerts == {"received": 3, "breached": 2, "opened": 1, "joined": 1, "ignored": 1}
    assert data["health"]["actions"]["incidents_from_alerts"] == 3
    assert any(f["kind"] == "repeated" and f["ref"] == "web-01" for f in data["findings"])
    assert any("3 incidents on web-01 this month" in text for text in data["recommendations"])
    assert "Our monitoring sent three warnings" in data["summary"]


async def test_rfcs_open_at_month_end_and_completed_in_it(world: World) -> None:
    reports, _ = build(world)
    acme = world.acme.id
    done = await add_rfc(
        acme,
        "Patch the mail relay",
        [
            (at("2026-10-05T14:00:00"), "created", "draft"),
            (at("2026-10-06T14:00:00"), "submitted", "submitted"),
            (at("2026-10-20T14:00:00"), "completed", "completed"),
        ],
    )
    waiting = await add_rfc(
        acme,
        "Replace the core switch",
        [
            (at("2026-10-10T14:00:00"), "created", "draft"),
            (at("2026-10-11T14:00:00"), "submitted", "submitted"),
        ],
    )
    # approved in October, completed in November: open (approved) at the end of October
    later = await add_rfc(
        acme,
        "Upgrade the database",
        [
            (at("2026-10-12T14:00:00"), "created", "draft"),
            (at("2026-10-25T14:00:00"), "approved", "approved"),
            (at("2026-11-02T13:00:00"), "completed", "completed"),
        ],
    )
    failed = await add_rfc(
        acme,
        "Move the backups",
        [
            (at("2026-10-12T14:00:00"), "created", "draft"),
            (at("2026-10-28T14:00:00"), "failed", "failed"),
            (at("2026-10-28T16:00:00"), "backed_out", "backed_out"),
        ],
    )
    await add_rfc(
        acme,
        "Old change",
        [(at("2026-09-01T14:00:00"), "created", "draft"), (at("2026-09-20T14:00:00"), "completed", "completed")],
    )
    await add_rfc(
        acme,
        "Withdrawn",
        [(at("2026-10-13T14:00:00"), "created", "draft"), (at("2026-10-15T14:00:00"), "withdrawn", "withdrawn")],
    )
    await add_rfc(acme, "November", [(at("2026-11-02T10:00:00"), "created", "draft")])
    await add_rfc(world.globex.id, "Globex's", [(at("2026-10-12T14:00:00"), "created", "draft")])

    rfcs = (await reports.monthly(world.actors["admin"], "ACME", "2026-10")).data["rfcs"]
    open_states = {item["id"]: item["state"] for item in rfcs["open_at_end"]}
    assert open_states == {waiting: "submitted", later: "approved"}
    assert [item["id"] for item in rfcs["completed"]] == [done]
    assert [(item["id"], item["outcome"]) for item in rfcs["reversed"]] == [(failed, "failed")]
    assert rfcs["counts"] == {"open_at_end": 2, "completed": 1, "reversed": 1}
    assert rfcs["by_state"] == {"submitted": 1, "approved": 1, "completed": 1, "failed": 1}


# --- frozen when issued --------------------------------------------------------------------------


async def test_an_issued_report_is_frozen_and_the_difference_is_shown(world: World) -> None:
    reports, _ = build(world)
    incident = await add_incident(world.acme.id, at("2026-10-10T14:00:00"))
    sam = world.actors["sam"]
    issued = await reports.issue(sam, "ACME", "2026-10")
    assert issued.frozen and issued.data["incidents"]["total"] == 1

    # Records change after issuing: a late entry for October and a resolution.
    world.clock.advance(hours=3)
    await add_incident(world.acme.id, at("2026-10-12T14:00:00"))
    engine = cmdb_repo.engine()
    async with db.atomic(engine):
        await db.fetch(
            engine,
            "UPDATE incident SET resolved_at = ? WHERE id = ?",
            cmdb_repo.bulk_timestamp(at("2026-10-11T14:00:00")),
            incident,
        )

    again = await reports.monthly(world.actors["acme-contact"], "ACME", "2026-10")
    assert again.frozen and again.issued_at == issued.issued_at
    assert again.data == issued.data
    assert again.as_json()["frozen"] is True

    live = await reports.monthly(sam, "ACME", "2026-10", live=True)
    assert not live.frozen and live.data["incidents"]["total"] == 2

    compared = await reports.with_changes(sam, "ACME", "2026-10")
    changes = {c["figure"]: (c["issued"], c["now"]) for c in compared.changes}
    assert changes["Incidents"] == (1, 2)
    assert changes["Incidents resolved"] == (0, 1)

    with pytest.raises(Conflict) as error:
        await reports.issue(sam, "ACME", "2026-10")
    assert error.value.state == "issued"


async def test_issuing_needs_a_finished_month_and_provider_staff(world: World) -> None:
    reports, _ = build(world)
    with pytest.raises(InvalidInput) as error:
        await reports.issue(world.actors["sam"], "ACME", "2026-11")
    assert error.value.problems[0].field == "month" and "not over yet" in error.value.detail
    with pytest.raises(Forbidden):
        await reports.issue(world.actors["acme-contact"], "ACME", "2026-10")


async def test_bad_input_and_other_tenants(world: World) -> None:
    reports, _ = build(world)
    admin = world.actors["admin"]
    with pytest.raises(InvalidInput) as error:
        await reports.monthly(admin, "ACME", "2026-12")
    assert error.value.problems[0].field == "month" and "future" in error.value.detail
    for month in ("2026-13", "October", "", None):
        with pytest.raises(InvalidInput):
            await reports.monthly(admin, "ACME", month)
    with pytest.raises(InvalidInput) as error:
        await reports.monthly(admin, None, "2026-10")
    assert error.value.problems[0].field == "customer"
    with pytest.raises(NotFound):
        await reports.monthly(admin, "NOPE", "2026-10")
    with pytest.raises(NotFound):
        await reports.monthly(world.actors["globex-contact"], "ACME", "2026-10")
    # the current month is a draft of the figures so far
    draft = await reports.monthly(world.actors["acme-contact"], "ACME", "2026-11")
    assert draft.data["draft"] is True and not draft.frozen


# --- the scheduler ---------------------------------------------------------------------------


async def test_the_scheduler_issues_last_month_once_and_notifies_each_contact_once(world: World) -> None:
    reports, notifications = build(world)
    await world.add_person("acme-boss", ["customer"], "ACME")
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"))

    world.clock.set(at("2026-11-01T15:00:00"))  # Sunday: not yet the first business day anywhere
    assert await reports.issue_due(world.clock.now()) == 0

    world.clock.set(at("2026-11-02T15:00:00"))  # Monday 2 November, a business day for both
    assert await reports.issue_due(world.clock.now()) == 2
    world.clock.advance(hours=1)
    assert await reports.issue_due(world.clock.now()) == 0

    for username in ("acme-contact", "acme-boss", "globex-contact"):
        items, total, _ = await notifications.inbox(world.actors[username])
        assert total == 1, username
        assert items[0].kind == "report.monthly" and "October 2026" in items[0].subject
    assert (await notifications.inbox(world.actors["acme-contact"]))[0][0].link == "/reports/monthly/ACME/2026-10"
    frozen = await reports.monthly(world.actors["admin"], "ACME", "2026-10")
    assert frozen.frozen and frozen.issued_by == "scheduler" and frozen.data["incidents"]["total"] == 1


async def test_report_contacts_named_in_the_sla_replace_the_customer_contacts(world: World) -> None:
    reports, notifications = build(world)
    await world.add_person("acme-cfo", ["customer"], "ACME")
    await world.service.update_customer(
        world.actors["admin"], "ACME", {"sla": {"report_contacts": ["acme-cfo"]}}, expected_version=None
    )
    world.clock.set(at("2026-11-02T15:00:00"))
    assert await reports.issue_due(world.clock.now()) == 2
    assert (await notifications.inbox(world.actors["acme-cfo"]))[1] == 1
    assert (await notifications.inbox(world.actors["acme-contact"]))[1] == 0


async def test_report_contacts_get_an_email_when_smtp_is_configured(world: World) -> None:
    mailer = FakeMailer()
    reports, notifications = build(world, mailer)
    await world.add_person("acme-boss", ["customer"], "ACME", email="boss@acme.test")
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"))
    world.clock.set(at("2026-11-02T15:00:00"))
    assert await reports.issue_due(world.clock.now()) == 2
    await notifications.deliver_email(world.clock.now())
    assert [(to, subject) for to, subject, _ in mailer.sent] == [
        ("boss@acme.test", "Your October 2026 service report is ready")
    ]
    assert "In October 2026 we handled one incident for Acme Corp" in mailer.sent[0][2]
    assert "/reports/monthly/ACME/2026-10" in mailer.sent[0][2]


async def test_the_scheduler_issues_in_bounded_rounds(world: World, monkeypatch: Any) -> None:
    import problem.reports

    monkeypatch.setattr(problem.reports, "ISSUE_BATCH", 1)
    reports, _ = build(world)
    world.clock.set(at("2026-11-02T15:00:00"))
    assert await reports.issue_due(world.clock.now()) == 1
    assert await reports.issue_due(world.clock.now()) == 1
    assert await reports.issue_due(world.clock.now()) == 0


async def test_the_app_schedules_the_monthly_reports_job(world: World, clock: FakeClock) -> None:
    from web.app import build_services
    from web.settings import Settings

    services: dict[str, Any] = build_services(Settings(secret_key="x" * 40), clock=clock)
    assert "monthly-reports" in [job.name for job in services["scheduler"].jobs]
    assert isinstance(services["reports"], ReportService)


# --- the command line ----------------------------------------------------------------------------


async def test_keel_report_prints_the_summary_and_writes_the_pdf(world: World, tmp_path: Any) -> None:
    from tests.integration.test_cli import keel

    await add_incident(world.acme.id, at("2026-10-10T14:00:00"), priority="high")
    pdf = tmp_path / "acme.pdf"
    result = keel("report", "ACME", "2026-10", "--pdf", str(pdf))
    assert result.returncode == 0, result.stderr
    assert "Acme Corp (ACME): October 2026, not issued" in result.stdout
    assert "In October 2026 we handled one incident for Acme Corp" in result.stdout
    assert pdf.read_bytes().startswith(b"%PDF")
    as_json = keel("report", str(world.acme.id), "2026-10", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["incidents"]["total"] == 1
    future = keel("report", "ACME", "2030-01")
    assert future.returncode == 2 and "month" in future.stderr
    unknown = keel("report", "NOPE", "2026-10")
    assert unknown.returncode == 1 and "customer" in unknown.stderr
