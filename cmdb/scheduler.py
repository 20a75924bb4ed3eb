"""Scheduled jobs (escalations, email delivery, monthly reports) run by one process at a time.

Every app process may run a `Scheduler`; a lease row in the database decides which one works.
The holder renews the lease on each tick; if it dies, another takes over once the lease
expires. The lease saves duplicate work; it is not what makes an escalation exactly-once:
that is the unique escalation row (`NotificationService.escalate_once`), so even two holders
at once (a paused process waking after its lease expired) cannot send a duplicate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cmdb import repository as repo
from cmdb.db import atomic
from cmdb.services import Clock
from cmdb.tables import SchedulerLeaseTable

log = logging.getLogger("keel.scheduler")


@dataclass(frozen=True)
class Job:
    """`run(now)` does one round of the job and answers how many things it acted on."""

    name: str
    every: dt.timedelta
    run: Callable[[dt.datetime], Awaitable[int]]


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{id(object()):x}"


async def take_lease(name: str, holder: str, now: dt.datetime, seconds: float) -> bool:
    """Take or renew the lease `name` for `holder` until now + seconds; False if another
    holder's lease is still running. One conditional write, so two takers cannot both win."""
    expires = now + dt.timedelta(seconds=seconds)
    async with atomic(repo.engine()):
        renewed = (
            await SchedulerLeaseTable.update(
                {SchedulerLeaseTable.holder: holder, SchedulerLeaseTable.expires_at: expires}
            )
            .where(
                (SchedulerLeaseTable.name == name)
                & ((SchedulerLeaseTable.holder == holder) | (SchedulerLeaseTable.expires_at < now))
            )
            .returning(SchedulerLeaseTable.name)
        )
        if renewed:
            return True
        created = (
            await SchedulerLeaseTable.insert(SchedulerLeaseTable(name=name, holder=holder, expires_at=expires))
            .on_conflict(action="DO NOTHING")
            .returning(SchedulerLeaseTable.name)
        )
        return bool(created)


async def release_lease(name: str, holder: str) -> None:
    async with atomic(repo.engine()):
        await SchedulerLeaseTable.delete().where(
            (SchedulerLeaseTable.name == name) & (SchedulerLeaseTable.holder == holder)
        )


@dataclass
class Scheduler:
    clock: Clock
    jobs: Sequence[Job]
    holder: str = field(default_factory=default_holder)
    lease_name: str = "scheduler"
    lease_seconds: float = 60.0
    _last_run: dict[str, dt.datetime] = field(default_factory=dict)

    async def run_due(self, force: bool = False) -> dict[str, int] | None:
        """One tick: None when another process holds the lease, else what each job that was
        due did. `force` runs every job regardless of its interval (CLI, tests)."""
        now = self.clock.now()
        if not await take_lease(self.lease_name, self.holder, now, self.lease_seconds):
            return None
        done: dict[str, int] = {}
        for job in self.jobs:
            last = self._last_run.get(job.name)
            if not force and last is not None and now - last < job.every:
                continue
            try:
                done[job.name] = await job.run(now)
            except Exception:  # one broken job must not stop escalations of the others
                log.exception("scheduled job %s failed", job.name)
                done[job.name] = -1
            self._last_run[job.name] = now
        return done

    async def run_forever(self, tick_seconds: float = 15.0) -> None:
        try:
            while True:
                try:
                    await self.run_due()
                except Exception:
                    log.exception("scheduler tick failed")
                await asyncio.sleep(tick_seconds)
        finally:
            try:
                await release_lease(self.lease_name, self.holder)
            except Exception:  # shutting down: the lease expires on its own
                log.debug("could not release the scheduler lease", exc_info=True)
