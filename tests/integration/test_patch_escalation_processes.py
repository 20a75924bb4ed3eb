"""Patch escalation exactly once across processes: two `keel scheduler --once` processes started
together on the test database (SQLite file or PostgreSQL, whichever KEEL_DATABASE_URL names),
then two more after the scheduler lease is dropped, and every recipient still holds exactly one
notification per patch and level."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from change.services import ChangeService
from cmdb.notifications import NotificationService
from cmdb.scheduler import Scheduler
from cmdb.tables import NotificationTable, SchedulerLeaseTable
from release.patches import ESCALATION_KIND, PatchService
from tests.support import FakeClock, World

KEEL = Path(sys.executable).parent / "keel"


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


async def seed(world: World, clock: FakeClock) -> list[int]:
    """Patches whose clocks started a month before the real now: overdue for the subprocesses,
    which run on the system clock."""
    real_now = dt.datetime.now(dt.UTC)
    clock.set(real_now)
    change = ChangeService(clock, world.service)
    server = await world.ci("ACME", "acme-web")
    app = await world.ci("GLOBEX", "globex-app", "application")
    ids = []
    for customer, ci, level in (("ACME", server, "critical"), ("GLOBEX", app, "important"), ("ACME", server, "low")):
        rfc = await change.create(
            world.actors["eve"],
            {
                "customer": customer,
                "title": f"{level} patch",
                "cis": [ci.id],
                "urgency": level,
                "available_at": (real_now - dt.timedelta(days=30)).isoformat(),
            },
        )
        ids.append(rfc.id)
    await world.add_person("sally", ["service_manager"])
    return ids


async def test_two_scheduler_processes_escalate_each_patch_once(world: World, clock: FakeClock) -> None:
    critical, important, low = await seed(world, clock)
    outputs = await run_two_at_once()
    ran = [out for out in outputs if "patch-escalation:" in out]
    assert len(ran) >= 1, outputs
    assert all("patch-escalation: failed" not in out for out in outputs), outputs
    # Drop the lease: both processes may now work, and still nothing is sent twice.
    await SchedulerLeaseTable.delete(force=True)
    await run_two_at_once()
    await SchedulerLeaseTable.delete(force=True)

    rows = await NotificationTable.select(
        NotificationTable.person, NotificationTable.kind, NotificationTable.link
    ).where(NotificationTable.kind.like(f"{ESCALATION_KIND}.%"))
    per_recipient = Counter((row["person"], row["kind"], row["link"]) for row in rows)
    assert per_recipient and set(per_recipient.values()) == {1}, per_recipient
    managers = {world.actors["sam"].person_id, world.actors["sally"].person_id}
    executives = {world.actors["admin"].person_id}
    keys = {row["link"].rsplit("/", 1)[1] for row in rows}
    assert len(keys) == 2  # the critical and the important patch; the low one has months to go
    for level, audience in (("at_risk", managers), ("overdue", executives)):
        for key in keys:
            got = {row["person"] for row in rows if row["kind"] == f"{ESCALATION_KIND}.{level}" and key in row["link"]}
            assert got == audience, (level, key, got)
    raised = await NotificationService(clock).escalations(ESCALATION_KIND, [critical, important, low])
    assert [e.level for e in raised[critical]] == ["at_risk", "overdue"]
    assert [e.level for e in raised[important]] == ["at_risk", "overdue"]
    assert raised[low] == []


async def test_two_schedulers_in_one_process_share_the_lease(world: World, clock: FakeClock) -> None:
    await seed(world, clock)
    schedulers = [
        Scheduler(clock, PatchService(clock, world.service, NotificationService(clock)).jobs(), holder=name)
        for name in ("one", "two")
    ]
    results = await asyncio.gather(*(s.run_due(force=True) for s in schedulers))
    assert sorted(r is None for r in results) == [False, True]  # one holds the lease, one waits
    worked = next(r for r in results if r is not None)
    assert worked == {"patch-escalation": 4}
    rows = await NotificationTable.select(NotificationTable.person, NotificationTable.kind)
    assert len(rows) == 2 * 2 + 2 * 1  # two patches: two service managers at risk, one executive overdue
