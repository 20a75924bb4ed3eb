"""Administrative escalation of incidents: at the SLA's escalation share to the service
manager, at breach to the executive level; exactly once each, in one process run repeatedly
and across two `keel scheduler --once` processes on one database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cmdb.scheduler import Scheduler
from cmdb.tables import NotificationTable, SchedulerLeaseTable
from tests.integration.test_incidents import build_desk
from tests.support import FakeClock, World

UTC = dt.UTC
KEEL = Path(sys.executable).parent / "keel"


async def _kinds(person_id: int | None) -> list[str]:
    rows = (
        await NotificationTable.select(NotificationTable.kind)
        .where((NotificationTable.person == person_id) & NotificationTable.kind.like("incident.%"))
        .order_by(NotificationTable.id)
    )
    return [row["kind"] for row in rows]


async def test_warning_then_breach_once_each(world: World, clock: FakeClock) -> None:
    desk = build_desk(world)
    eve, sam, admin = world.actors["eve"], world.actors["sam"], world.actors["admin"]
    server = await world.ci("ACME", "erp-server")
    # Critical at 09:00 New York: response 1 business hour, resolution 4.
    incident = await desk.incidents.create(
        eve, {"customer": "ACME", "title": "ERP down", "cis": [server.id], "priority": "critical"}
    )
    run = desk.incidents.escalate_due
    assert await run(dt.datetime(2026, 11, 2, 14, 44, tzinfo=UTC)) == 0
    assert await run(dt.datetime(2026, 11, 2, 14, 45, tzinfo=UTC)) == 1  # 75 % of the hour
    assert await run(dt.datetime(2026, 11, 2, 14, 50, tzinfo=UTC)) == 0
    assert await _kinds(sam.person_id) == ["incident.response_warning"]
    assert await run(dt.datetime(2026, 11, 2, 15, 0, tzinfo=UTC)) == 1
    assert await _kinds(admin.person_id) == ["incident.response_breach"]
    clock.set(dt.datetime(2026, 11, 2, 15, 10, tzinfo=UTC))
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    assert await run(dt.datetime(2026, 11, 2, 16, 59, tzinfo=UTC)) == 0
    assert await run(dt.datetime(2026, 11, 2, 17, 0, tzinfo=UTC)) == 1  # 3 of 4 business hours
    assert await run(dt.datetime(2026, 11, 2, 18, 0, tzinfo=UTC)) == 1
    assert await run(dt.datetime(2026, 11, 2, 19, 0, tzinfo=UTC)) == 0
    assert await _kinds(sam.person_id) == ["incident.response_warning", "incident.resolution_warning"]
    assert await _kinds(admin.person_id) == ["incident.response_breach", "incident.resolution_breach"]
    clock.set(dt.datetime(2026, 11, 2, 19, 0, tzinfo=UTC))
    view = await desk.incidents.get(sam, incident.key)
    assert [e.level for e in view.escalations] == [
        "response_warning",
        "response_breach",
        "resolution_warning",
        "resolution_breach",
    ]
    assert view.sla.resolution.state == "breached"
    history = await desk.incidents.history(sam, incident.key)
    assert [(h.after or {})["level"] for h in history if h.action == "escalated"] == [e.level for e in view.escalations]


async def test_share_from_the_sla_and_no_escalation_while_paused(world: World, clock: FakeClock) -> None:
    desk = build_desk(world)
    eve, sam = world.actors["eve"], world.actors["sam"]
    await world.service.update_customer(world.actors["admin"], "ACME", {"sla": {"escalation_share": 0.5}}, None)
    server = await world.ci("ACME", "erp-server")
    incident = await desk.incidents.create(
        eve, {"customer": "ACME", "title": "ERP slow", "cis": [server.id], "priority": "high"}
    )
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    run = desk.incidents.escalate_due
    # High: resolution 8 business hours from 09:00; half is 13:00 New York (18:00 UTC).
    clock.set(dt.datetime(2026, 11, 2, 15, 0, tzinfo=UTC))
    await desk.incidents.act(eve, incident.key, "hold", {"reason": "customer"})
    assert await run(dt.datetime(2026, 11, 2, 18, 0, tzinfo=UTC)) == 0  # paused
    assert await run(dt.datetime(2026, 11, 3, 18, 0, tzinfo=UTC)) == 0
    clock.set(dt.datetime(2026, 11, 2, 17, 0, tzinfo=UTC))  # two business hours on hold
    resumed = await desk.incidents.act(eve, incident.key, "resume", {})
    assert resumed.resolution_due == dt.datetime(2026, 11, 3, 16, 0, tzinfo=UTC)
    assert await run(dt.datetime(2026, 11, 2, 19, 59, tzinfo=UTC)) == 0
    assert await run(dt.datetime(2026, 11, 2, 20, 0, tzinfo=UTC)) == 1  # half plus the pause
    assert await _kinds(sam.person_id) == ["incident.resolution_warning"]


async def test_levels_template_has_no_resolution_target_for_level_1(world: World, clock: FakeClock) -> None:
    desk = build_desk(world)
    eve, sam = world.actors["eve"], world.actors["sam"]
    await world.service.update_customer(world.actors["admin"], "GLOBEX", {"sla": {"incident_template": "levels"}}, None)
    web = await world.ci("GLOBEX", "globex-web")
    incident = await desk.incidents.create(
        eve, {"customer": "GLOBEX", "title": "Shop down", "cis": [web.id], "priority": "critical"}
    )
    assert incident.response_level is not None and incident.response_level.value == "level_1"
    assert incident.response_due == dt.datetime(2026, 11, 2, 14, 15, tzinfo=UTC) and incident.resolution_due is None
    run = desk.incidents.escalate_due
    assert await run(dt.datetime(2026, 11, 2, 14, 12, tzinfo=UTC)) == 1  # 11.25 of 15 minutes
    assert await run(dt.datetime(2026, 11, 2, 14, 15, tzinfo=UTC)) == 1
    clock.set(dt.datetime(2026, 11, 2, 14, 20, tzinfo=UTC))
    await desk.incidents.act(eve, incident.key, "acknowledge", {})
    # Ongoing escalation until resolved: every 4 business hours from 14:00 London (3 hours to
    # the 17:00 close), so at 10:00 and 14:00 the next day.
    assert await run(dt.datetime(2026, 11, 3, 9, 59, tzinfo=UTC)) == 0
    assert await run(dt.datetime(2026, 11, 3, 10, 0, tzinfo=UTC)) == 1
    assert await run(dt.datetime(2026, 11, 3, 13, 59, tzinfo=UTC)) == 0
    assert await run(dt.datetime(2026, 11, 3, 14, 0, tzinfo=UTC)) == 1
    assert await _kinds(sam.person_id) == ["incident.response_warning", "incident.ongoing_1", "incident.ongoing_2"]
    clock.set(dt.datetime(2026, 11, 3, 15, 0, tzinfo=UTC))
    await desk.incidents.act(eve, incident.key, "resolve", {"details": "d", "actions_taken": "a"})
    assert await run(dt.datetime(2026, 11, 9, 14, 15, tzinfo=UTC)) == 0  # resolved: no more


async def test_scheduler_job_is_wired(world: World, clock: FakeClock) -> None:
    desk = build_desk(world)
    server = await world.ci("ACME", "erp-server")
    await desk.incidents.create(
        world.actors["eve"], {"customer": "ACME", "title": "ERP down", "cis": [server.id], "priority": "critical"}
    )
    clock.set(dt.datetime(2026, 11, 3, 14, 0, tzinfo=UTC))
    scheduler = Scheduler(clock, desk.incidents.jobs(), holder="one")
    assert await scheduler.run_due(force=True) == {"incident-escalation": 4}
    assert await scheduler.run_due(force=True) == {"incident-escalation": 0}


def start_scheduler_once() -> subprocess.Popen[str]:
    command = [str(KEEL)] if KEEL.exists() else [sys.executable, "-m", "web.cli"]
    return subprocess.Popen(
        [*command, "scheduler", "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


async def run_two_at_once() -> list[str]:
    processes = [start_scheduler_once(), start_scheduler_once()]
    outputs = []
    for process in processes:
        out, err = await asyncio.to_thread(process.communicate, timeout=180)
        outputs.append(out + err)
    return outputs


async def test_two_scheduler_processes_escalate_each_incident_once(world: World, clock: FakeClock) -> None:
    """Incidents received a day before the real now: every target breached for the
    subprocesses, which run on the system clock."""
    clock.set(dt.datetime.now(UTC) - dt.timedelta(days=3))
    desk = build_desk(world)
    await world.add_person("sally", ["service_manager"])
    server = await world.ci("ACME", "erp-server")
    keys = []
    for n in range(3):
        incident = await desk.incidents.create(
            world.actors["eve"], {"customer": "ACME", "title": f"ERP down {n}", "cis": [server.id], "priority": "high"}
        )
        keys.append(incident.key)
    outputs = await run_two_at_once()
    assert any("incident-escalation:" in out for out in outputs), outputs
    assert all("incident-escalation: failed" not in out for out in outputs), outputs
    await SchedulerLeaseTable.delete(force=True)
    await run_two_at_once()  # both may work now; still nothing twice
    await SchedulerLeaseTable.delete(force=True)
    rows = await NotificationTable.select(
        NotificationTable.person, NotificationTable.kind, NotificationTable.link
    ).where(NotificationTable.kind.like("incident.%_%"))
    per_recipient = Counter((row["person"], row["kind"], row["link"]) for row in rows)
    assert per_recipient and set(per_recipient.values()) == {1}, per_recipient
    managers = {world.actors["sam"].person_id, world.actors["sally"].person_id}
    for key in keys:
        for level, audience in (
            ("response_warning", managers),
            ("response_breach", {world.actors["admin"].person_id}),
            ("resolution_warning", managers),
            ("resolution_breach", {world.actors["admin"].person_id}),
        ):
            got = {r["person"] for r in rows if r["kind"] == f"incident.{level}" and r["link"].endswith(key)}
            assert got == audience, (key, level, got)
    history = await desk.incidents.history(world.actors["sam"], keys[0])
    assert Counter((h.after or {})["level"] for h in history if h.action == "escalated") == Counter(
        {"response_warning": 1, "response_breach": 1, "resolution_warning": 1, "resolution_breach": 1}
    )
