"""The browser tests' data: a fresh database with the people and records each journey needs.

Run as `python -m tests.browser.seed` with KEEL_DATABASE_URL naming an empty SQLite file; it
migrates, loads the data through Keel's own services and prints one JSON object (the `Seeded`
facts: ids, keys, usernames and passwords) that the tests read.

To add a journey's data (incidents, a month's report...), write an `async def step(seed)` that
makes its records through the services and stores what the test needs in `seed.facts`, and add
it to STEPS. Steps run in order in one process, on one clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from change.services import ChangeService
from cmdb import repository as repo
from cmdb.db import KeelSQLiteEngine
from cmdb.graphcache import GraphCache
from cmdb.models import Actor, Customer, Person
from cmdb.notifications import NotificationService
from cmdb.services import CIInput, CMDBService, ensure_provider
from incident.models import Incident
from incident.services import IncidentService
from release.services import ReleaseService

PROVIDER_KEY = "PROVIDER"  # web.settings.Settings' default, which `keel serve` uses
RFC_TEXT = {
    "need": "The ERP database runs out of disk in two weeks.",
    "desired_result": "Data volume grown to 2 TB with no data loss.",
    "plan": "Extend the LUN, grow the volume, verify the database.",
    "backout_plan": "Restore the snapshot taken before the change.",
}


# The data is made as if 40 days ago, so the month before this one is over and holds the
# customers' first month: the portal lists its report. Steps may move the clock on.
HISTORY = dt.timedelta(days=40)


class SeedClock:
    """The services' clock while seeding: starts HISTORY ago, moved on by the steps."""

    def __init__(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += dt.timedelta(**delta)


@dataclass
class Seed:
    clock: SeedClock
    cmdb: CMDBService
    change: ChangeService
    incidents: IncidentService
    provider: Customer
    actors: dict[str, Actor] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    async def person(self, username: str, roles: list[str], customer: str | None = None) -> Actor:
        password = f"{username}-password"
        person: Person = await self.cmdb.create_person(
            None,
            {
                "username": username,
                "name": username.replace("-", " ").title(),
                "roles": roles,
                "customer": customer,
                "password": password,
            },
        )
        actor = Actor(person.id, person.username, person.name, person.tenant_id, self.provider.id, person.roles)
        self.actors[username] = actor
        self.facts.setdefault("passwords", {})[username] = password
        return actor

    async def ci(self, customer: str, name: str, ci_class: str) -> int:
        ci = await self.cmdb.create_ci(self.actors["eve"], CIInput(name=name, customer=customer, ci_class=ci_class))
        self.facts.setdefault("cis", {})[name] = ci.id
        return ci.id

    async def link(self, source: int, target: int, kind: str = "depends_on") -> None:
        await self.cmdb.create_relationship(self.actors["eve"], source, target, kind)


async def people_and_customers(seed: Seed) -> None:
    await seed.person("admin", ["administrator"])
    admin = seed.actors["admin"]
    for key, name, timezone, region in [
        ("ACME", "Acme Corp", "America/New_York", "US"),
        ("GLOBEX", "Globex Ltd", "Europe/London", "GB-ENG"),
    ]:
        await seed.cmdb.create_customer(
            admin, {"key": key, "name": name, "timezone": timezone, "holiday_region": region}
        )
    await seed.person("carl", ["change_manager"])
    await seed.person("eve", ["engineer"])
    await seed.person("acme-contact", ["customer"], "ACME")
    await seed.person("globex-contact", ["customer"], "GLOBEX")
    # ACME's first month, where ACME is: its report is the oldest the portal lists.
    seed.facts["first_month"] = f"{seed.clock.now().astimezone(ZoneInfo('America/New_York')):%Y-%m}"
    seed.clock.advance(hours=1)


async def estate(seed: Seed) -> None:
    """ACME's ERP: the app depends on its database, which runs on a VM hosted on the provider's
    shared cluster; GLOBEX has a CI of its own that ACME's contact must never open."""
    cluster = await seed.ci(PROVIDER_KEY, "prov-shared-cluster", "cluster")
    vm = await seed.ci("ACME", "acme-erp-vm", "virtual_machine")
    db = await seed.ci("ACME", "acme-erp-db", "database")
    app = await seed.ci("ACME", "acme-erp-app", "application")
    portal = await seed.ci("ACME", "acme-web-portal", "service")
    await seed.link(app, db)
    await seed.link(portal, app)
    await seed.link(db, vm, "runs_on")
    await seed.link(vm, cluster, "hosted_on")
    await seed.ci("GLOBEX", "globex-ledger", "application")


async def submitted_rfc(seed: Seed) -> None:
    eve = seed.actors["eve"]
    rfc = await seed.change.create(
        eve,
        {
            "customer": "ACME",
            "title": "Grow the ERP database volume",
            "cis": [seed.facts["cis"]["acme-erp-db"]],
            **RFC_TEXT,
        },
    )
    rfc = await seed.change.act(eve, rfc.id, "submit", {})
    seed.clock.advance(hours=1)
    seed.facts["rfc"] = {"key": rfc.key, "title": rfc.title}


def _month_of(moment: dt.datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m}"


async def _resolved(seed: Seed, customer: str, title: str, ci: str, priority: str) -> Incident:
    """An incident worked through to resolved, so it waits for the customer's confirmation:
    recorded, acknowledged, assigned to eve and resolved by her, an hour or two apart."""
    eve, admin = seed.actors["eve"], seed.actors["admin"]
    incident = await seed.incidents.create(
        eve,
        {"customer": customer, "title": title, "cis": [ci], "priority": priority, "reported_by": "Their contact"},
    )
    seed.clock.advance(minutes=10)
    await seed.incidents.act(eve, incident.key, "acknowledge", {})
    seed.clock.advance(minutes=5)
    await seed.incidents.act(admin, incident.key, "assign", {"person": "eve"})
    seed.clock.advance(hours=1)
    return await seed.incidents.act(
        eve,
        incident.key,
        "resolve",
        {"details": f"{title}: cause found and removed.", "actions_taken": "Fixed and verified with the users."},
    )


async def incidents_of_the_month(seed: Seed) -> None:
    """In ACME's first (finished) month: one incident closed (confirmed by ACME's contact) and
    one resolved and still waiting for the contact's confirmation, which the customer journey
    confirms; and a GLOBEX incident in the same month that ACME's report must never show.

    The report month is the month these incidents are raised in, where ACME is. So that all
    of them fall in one month, a step that starts in a month's last hours first moves on to the
    next month, which is over too (it starts at most 40 days ago, and ends before today)."""
    acme = ZoneInfo("America/New_York")
    local = seed.clock.now().astimezone(acme)
    month_end = (local.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    left = month_end.astimezone(dt.UTC) - seed.clock.now().astimezone(dt.UTC)
    if left < dt.timedelta(hours=6):
        seed.clock.advance(seconds=left.total_seconds() + 3600)
    closed = await _resolved(seed, "ACME", "Web portal login errors", "acme-web-portal", "normal")
    await seed.incidents.act(seed.actors["acme-contact"], closed.key, "confirm", {})
    seed.clock.advance(minutes=30)
    waiting = await _resolved(seed, "ACME", "ERP database slow at month end", "acme-erp-db", "high")
    other = await seed.incidents.create(
        seed.actors["eve"], {"customer": "GLOBEX", "title": "Globex ledger batch failed", "cis": ["globex-ledger"]}
    )
    seed.clock.advance(minutes=30)
    seed.facts["incidents"] = {
        "closed": {"key": closed.key, "title": closed.title},
        "waiting": {"key": waiting.key, "title": waiting.title},
        "globex": {"key": other.key, "title": other.title},
    }
    seed.facts["report_month"] = _month_of(closed.created_at, acme)
    assert _month_of(seed.clock.now(), acme) == seed.facts["report_month"], "the incidents straddle two months"


STEPS: list[Callable[[Seed], Awaitable[None]]] = [people_and_customers, estate, submitted_rfc, incidents_of_the_month]


async def seed_database() -> dict[str, Any]:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"seed: migration failed: {result.message}")
    clock = SeedClock(dt.datetime.now(dt.UTC) - HISTORY)
    provider = await ensure_provider(clock, PROVIDER_KEY, "Managed Services Provider")
    cmdb = CMDBService(clock, GraphCache())
    change = ChangeService(clock, cmdb)
    notifications = NotificationService(clock)  # no mailer: the notices are only recorded
    incidents = IncidentService(clock, cmdb, change, ReleaseService(clock, cmdb, change, notifications), notifications)
    seed = Seed(clock, cmdb, change, incidents, provider)
    try:
        for step in STEPS:
            await step(seed)
    finally:
        engine = repo.engine()
        if isinstance(engine, KeelSQLiteEngine):
            await engine.close()
    return seed.facts


def main() -> int:
    if not os.environ.get("KEEL_DATABASE_URL"):
        print("seed: set KEEL_DATABASE_URL to the (empty) database to fill", file=sys.stderr)
        return 2
    facts = asyncio.run(seed_database())
    # Migrations print progress on stdout: the facts go last, on one line of their own.
    print("SEEDED " + json.dumps(facts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
