"""Patch urgency through PatchService on the database: due times in each customer's calendar,
SLA overrides, states, the board, compliance, and escalation exactly once (inbox and email)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from change.models import RFC
from change.services import ChangeService
from cmdb.errors import InvalidInput, NotFound
from cmdb.notifications import NotificationService
from release.patches import ESCALATION_KIND, NotAPatch, PatchService
from release.tables import ReleaseRFCTable, ReleaseTable
from release.urgency import PatchState
from tests.support import FakeClock, World

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@dataclass
class Kit:
    world: World
    change: ChangeService
    notifications: NotificationService
    patches: PatchService
    cis: dict[str, Any]

    async def patch(
        self, customer: str, level: str, available_at: str | None = None, title: str = "Patch", ci: str | None = None
    ) -> RFC:
        data: dict[str, Any] = {
            "customer": customer,
            "title": title,
            "cis": [self.cis[ci or customer].id],
            "urgency": level,
        }
        if available_at is not None:
            data["available_at"] = available_at
        return await self.change.create(self.world.actors["eve"], data)


@pytest.fixture
async def kit(world: World, clock: FakeClock) -> Kit:
    change = ChangeService(clock, world.service)
    notifications = NotificationService(clock)
    patches = PatchService(clock, world.service, notifications)
    cis = {"ACME": await world.ci("ACME", "acme-web"), "GLOBEX": await world.ci("GLOBEX", "globex-db", "database")}
    cis["ACME2"] = await world.ci("ACME", "acme-mail")
    return Kit(world, change, notifications, patches, cis)


async def approve_in_release(rfc: RFC, approved_at: dt.datetime, state: str = "approved") -> None:
    """A release holding the RFC, approved at `approved_at` (release management's own workflow
    is tested elsewhere; here only its approval time matters)."""
    rows = await ReleaseTable.insert(
        ReleaseTable(
            key=f"REL-T-{rfc.id}",
            tenant=rfc.tenant_id,
            title="Patch release",
            state=state,
            approved_at=approved_at,
            created_at=approved_at,
            updated_at=approved_at,
        )
    ).returning(ReleaseTable.id)
    await ReleaseRFCTable.insert(ReleaseRFCTable(release=rows[0]["id"], rfc=rfc.id, added_at=approved_at))


# --- due times and states ---------------------------------------------------------------------


async def test_critical_patch_is_due_three_business_days_later_at_the_same_local_time(kit: Kit) -> None:
    # Monday 2 November 2026, 09:00 in New York (EST, UTC-5).
    rfc = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    view = await kit.patches.urgency(kit.world.actors["eve"], rfc.key)
    assert view.level == "critical" and view.clock_start == at("2026-11-02T14:00:00+00:00")
    assert view.due == at("2026-11-05T09:00:00-05:00")
    assert view.state is PatchState.ON_TRACK and view.share_used == 0
    # 75 % of 24 business hours is 18: Monday 8 h, Tuesday 8 h, Wednesday 09:00-11:00.
    assert view.at_risk_from == at("2026-11-04T11:00:00-05:00")


async def test_state_moves_from_on_track_to_at_risk_to_overdue(kit: Kit, clock: FakeClock) -> None:
    rfc = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    eve = kit.world.actors["eve"]
    clock.set(at("2026-11-04T10:59:59-05:00"))
    assert (await kit.patches.urgency(eve, rfc.id)).state is PatchState.ON_TRACK
    clock.set(at("2026-11-04T11:00:00-05:00"))
    view = await kit.patches.urgency(eve, rfc.id)
    assert view.state is PatchState.AT_RISK and view.share_used == pytest.approx(0.75)
    clock.set(at("2026-11-05T09:00:00-05:00"))
    assert (await kit.patches.urgency(eve, rfc.id)).state is PatchState.AT_RISK  # due, not yet past
    clock.set(at("2026-11-05T09:00:01-05:00"))
    assert (await kit.patches.urgency(eve, rfc.id)).state is PatchState.OVERDUE


async def test_start_outside_business_hours_counts_from_the_next_opening(kit: Kit) -> None:
    # Saturday 31 October, noon in London: counting starts Monday 09:00.
    rfc = await kit.patch("GLOBEX", "important", "2026-10-31T12:00:00+00:00")
    view = (await kit.patches.urgency_for_rfcs([rfc.id]))[rfc.id]
    assert view.due == at("2026-11-16T09:00:00+00:00")  # 10 business days after Monday 2 November


async def test_clock_starts_when_recorded_if_availability_is_unknown(kit: Kit, clock: FakeClock) -> None:
    clock.set(at("2026-11-02T15:30:00+00:00"))  # 10:30 in New York
    rfc = await kit.patch("ACME", "critical")
    view = (await kit.patches.urgency_for_rfcs([rfc.id]))[rfc.id]
    assert view.clock_start == at("2026-11-02T15:30:00+00:00")
    assert view.due == at("2026-11-05T10:30:00-05:00")


async def test_month_deadlines_roll_forward_to_the_next_business_day(kit: Kit) -> None:
    # Saturday 31 October 2026 + 3 months = Sunday 31 January 2027 -> Monday 1 February, due at its close.
    moderate = await kit.patch("GLOBEX", "moderate", "2026-10-31T12:00:00+00:00")
    # A year after Monday 2 November 2026 is Tuesday 2 November 2027.
    major = await kit.patch("ACME", "major_revision", "2026-11-02T14:00:00+00:00")
    views = await kit.patches.urgency_for_rfcs([moderate.id, major.id])
    assert views[moderate.id].due == at("2027-02-01T17:00:00+00:00")
    assert views[major.id].due == at("2027-11-02T17:00:00-04:00")  # EDT again by then


async def test_customer_sla_overrides_the_schedule_and_the_at_risk_share(kit: Kit) -> None:
    admin = kit.world.actors["admin"]
    await kit.world.service.update_customer(
        admin,
        "GLOBEX",
        {"sla": {"patch_schedule": {"critical": {"business_days": 2}}, "patch_at_risk_share": 0.5}},
        None,
    )
    globex = await kit.patch("GLOBEX", "critical", "2026-11-02T09:00:00+00:00")
    acme = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    views = await kit.patches.urgency_for_rfcs([globex.id, acme.id])
    assert views[globex.id].due == at("2026-11-04T09:00:00+00:00")
    # Half of 16 business hours is used up at Monday's closing time, not at Tuesday's opening.
    assert views[globex.id].at_risk_from == at("2026-11-02T17:00:00+00:00")
    assert views[acme.id].due == at("2026-11-05T14:00:00+00:00")  # ACME keeps the default


async def test_a_release_approval_meets_the_patch_on_time_or_late(kit: Kit, clock: FakeClock) -> None:
    on_time = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    late = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", ci="ACME2")
    await approve_in_release(on_time, at("2026-11-04T12:00:00+00:00"))
    await approve_in_release(late, at("2026-11-06T12:00:00+00:00"), state="deployed")
    clock.set(at("2026-11-10T12:00:00+00:00"))
    views = await kit.patches.urgency_for_rfcs([on_time.id, late.id])
    assert views[on_time.id].state is PatchState.MET and views[on_time.id].met_on_time is True
    assert views[on_time.id].met_at == at("2026-11-04T12:00:00+00:00")
    assert views[late.id].state is PatchState.MET and views[late.id].met_on_time is False


async def test_urgency_of_a_non_patch_or_another_tenants_rfc_is_not_found(kit: Kit) -> None:
    plain = await kit.change.create(
        kit.world.actors["eve"], {"customer": "ACME", "title": "Not a patch", "cis": [kit.cis["ACME"].id]}
    )
    with pytest.raises(NotAPatch, match="not a patch"):
        await kit.patches.urgency(kit.world.actors["eve"], plain.key)
    rfc = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    with pytest.raises(NotFound):
        await kit.patches.urgency(kit.world.actors["globex-contact"], rfc.key)
    assert (await kit.patches.urgency(kit.world.actors["acme-contact"], rfc.key)).key == rfc.key
    assert await kit.patches.urgency_for_rfcs([plain.id]) == {}


# --- the board ----------------------------------------------------------------------------------


async def test_board_lists_open_patches_by_due_time_and_excludes_rejected_and_withdrawn(
    kit: Kit, clock: FakeClock
) -> None:
    important = await kit.patch("GLOBEX", "important", "2026-11-02T09:00:00+00:00", title="Important")
    critical = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", title="Critical")
    low = await kit.patch("ACME", "low", "2026-11-01T14:00:00+00:00", title="Low")
    withdrawn = await kit.patch("ACME", "critical", "2026-11-01T14:00:00+00:00", title="Withdrawn")
    await kit.change.act(kit.world.actors["eve"], withdrawn.id, "withdraw", {})
    met = await kit.patch("ACME", "critical", "2026-11-01T14:00:00+00:00", title="Met")
    await approve_in_release(met, at("2026-11-02T13:00:00+00:00"))
    staff = kit.world.actors["sam"]
    rows, total, counts = await kit.patches.board(staff)
    assert [row.urgency.key for row in rows] == [critical.key, important.key, low.key]
    assert total == 3 and counts == {"on_track": 3, "at_risk": 0, "overdue": 0, "met": 1}
    assert rows[0].customer_key == "ACME" and rows[0].title == "Critical"
    rows, total, _ = await kit.patches.board(staff, states=["met"])
    assert [row.urgency.key for row in rows] == [met.key]
    rows, _, _ = await kit.patches.board(staff, customer="GLOBEX")
    assert [row.urgency.key for row in rows] == [important.key]
    rows, total, _ = await kit.patches.board(kit.world.actors["acme-contact"])
    assert {row.customer_key for row in rows} == {"ACME"} and total == 2
    with pytest.raises(NotFound):
        await kit.patches.board(kit.world.actors["acme-contact"], customer="GLOBEX")
    with pytest.raises(InvalidInput, match="state"):
        await kit.patches.board(staff, states=["late"])
    clock.set(at("2026-11-06T12:00:00+00:00"))
    rows, _, counts = await kit.patches.board(staff, states=["overdue"], limit=1, offset=0)
    assert [row.urgency.key for row in rows] == [critical.key] and counts["overdue"] == 1


# --- escalation ---------------------------------------------------------------------------------


async def _inbox_kinds(kit: Kit, username: str) -> list[tuple[str, str]]:
    items, _, _ = await kit.notifications.inbox(kit.world.actors[username], limit=100)
    return sorted((item.kind, item.link) for item in items)


async def test_escalation_notifies_each_level_exactly_once(kit: Kit, clock: FakeClock) -> None:
    rfc = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    assert await kit.patches.escalate(clock.now()) == 0
    clock.set(at("2026-11-04T11:30:00-05:00"))  # at risk
    assert await kit.patches.escalate(clock.now()) == 1
    assert await kit.patches.escalate(clock.now()) == 0
    assert await _inbox_kinds(kit, "sam") == [("rfc_patch.at_risk", f"/changes/{rfc.key}")]
    assert await _inbox_kinds(kit, "admin") == []
    clock.set(at("2026-11-05T10:00:00-05:00"))  # overdue
    assert await kit.patches.escalate(clock.now()) == 1
    # A second service (another process) and a concurrent round add nothing.
    other = PatchService(clock, kit.world.service, NotificationService(clock))
    assert await asyncio.gather(other.escalate(clock.now()), kit.patches.escalate(clock.now())) == [0, 0]
    assert await _inbox_kinds(kit, "sam") == [("rfc_patch.at_risk", f"/changes/{rfc.key}")]
    assert await _inbox_kinds(kit, "admin") == [("rfc_patch.overdue", f"/changes/{rfc.key}")]
    raised = await kit.notifications.escalations(ESCALATION_KIND, [rfc.id])
    assert [e.level for e in raised[rfc.id]] == ["at_risk", "overdue"]


async def test_an_overdue_patch_never_seen_at_risk_raises_both_levels(kit: Kit, clock: FakeClock) -> None:
    rfc = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    clock.set(at("2026-11-09T12:00:00+00:00"))
    assert await kit.patches.escalate(clock.now()) == 2
    assert await _inbox_kinds(kit, "sam") == [("rfc_patch.at_risk", f"/changes/{rfc.key}")]
    assert await _inbox_kinds(kit, "admin") == [("rfc_patch.overdue", f"/changes/{rfc.key}")]


async def test_met_withdrawn_and_on_track_patches_do_not_escalate(kit: Kit, clock: FakeClock) -> None:
    met = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    await approve_in_release(met, at("2026-11-03T12:00:00+00:00"))
    withdrawn = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00")
    await kit.change.act(kit.world.actors["eve"], withdrawn.id, "withdraw", {})
    await kit.patch("ACME", "major_revision", "2026-11-02T14:00:00+00:00")
    clock.set(at("2026-11-09T12:00:00+00:00"))
    assert await kit.patches.escalate(clock.now()) == 0


async def test_escalations_go_out_by_email_when_smtp_is_configured(kit: Kit, clock: FakeClock) -> None:
    await kit.world.add_person("sally", ["service_manager"], email="sally@example.com")
    mailer = RecordingMailer()
    notifications = NotificationService(clock, mailer)
    patches = PatchService(clock, kit.world.service, notifications)
    rfc = await kit.patch("GLOBEX", "critical", "2026-11-02T09:00:00+00:00")
    clock.set(at("2026-11-04T15:00:00+00:00"))
    assert await patches.escalate(clock.now()) == 1
    assert mailer.sent == []  # never inside the transaction: the outbox sends later
    assert await notifications.deliver_email(clock.now()) == 1
    [(to, subject, body)] = mailer.sent
    assert to == "sally@example.com"
    assert rfc.key in subject and "at risk" in subject
    assert f"/changes/{rfc.key}" in body
    assert await notifications.deliver_email(clock.now()) == 0


async def test_the_job_is_registered_every_five_minutes(kit: Kit) -> None:
    [job] = kit.patches.jobs()
    assert job.name == "patch-escalation" and job.every == dt.timedelta(minutes=5)


# --- compliance ---------------------------------------------------------------------------------


async def test_compliance_counts_met_on_time_and_lists_lacking_cis(kit: Kit, clock: FakeClock) -> None:
    on_time = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", title="On time")
    late = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", title="Late", ci="ACME2")
    unmet = await kit.patch("ACME", "important", "2026-11-02T14:00:00+00:00", title="Unmet")
    forgotten = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", title="Forgotten")
    withdrawn = await kit.patch("ACME", "critical", "2026-11-02T14:00:00+00:00", title="Withdrawn")
    await kit.change.act(kit.world.actors["eve"], withdrawn.id, "withdraw", {})
    await approve_in_release(on_time, at("2026-11-04T12:00:00+00:00"))
    await approve_in_release(late, at("2026-11-18T12:00:00+00:00"))
    clock.set(at("2026-11-20T12:00:00+00:00"))
    # Thursday 19 November, 09:00 in New York: due Tuesday 24 November, later this month.
    await kit.patch("ACME", "critical", "2026-11-19T14:00:00+00:00", title="Pending")
    # Next month's: a moderate patch due in February does not count for November.
    await kit.patch("ACME", "moderate", "2026-11-02T14:00:00+00:00", title="Moderate")
    result = await kit.patches.compliance(kit.world.actors["sam"], "ACME", "2026-11")
    # Unmet: the important patch (due 17 November, Veterans Day skipped) and the forgotten one.
    assert (result.due, result.met_on_time, result.met_late, result.unmet, result.pending) == (4, 1, 1, 2, 1)
    assert result.share_met_on_time == pytest.approx(0.25)
    assert result.by_level["important"] == {"unmet": 1, "due": 1}
    lacking = [(item.rfc_key, item.ci_name) for item in result.lacking]
    assert lacking == [(forgotten.key, "acme-web"), (unmet.key, "acme-web")]
    assert all(item.rfc_key != withdrawn.key for item in result.lacking)
    data = result.as_dict()
    assert data["customer"] == "ACME" and data["month"] == "2026-11" and data["share_met_on_time"] == 0.25
    assert data["counts"]["due"] == 4 and data["lacking"][0]["due"]


async def test_compliance_refuses_future_months_and_other_tenants(kit: Kit) -> None:
    with pytest.raises(InvalidInput, match="month"):
        await kit.patches.compliance(kit.world.actors["sam"], "ACME", "2026-12")
    with pytest.raises(InvalidInput, match="month"):
        await kit.patches.compliance(kit.world.actors["sam"], "ACME", "2026-13")
    with pytest.raises(NotFound):
        await kit.patches.compliance(kit.world.actors["sam"], "NOPE", "2026-11")
    with pytest.raises(NotFound):
        await kit.patches.compliance(kit.world.actors["acme-contact"], "GLOBEX", "2026-11")
    with pytest.raises(InvalidInput, match="customer"):
        await kit.patches.compliance(kit.world.actors["sam"], None, "2026-11")
    own = await kit.patches.compliance(kit.world.actors["acme-contact"], None, None)
    assert own.customer_key == "ACME" and own.month == "2026-11" and own.share_met_on_time is None


# --- the command line -----------------------------------------------------------------------------


def keel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


async def test_keel_patches_due_prints_the_board(kit: Kit, clock: FakeClock) -> None:
    real_now = dt.datetime.now(UTC)  # the command runs on the system clock
    clock.set(real_now)
    overdue = await kit.patch("ACME", "critical", (real_now - dt.timedelta(days=30)).isoformat(), title="Old hole")
    on_track = await kit.patch("GLOBEX", "moderate", (real_now - dt.timedelta(days=1)).isoformat(), title="Bundle")
    result = await asyncio.to_thread(keel, "patches", "due")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["KEY", "CUSTOMER", "LEVEL", "DUE", "(UTC)", "STATE"]
    assert lines[1].split()[:3] == [overdue.key, "ACME", "critical"] and "overdue" in lines[1]
    assert lines[2].split()[:3] == [on_track.key, "GLOBEX", "moderate"] and "on_track" in lines[2]
    assert "2 of 2 patch(es)" in lines[-1]
    only = await asyncio.to_thread(keel, "patches", "due", "--customer", "GLOBEX", "--state", "on_track")
    assert only.returncode == 0 and overdue.key not in only.stdout and on_track.key in only.stdout
    bad = await asyncio.to_thread(keel, "patches", "due", "--state", "late")
    assert bad.returncode == 2 and "state" in bad.stderr
