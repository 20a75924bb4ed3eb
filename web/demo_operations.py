"""Demo data for service operations: releases, patch deadlines, incidents, monitoring alerts,
problems, the finished month's reports and the escalations the scheduler raises.

Everything goes through the services the application wires (`web.app.build_services`), built
here on the demo's seeding clock and sharing its CMDB and change services (`operations(ctx)`).

Releases move RFCs (deploying implements them, completing completes them, backing out backs
them out), incidents and problems raise RFCs, and the change stories' test checks that RFC keys
follow the order RFCs were raised: so these stories are planned into the same `ChangePlan` as
the RFCs (`OPERATION_STORIES`, appended to `web.demo.CHANGE_STORIES`) and replayed with them in
time order. Two steps run after the whole past is written: `issue_monthly_reports` issues the
finished month's report for every customer (frozen, dated the first business morning of the
month after, when the scheduler would have issued it) and `raise_escalations` runs the
escalation jobs once at the present, so the service manager's inbox has what is overdue now.

The data set (per customer, over the demo's 60 days, from a fixed random seed):

- 15-25 incidents each, mostly in the customer's business hours, of every priority: raised by
  engineers on the phone, by the customer contacts in the portal, and by monitoring alerts (CPU,
  disk, backup failure, virus, event log, UPS); acknowledged, assigned, worked (time entries
  with estimates), communicated, resolved and confirmed by the customer contact; one reopened,
  some escalated to another engineer, one handed to change management (an RFC), some on hold;
  the newest still new or open; an incident on a CI a day after an RFC completed there;
- releases: a deployed ACME October update (watch period over), a deployed SCL dispatch update
  whose watch period saw an incident spike (trend analysis proposed a problem), an Initech
  release backed out during deployment, an ACME release that failed testing, was retested and
  approved, a Globex release in testing and a planned Initech one;
- patch RFCs met by approved releases, one at risk and several overdue;
- problems: the SCL spike, a Globex known error with a workaround, an ACME problem resolved by a
  completed RFC it raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.db import fetch
from cmdb.errors import Conflict
from cmdb.models import Actor, Customer
from cmdb.notifications import NotificationService
from cmdb.services import Clock, CMDBService
from incident.alerts import AlertService
from incident.models import IncidentStatus
from incident.services import IncidentService, calendar_of
from problem.models import ProblemStatus
from problem.reports import ReportService, customer_calendar, first_business_day
from problem.services import ProblemService
from release.models import ReleaseState
from release.patches import PatchService
from release.services import ReleaseService

if TYPE_CHECKING:
    from web.demo import ChangePlan, DemoContext

Run = Callable[[], Awaitable[None]]


# ------------------------------------------------------------------------------ the services


@dataclass
class Operations:
    """The operations services on the seeding clock, and what the stories made (by demo name)."""

    notifications: NotificationService
    releases: ReleaseService
    patches: PatchService
    incidents: IncidentService
    alerts: AlertService
    problems: ProblemService
    reports: ReportService
    incident_refs: dict[str, int] = field(default_factory=dict)  # demo name -> incident id
    release_refs: dict[str, int] = field(default_factory=dict)
    problem_refs: dict[str, int] = field(default_factory=dict)
    reports_issued: int = 0
    month: str = ""
    escalations: int = 0


def build_operations(clock: Clock, cmdb: CMDBService, change: ChangeService) -> Operations:
    """Wired as `web.app.build_services` wires them (no mail: the demo sends none)."""
    notifications = NotificationService(clock, None)
    releases = ReleaseService(clock, cmdb, change, notifications)
    patches = PatchService(clock, cmdb, notifications)
    incidents = IncidentService(clock, cmdb, change, releases, notifications)
    change.incident_history = incidents
    problems = ProblemService(clock, cmdb, change, releases, incidents)
    reports = ReportService(clock, cmdb, change, patches, incidents, problems, notifications)
    alerts = AlertService(clock, cmdb, incidents)
    return Operations(notifications, releases, patches, incidents, alerts, problems, reports)


def operations(ctx: DemoContext) -> Operations:
    """The operations services of this run, built on first use on the seeding clock."""
    if ctx.operations is None:
        ctx.operations = build_operations(ctx.clock, ctx.cmdb, ctx.change)
    ops: Operations = ctx.operations
    return ops


# ------------------------------------------------------------------------------- the figures


@dataclass(frozen=True)
class OperationsFigures:
    """What `keel demo` prints about operations, read from the database."""

    releases: dict[str, int]
    incidents: dict[str, int]
    alerts: dict[str, int]
    problems: dict[str, int]
    reports: dict[str, int]  # month -> reports issued
    escalations: int

    def lines(self) -> list[str]:
        def states(counts: dict[str, int]) -> str:
            return ", ".join(f"{state.replace('_', ' ')} {n}" for state, n in counts.items() if n)

        alerts = self.alerts
        reports = ", ".join(f"{month} {n}" for month, n in sorted(self.reports.items())) or "none"
        return [
            f"Releases: {sum(self.releases.values())} ({states(self.releases)})",
            f"Incidents: {sum(self.incidents.values())} ({states(self.incidents)})",
            f"Monitoring alerts: {sum(alerts.values())} (opened an incident {alerts.get('opened', 0)}, "
            f"joined one {alerts.get('joined', 0)}, below the thresholds {alerts.get('ignored', 0)})",
            f"Problems: {sum(self.problems.values())} ({states(self.problems)})",
            f"Monthly reports issued (frozen): {reports}; escalations raised: {self.escalations}",
        ]


async def operations_figures(clock: Clock, cmdb: CMDBService, system: Actor) -> OperationsFigures:
    ops = build_operations(clock, cmdb, ChangeService(clock, cmdb))
    releases = {}
    for state in ReleaseState:
        _, releases[state.value] = await ops.releases.list_releases(system, states=[state.value], limit=1)
    incidents = {}
    for status in IncidentStatus:
        _, incidents[status.value] = await ops.incidents.list_incidents(system, statuses=[status.value], limit=1)
    problems = {}
    for problem_status in ProblemStatus:
        _, problems[problem_status.value] = await ops.problems.list_problems(
            system, statuses=[problem_status.value], limit=1
        )
    engine = cmdb_repo.engine()
    alerts = {
        str(row["outcome"]): int(row["n"])
        for row in await fetch(engine, "SELECT outcome, COUNT(*) AS n FROM alert GROUP BY outcome")
    }
    reports = {
        str(row["month"]): int(row["n"])
        for row in await fetch(engine, "SELECT month, COUNT(*) AS n FROM monthly_report GROUP BY month")
    }
    escalations = await fetch(engine, "SELECT COUNT(*) AS n FROM escalation")
    return OperationsFigures(releases, incidents, alerts, problems, reports, int(escalations[0]["n"]))


# ----------------------------------------------------------------------------- time helpers


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _local(day: dt.date, hhmm: str, tz: str) -> dt.datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), ZoneInfo(tz)).astimezone(dt.UTC)


@dataclass
class Story:
    """Plans the events of the operations stories into the change plan: events after the
    present are dropped (what has not happened yet), every other one is replayed in time order
    with the RFCs."""

    plan: ChangePlan
    ops: Operations

    @property
    def ctx(self) -> DemoContext:
        return self.plan.ctx

    @property
    def now(self) -> dt.datetime:
        return self.plan.ctx.now

    def at(self, name: str, when: dt.datetime, run: Run) -> dt.datetime | None:
        if _minute(when) > self.now:
            return None
        return self.plan._add(name, when, run)

    def actor(self, username: str) -> Actor:
        return self.ctx.actors[username]

    def business_time(self, customer: str, lo_days: float, hi_days: float, office: float = 0.8) -> dt.datetime:
        """A random moment between `hi_days` and `lo_days` ago, in the customer's office hours
        on a working day with probability `office`, else at any hour."""
        rng = self.ctx.rng
        tz = self.ctx.customers[customer].timezone or "UTC"
        for _ in range(50):
            moment = self.now - dt.timedelta(days=rng.uniform(lo_days, hi_days))
            if rng.random() > office:
                return _minute(moment)
            local = moment.astimezone(ZoneInfo(tz))
            if local.weekday() >= 5:
                continue
            minute = rng.randint(8 * 60, 17 * 60 + 30)
            candidate = _local(local.date(), f"{minute // 60:02d}:{minute % 60:02d}", tz)
            if self.plan.earliest < candidate <= self.now - dt.timedelta(days=lo_days):
                return candidate
        return _minute(self.now - dt.timedelta(days=hi_days))

    # --- incidents ------------------------------------------------------------------------

    def incident_id(self, name: str) -> int:
        return self.ops.incident_refs[name]

    def open_incident(self, name: str, when: dt.datetime, by: str, data: dict[str, Any]) -> dt.datetime | None:
        ctx, ops = self.ctx, self.ops

        async def run() -> None:
            incident = await ops.incidents.create(ctx.actors[by], data)
            ops.incident_refs[name] = incident.id

        return self.at(name, when, run)

    def alert(
        self, name: str | None, when: dt.datetime, customer: str, ci: str, metric: str, value: Any, **extra: Any
    ) -> dt.datetime | None:
        """A monitoring alert; `name` remembers the incident it opened or joined."""
        ctx, ops = self.ctx, self.ops
        body: dict[str, Any] = {"ci": ci, "customer": customer, "metric": metric, "value": value, **extra}

        async def run() -> None:
            observed = ctx.clock.now() - dt.timedelta(minutes=2)
            result = await ops.alerts.receive(ctx.actors["admin"], {**body, "observed_at": observed.isoformat()})
            if name is not None and result.incident_id is not None:
                ops.incident_refs.setdefault(name, result.incident_id)

        return self.at(name or f"alert:{customer}:{ci}:{metric}", when, run)

    def act(self, name: str, when: dt.datetime, by: str, action: str, /, **params: Any) -> dt.datetime | None:
        ctx, ops = self.ctx, self.ops

        async def run() -> None:
            await ops.incidents.act(ctx.actors[by], ops.incident_refs[name], action, params)

        return self.at(name, when, run)

    def act_raising_rfc(self, name: str, rfc_name: str, when: dt.datetime, by: str, **params: Any) -> None:
        ctx, ops = self.ctx, self.ops

        async def run() -> None:
            incident = await ops.incidents.act(ctx.actors[by], ops.incident_refs[name], "raise-rfc", params)
            assert incident.rfc_key is not None
            ctx.rfcs[rfc_name] = (await ctx.change.get(ctx.actors[by], incident.rfc_key)).rfc

        self.at(name, when, run)

    def time(self, name: str, when: dt.datetime, by: str, minutes: int, note: str, estimate: int | None = None) -> None:
        ctx, ops = self.ctx, self.ops
        data: dict[str, Any] = {"minutes": max(1, min(minutes, 1440)), "note": note}
        if estimate is not None:
            data["estimated_minutes"] = estimate

        async def run() -> None:
            await ops.incidents.record_time(ctx.actors[by], ops.incident_refs[name], data)

        self.at(name, when, run)

    def tell(self, name: str, when: dt.datetime, by: str, channel: str, summary: str, party: str = "") -> None:
        ctx, ops = self.ctx, self.ops
        data = {"channel": channel, "summary": summary, "party": party}

        async def run() -> None:
            await ops.incidents.record_communication(ctx.actors[by], ops.incident_refs[name], data)

        self.at(name, when, run)


# ------------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class IncidentSpec:
    title: str
    cis: tuple[str, ...]
    priority: str
    symptoms: str
    cause: str  # the resolution details
    fix: str  # the actions taken


CATALOGUE: dict[str, tuple[IncidentSpec, ...]] = {
    "ACME": (
        IncidentSpec(
            "ERP order entry slow for the Detroit plant",
            ("acme-erp", "acme-erp-app-01"),
            "normal",
            "Saving a sales order takes 40 seconds instead of 3.",
            "A long-running MRP job held locks on the order tables.",
            "Rescheduled the MRP job outside office hours with the ACME basis team.",
        ),
        IncidentSpec(
            "Cannot print MES work orders on line 3",
            ("acme-mes", "acme-mes-srv-01"),
            "normal",
            "Print jobs from MES stay in the queue; line 3 works from paper copies.",
            "The print spooler on acme-mes-srv-01 hung on a corrupt job.",
            "Cleared the queue, restarted the spooler, reprinted the open work orders.",
        ),
        IncidentSpec(
            "Outlook asks for the password again and again",
            ("acme-mail",),
            "low",
            "Three finance users get a password prompt every few minutes.",
            "Stale credentials in Windows Credential Manager after the password change.",
            "Removed the cached credentials and re-created the Outlook profiles.",
        ),
        IncidentSpec(
            "Supplier portal returns error 502",
            ("acme-portal", "acme-portal-app-01"),
            "high",
            "Suppliers cannot upload invoices; the portal answers 502 Bad Gateway.",
            "The Liferay node ran out of heap after a memory leak in the invoice upload.",
            "Restarted the node, raised the heap and opened a vendor case for the leak.",
        ),
        IncidentSpec(
            "PLM check-in of CAD files fails",
            ("acme-plm", "acme-plm-app-01"),
            "normal",
            "Engineers get 'vault unavailable' when checking in assemblies.",
            "The vault service lost its database connection after a failover.",
            "Restarted the vault service and checked the connection pool settings.",
        ),
        IncidentSpec(
            "Shared drive S: not reachable from the office",
            ("acme-files", "acme-fs-01"),
            "high",
            "Mapped drive S: shows disconnected for the whole office.",
            "The DFS namespace referral pointed at the retired file server.",
            "Corrected the DFS referral order and flushed the clients' referral cache.",
        ),
        IncidentSpec(
            "User locked out of the domain",
            ("acme-ad", "acme-dc-01"),
            "low",
            "A shift supervisor is locked out every morning.",
            "An old phone kept trying the previous password.",
            "Unlocked the account and removed the mail profile from the old phone.",
        ),
        IncidentSpec(
            "ERP unavailable for all users",
            ("ACME ERP", "acme-erp-db"),
            "critical",
            "Nobody can log on to the ERP; the plant ships from paper.",
            "The HANA log volume filled up and the database stopped accepting writes.",
            "Freed the log volume after a log backup, restarted the services, checked the backup schedule.",
        ),
    ),
    "GLOBEX": (
        IncidentSpec(
            "Web shop checkout shows a payment error",
            ("globex-shop", "globex-paygw"),
            "high",
            "About one in five card payments fails with 'payment could not be processed'.",
            "The payment gateway's certificate chain lacked the new intermediate.",
            "Installed the intermediate certificate on both gateway nodes.",
        ),
        IncidentSpec(
            "POS till cannot reach the store server",
            ("globex-pos", "globex-store-srv-01"),
            "normal",
            "Tills in the Leeds store show 'offline mode' after opening.",
            "The store server's network card renegotiates to 100 Mbit and drops connections.",
            "Restarted the till service on the store server; tills reconnected.",
        ),
        IncidentSpec(
            "Warehouse scanners lose the WMS session",
            ("globex-wms", "globex-wms-app-01"),
            "normal",
            "Handheld scanners log out every ten minutes.",
            "The WMS session timeout was reset to the default by an update.",
            "Set the session timeout back to eight hours.",
        ),
        IncidentSpec(
            "Loyalty points not credited",
            ("globex-loyalty", "globex-loyalty-app-01"),
            "low",
            "Customers report missing points for purchases since yesterday.",
            "The nightly import from the tills stopped on a malformed record.",
            "Skipped the record, reran the import and credited the points.",
        ),
        IncidentSpec(
            "Label printer queue stuck",
            ("globex-print-01",),
            "low",
            "Shelf labels do not print in the head office.",
            "A label job with an unsupported font blocked the queue.",
            "Deleted the job and restarted the print queue.",
        ),
        IncidentSpec(
            "Corporate website slow",
            ("globex-www",),
            "low",
            "The home page takes ten seconds to load.",
            "The CDN cache was purged by a deployment and warmed slowly.",
            "Prewarmed the CDN cache.",
        ),
        IncidentSpec(
            "Web shop down",
            ("Globex Web Shop", "globex-shop-app-01"),
            "critical",
            "The web shop answers 503 for every page.",
            "A full disk on the shop's session store stopped PHP-FPM.",
            "Cleared old session files, restarted PHP-FPM, added a cleanup job.",
        ),
    ),
    "INITECH": (
        IncidentSpec(
            "Claims adjusters cannot open claim files",
            ("initech-claims", "initech-claims-app-01"),
            "high",
            "Opening a claim shows 'document service unavailable'.",
            "The claims application lost its connection to the document management system.",
            "Restarted the integration service and renewed its service account password.",
        ),
        IncidentSpec(
            "Policy quote calculation times out",
            ("initech-policy", "initech-policy-app-01"),
            "normal",
            "Quotes for commercial policies time out after 60 seconds.",
            "A missing index after the rating table reload.",
            "Recreated the index with the Initech DBA.",
        ),
        IncidentSpec(
            "CRM search returns no customers",
            ("initech-crm", "initech-crm-app-01"),
            "normal",
            "Searching by name returns nothing; search by number works.",
            "The CRM search index was not rebuilt after the weekend maintenance.",
            "Rebuilt the search index.",
        ),
        IncidentSpec(
            "Scanned documents not arriving in the DMS",
            ("initech-dms", "initech-scan-01"),
            "normal",
            "Post scanned this morning is not in the document management system.",
            "The scan server's import folder share lost its permissions.",
            "Restored the share permissions and reimported the batch.",
        ),
        IncidentSpec(
            "TPS report cover sheet missing",
            ("initech-tps",),
            "low",
            "TPS reports print without the cover sheet.",
            "The default template was reset by a user profile reset.",
            "Set the cover sheet template as the default again.",
        ),
        IncidentSpec(
            "Printer on floor 2 offline",
            ("initech-print-01",),
            "low",
            "The floor 2 printer shows offline for everyone.",
            "The printer got a new DHCP address.",
            "Reserved the printer's address and updated the port.",
        ),
        IncidentSpec(
            "Email delayed by 30 minutes",
            ("initech-mail",),
            "normal",
            "Incoming mail arrives half an hour late.",
            "The spam filter's update queue backed up.",
            "Cleared the queue and restarted the transport service.",
        ),
    ),
    "SCL": (
        IncidentSpec(
            "Fleet map shows trucks at the depot",
            ("scl-fleet", "scl-fleet-app-01"),
            "normal",
            "The fleet map shows every truck parked at Port Botany.",
            "The telematics feed's API key expired.",
            "Renewed the API key with the telematics vendor.",
        ),
        IncidentSpec(
            "Payroll export fails",
            ("scl-payroll", "scl-payroll-app-01"),
            "high",
            "The fortnightly payroll export stops with an error.",
            "A new award rate was missing from the export mapping.",
            "Added the rate to the mapping and reran the export.",
        ),
        IncidentSpec(
            "Depot label printing slow",
            ("scl-depot-srv-01",),
            "low",
            "Consignment labels take a minute each at the depot.",
            "The depot server's disk was nearly full of spool files.",
            "Cleared old spool files and added a cleanup task.",
        ),
        IncidentSpec(
            "Website contact form not sending",
            ("scl-www",),
            "low",
            "Enquiries from the website contact form do not arrive.",
            "The form's SMTP relay credentials were rotated.",
            "Updated the relay credentials.",
        ),
        IncidentSpec(
            "Mailbox full for the dispatch team",
            ("scl-mail",),
            "low",
            "The shared dispatch mailbox rejects new mail.",
            "The shared mailbox reached its quota.",
            "Archived last year's mail and raised the quota.",
        ),
        IncidentSpec(
            "VPN from the Brisbane depot drops",
            ("scl-fw-01",),
            "normal",
            "The site VPN to Brisbane drops every few hours.",
            "Mismatched dead-peer-detection timers after the ISP change.",
            "Aligned the DPD settings on both ends.",
        ),
    ),
}

#: Who works on incidents of each customer first (engineers by the CIs they know).
ENGINEERS = ("eve", "raj", "mia")
CONTACTS = {"ACME": "pat", "GLOBEX": "gwen", "INITECH": "bill", "SCL": "liam"}
INCIDENTS_PER_CUSTOMER = 14
# Minutes to acknowledge and hours to resolve, by priority (ranges the random source picks in).
RESPONSE_MINUTES = {"critical": (4, 20), "high": (8, 45), "normal": (15, 120), "low": (30, 300)}
RESOLUTION_HOURS = {"critical": (1.0, 4.0), "high": (2.0, 9.0), "normal": (3.0, 30.0), "low": (8.0, 80.0)}
# A few incidents are answered or fixed late, past the default targets (see incident/sla.py), so
# the reports and the dashboard have misses to show.
LATE_RESPONSE_MINUTES = {"critical": (90, 240), "high": (180, 480), "normal": (1500, 3000), "low": (3500, 5000)}
LATE_RESOLUTION_HOURS = {"critical": (8.0, 20.0), "high": (20.0, 50.0), "normal": (100.0, 160.0), "low": (170.0, 260.0)}


def _reporter(ctx: DemoContext, customer: str) -> str:
    from web.demo import CUSTOMERS

    spec = next(s for s in CUSTOMERS if s.key == customer)
    return ctx.rng.choice(spec.staff_names)


def _lifecycle(
    story: Story,
    name: str,
    customer: str,
    opened: dt.datetime | None,
    priority: str,
    cause: str,
    fix: str,
    *,
    engineer: str | None = None,
    confirm: bool = True,
    late: bool = False,
) -> None:
    """Acknowledge, assign, talk to the customer, work (time entries with an estimate),
    resolve and have the customer confirm: each step only if its time has come."""
    if opened is None:
        return
    rng = story.ctx.rng
    engineer = engineer or rng.choice(ENGINEERS)
    lo, hi = (LATE_RESPONSE_MINUTES if late else RESPONSE_MINUTES)[priority]
    acked = opened + dt.timedelta(minutes=rng.uniform(lo, hi))
    if story.act(name, acked, engineer, "acknowledge") is None:
        return
    if rng.random() < 0.5:
        story.act(name, acked + dt.timedelta(minutes=2), engineer, "take")
    else:
        story.act(name, acked + dt.timedelta(minutes=3), "sam", "assign", person=engineer)
    contact = CONTACTS[customer]
    story.tell(
        name,
        acked + dt.timedelta(minutes=10),
        engineer,
        rng.choice(("phone", "email")),
        "Told the customer we are on it and when to expect the next update.",
        party=contact,
    )
    lo_h, hi_h = (LATE_RESOLUTION_HOURS if late else RESOLUTION_HOURS)[priority]
    hours = rng.uniform(lo_h, hi_h)
    resolved = opened + dt.timedelta(hours=hours)
    worked = max(15, min(int(min(hours, 10.0) * 60 * rng.uniform(0.2, 0.5)), 600))
    # The estimate is for the diagnosis it is recorded with: a little over or under, as estimates go.
    estimate = int(worked // 2 * rng.uniform(0.7, 1.5)) // 15 * 15 or 15
    story.time(name, acked + dt.timedelta(minutes=30), engineer, worked // 2, "Diagnosis", estimate)
    if rng.random() < 0.15 and priority in ("normal", "low"):
        held = acked + dt.timedelta(minutes=45)
        story.act(name, held, engineer, "hold", reason="research", comment="Checking the vendor's knowledge base.")
        story.act(name, held + dt.timedelta(hours=hours / 3), engineer, "resume")
    if resolved <= acked:
        resolved = acked + dt.timedelta(hours=1)
    if story.now < resolved:
        return
    story.time(name, resolved - dt.timedelta(minutes=5), engineer, worked - worked // 2, "Fix and test")
    story.act(name, resolved, engineer, "resolve", details=cause, actions_taken=fix)
    if confirm:
        confirmed = resolved + dt.timedelta(hours=rng.uniform(1.0, 30.0))
        story.act(name, confirmed, contact, "confirm", comment="Works again, thank you.")


def _generic_incidents(story: Story, customer: str) -> None:
    ctx = story.ctx
    rng = ctx.rng
    catalogue = CATALOGUE[customer]
    for n in range(INCIDENTS_PER_CUSTOMER):
        # Critical incidents are rare: pick them a quarter as often.
        weights = [0.25 if spec.priority == "critical" else 1.0 for spec in catalogue]
        spec = rng.choices(catalogue, weights=weights)[0]
        name = f"inc:{customer}:{n}"
        opened = story.business_time(customer, 0.3, 58.0)
        by_customer = rng.random() < 0.35
        data: dict[str, Any] = {
            "customer": customer,
            "title": spec.title,
            "cis": list(spec.cis),
            "priority": spec.priority,
            "symptoms": spec.symptoms,
        }
        if by_customer:
            by = CONTACTS[customer]
        else:
            by = rng.choice(("eve", "raj", "mia", "sam"))
            data["reported_by"] = _reporter(ctx, customer)
            data["contact"] = "phone"
        story.open_incident(name, opened, by, data)
        _lifecycle(story, name, customer, opened, spec.priority, spec.cause, spec.fix, late=rng.random() < 0.12)


# ------------------------------------------------------------------------------- the releases


async def _rfc_through_committee(
    plan: ChangePlan,
    name: str,
    customer: str,
    by: str,
    title: str,
    cis: Sequence[str],
    slot: tuple[dt.datetime, dt.datetime],
    requirements: Sequence[str],
    /,
    **fields: Any,
) -> dt.datetime:
    """An RFC raised eight working days before its window, approved by the committee (and the
    customer where the SLA asks), scheduled into the window. Answers when it was scheduled."""
    start, end = slot
    created = plan.office(plan.business(start, -8), "09:50")
    plan.create(name, created, by, customer, title, cis, **fields)
    plan.act(name, created + dt.timedelta(minutes=20), by, "submit")
    plan.act(name, plan.business(created, 1), "carl", "authorize", release_requirements=list(requirements))
    plan.act(name, plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    voters = ("tess", "omar", "nina") if customer == "GLOBEX" else ("tess", "omar")
    for hours, member in enumerate(voters):
        plan.act(
            name,
            plan.business(created, 2) + dt.timedelta(hours=hours * 2),
            member,
            "vote",
            vote="approve",
            comment="Plan, backout and test evidence are in order.",
        )
    if customer == "INITECH":
        plan.act(name, plan.business(created, 3), "bill", "customer-approve", comment="Approved for Initech.")
    scheduled = plan.business(created, 3) + dt.timedelta(hours=3)
    plan.act(name, scheduled, "rita", "schedule", planned_start=start, planned_end=end)
    return scheduled


def _release(
    story: Story,
    name: str,
    when: dt.datetime,
    customer: str,
    title: str,
    rfcs: Sequence[str],
    description: str = "",
) -> None:
    ctx, ops = story.ctx, story.ops
    prefix = customer.lower()

    async def run() -> None:
        env = ctx.ci(customer, f"{prefix}-test")
        release = await ops.releases.create(
            ctx.actors["rita"],
            {
                "customer": customer,
                "title": title,
                "description": description,
                "rfcs": [ctx.rfcs[rfc].key for rfc in rfcs],
                "test_environment": env.name,
                "represents": list(env.attributes.get("represents", [])),
            },
        )
        ops.release_refs[name] = release.id

    story.at(name, when, run)


def _release_act(story: Story, name: str, when: dt.datetime, by: str, action: str, /, **data: Any) -> None:
    ctx, ops = story.ctx, story.ops

    async def run() -> None:
        await ops.releases.act(ctx.actors[by], ops.release_refs[name], action, data)

    story.at(name, when, run)


def _test(
    story: Story, name: str, when: dt.datetime, test: str, result: str, covers: Sequence[str], effects: str = ""
) -> None:
    _release_act(
        story, name, when, "mia", "record-test", name=test, result=result, covers=list(covers), negative_effects=effects
    )


async def _acme_october_update(story: Story) -> None:
    """Deployed cleanly a month ago; its watch period is over."""
    plan, ctx = story.plan, story.ctx
    cis = ["acme-dc-01", "acme-dc-01-os", "acme-fs-01", "acme-fs-01-os"]
    slot = await plan.last_slot("ACME", cis, 180, ctx.now - dt.timedelta(days=24))
    requirements = ["Tested on the test domain controller"]
    scheduled = await _rfc_through_committee(
        plan,
        "acme-windows-cu",
        "ACME",
        "eve",
        "Install the Windows Server cumulative update on acme-dc-01 and acme-fs-01",
        cis,
        slot,
        requirements,
        priority="medium",
        need="The monthly cumulative update fixes an exploitable Kerberos flaw and a SMB signing bypass.",
        desired_result="Both servers on the current cumulative update, logons and file shares working.",
        plan="Install the update on acme-fs-01, reboot, check shares; then acme-dc-01, reboot, check replication.",
        backout_plan="Uninstall the update (wusa /uninstall) and reboot.",
        patch_components=["acme-dc-01-os: previous cumulative update", "acme-fs-01-os: previous cumulative update"],
        vulnerability="Microsoft rates the Kerberos flaw important (elevation of privilege).",
        patch_description="Windows Server 2022 monthly cumulative update, about 700 MB.",
        urgency="important",
        available_at=slot[0] - dt.timedelta(days=12),
        testing_done="Installed on the test domain controller in acme-test.",
    )
    release = "rel:acme-windows"
    _release(
        story, release, scheduled + dt.timedelta(hours=1), "ACME", "ACME Windows Server update", ["acme-windows-cu"]
    )
    _test(
        story,
        release,
        scheduled + dt.timedelta(hours=20),
        "Logon, GPO and file share smoke test on the test domain controller",
        "passed",
        requirements,
    )
    _release_act(story, release, scheduled + dt.timedelta(hours=21), "rita", "conclude-testing")
    _release_act(story, release, scheduled + dt.timedelta(hours=22), "rita", "approve")
    _release_act(story, release, slot[0] + dt.timedelta(minutes=5), "rita", "deploy")
    _release_act(
        story, release, slot[1] - dt.timedelta(minutes=20), "rita", "complete", comment="Both servers updated."
    )


async def _scl_dispatch_update(story: Story) -> None:
    """Deployed about two weeks ago; incidents on the dispatch servers followed within days, and
    the trend analysis proposed a problem for the spike."""
    plan, ctx = story.plan, story.ctx
    cis = ["scl-dispatch-app-01", "scl-dispatch-app-02"]
    # A window before the one the SQL Server update took, so the spike has one change to blame.
    slot = await plan.last_slot("SCL", cis, 120, ctx.now - dt.timedelta(days=16))
    requirements = ["Dispatch regression suite passed in scl-test"]
    scheduled = await _rfc_through_committee(
        plan,
        "scl-dotnet",
        "SCL",
        "mia",
        "Install the .NET 8.0.10 runtime update on the dispatch application servers",
        cis,
        slot,
        requirements,
        priority="medium",
        need="The .NET 8 runtime on the dispatch servers misses the security fixes of the last two months.",
        desired_result="Both dispatch application servers on .NET 8.0.10, dispatch working.",
        plan="Drain app-01 from the load balancer, install the runtime, restart IIS, test; then app-02.",
        backout_plan="Reinstall the previous runtime from the offline installer and restart IIS.",
        patch_components=["scl-dispatch-app-01: .NET 8.0.8", "scl-dispatch-app-02: .NET 8.0.8"],
        vulnerability="Microsoft rates the ASP.NET Core denial-of-service flaw important.",
        patch_description=".NET 8.0.10 hosting bundle, about 100 MB.",
        urgency="important",
        available_at=slot[0] - dt.timedelta(days=11),
        testing_done="Dispatch regression suite run in scl-test.",
    )
    release = "rel:scl-dotnet"
    _release(story, release, scheduled + dt.timedelta(hours=1), "SCL", "SCL dispatch runtime update", ["scl-dotnet"])
    _test(story, release, scheduled + dt.timedelta(hours=18), "Dispatch regression suite", "passed", requirements)
    _release_act(story, release, scheduled + dt.timedelta(hours=19), "rita", "conclude-testing")
    _release_act(story, release, scheduled + dt.timedelta(hours=20), "rita", "approve")
    _release_act(story, release, slot[0] + dt.timedelta(minutes=5), "rita", "deploy")
    deployed = slot[1] - dt.timedelta(minutes=15)
    _release_act(story, release, deployed, "rita", "complete")
    # The spike: four incidents on the dispatch servers in the days after.
    spike = [
        ("spike:1", 0.4, "liam", "Dispatch screens freeze when opening a job", "normal"),
        ("spike:2", 1.3, "liam", "Drivers' job list does not refresh", "high"),
        ("spike:3", 2.2, "eve", "Dispatch application pool recycles every hour", "normal"),
    ]
    for name, days, by, title, priority in spike:
        opened = _minute(deployed + dt.timedelta(days=days))
        data: dict[str, Any] = {
            "customer": "SCL",
            "title": title,
            "cis": ["scl-dispatch-app-01", "scl-dispatch"],
            "priority": priority,
            "symptoms": "Started after the weekend; dispatchers work around it by reloading the page.",
        }
        if by != "liam":
            data["reported_by"] = "Zoe Martin"
        story.open_incident(name, opened, by, data)
        _lifecycle(
            story,
            name,
            "SCL",
            opened,
            priority,
            "The application pool runs out of memory since the runtime update.",
            "Recycled the application pool; problem raised to find the cause.",
            engineer="mia",
        )
    story.alert(
        "spike:4", deployed + dt.timedelta(days=2.8), "SCL", "scl-dispatch-app-02", "cpu_percent", 97, duration_s=900
    )
    _lifecycle(
        story,
        "spike:4",
        "SCL",
        _minute(deployed + dt.timedelta(days=2.8)),
        "normal",
        "w3wp.exe at 100 % CPU with the garbage collector running constantly.",
        "Recycled the application pool.",
        engineer="mia",
    )
    ops = story.ops

    async def analyse() -> None:
        report = await ops.problems.trends(ctx.actors["sam"], customer="SCL")
        if report.created:
            found, _ = await ops.problems.list_problems(ctx.actors["sam"], q=report.created[0], limit=1)
            if found:
                ops.problem_refs["prb:scl-spike"] = found[0].id

    analysed = story.at("prb:scl-spike", deployed + dt.timedelta(days=3, hours=2), analyse)
    if analysed is not None:
        _problem_act(story, "prb:scl-spike", analysed + dt.timedelta(hours=3), "mia", "investigate")
        _problem_act(
            story,
            "prb:scl-spike",
            analysed + dt.timedelta(days=1),
            "mia",
            "update",
            description="Memory of the dispatch application pool grows since the .NET runtime update; a dump "
            "is with the dispatch developers.",
        )


async def _initech_backed_out(story: Story) -> None:
    """Stopped during deployment: CRM sign-in failed on the first server; backed out."""
    plan, ctx = story.plan, story.ctx
    cis = ["initech-crm-app-01", "initech-crm-app-02"]
    slot = await plan.last_slot("INITECH", cis, 180, ctx.now - dt.timedelta(days=16))
    requirements = ["CRM sign-in tested in initech-test"]
    scheduled = await _rfc_through_committee(
        plan,
        "initech-crm-java",
        "INITECH",
        "eve",
        "Update the Java runtime of the CRM application servers to 17.0.13",
        cis,
        slot,
        requirements,
        priority="medium",
        need="Java 17.0.11 on the CRM servers misses two quarterly security updates.",
        desired_result="Both CRM application servers on Java 17.0.13, CRM working.",
        plan="Stop CRM on app-01, install the JDK, start, test sign-in; then app-02.",
        backout_plan="Switch the JAVA_HOME link back to 17.0.11 (kept installed) and restart CRM.",
        patch_components=["initech-crm-app-01: Java 17.0.11", "initech-crm-app-02: Java 17.0.11"],
        vulnerability="Oracle critical patch update: remotely exploitable flaws in the networking libraries.",
        patch_description="Eclipse Temurin 17.0.13 JDK, about 190 MB.",
        urgency="moderate",
        available_at=slot[0] - dt.timedelta(days=20),
        testing_done="CRM sign-in tested in initech-test.",
    )
    release = "rel:initech-java"
    _release(
        story, release, scheduled + dt.timedelta(hours=1), "INITECH", "Initech CRM Java update", ["initech-crm-java"]
    )
    _test(story, release, scheduled + dt.timedelta(hours=20), "CRM sign-in with SSO", "passed", requirements)
    _release_act(story, release, scheduled + dt.timedelta(hours=21), "rita", "conclude-testing")
    _release_act(story, release, scheduled + dt.timedelta(hours=22), "rita", "approve")
    _release_act(story, release, slot[0] + dt.timedelta(minutes=5), "rita", "deploy")
    opened = slot[0] + dt.timedelta(minutes=50)
    name = "inc:initech-crm-java"
    story.open_incident(
        name,
        opened,
        "eve",
        {
            "customer": "INITECH",
            "title": "CRM sign-in fails after the Java update on initech-crm-app-01",
            "cis": ["initech-crm", "initech-crm-app-01"],
            "priority": "high",
            "symptoms": "Single sign-on answers 'invalid signature' on the updated server.",
            "reported_by": "Release smoke test",
            "environment_changes": "Java runtime updated by the release a few minutes earlier.",
        },
    )
    _release_act(
        story,
        release,
        slot[0] + dt.timedelta(minutes=75),
        "rita",
        "back-out",
        reason="CRM single sign-on fails on Java 17.0.13 (the SAML library rejects the new default algorithms).",
    )
    _lifecycle(
        story,
        name,
        "INITECH",
        opened,
        "high",
        "The SAML library of the CRM rejects the signature algorithms Java 17.0.13 defaults to.",
        "Release backed out: Java 17.0.11 back in place, sign-in tested.",
        engineer="eve",
    )


async def _current_releases(story: Story) -> None:
    """ACME: failed in testing, retested, approved (meets its patches); GLOBEX: in testing;
    INITECH: planned."""
    ago = story.plan.ago
    acme = "rel:acme-erp"
    _release(story, acme, ago(hours=30), "ACME", "ACME ERP maintenance", ["acme-erp-kernel", "acme-hana-revision"])
    _test(
        story,
        acme,
        ago(hours=27),
        "SAP start and order entry on the patched test server",
        "failed",
        ["Test evidence from acme-test"],
        "SAP host agent does not start on the new kernel: missing compat library.",
    )
    _release_act(story, acme, ago(hours=25), "rita", "start-testing", comment="Round 2 with the compat library.")
    _test(
        story,
        acme,
        ago(hours=8),
        "SAP start, order entry and month-end job on the patched test servers",
        "passed",
        ["Test evidence from acme-test", "Full backup verified before the change"],
    )
    _release_act(story, acme, ago(hours=7), "rita", "conclude-testing")
    _release_act(story, acme, ago(hours=6), "rita", "approve")

    globex = "rel:globex-shop"
    _release(story, globex, ago(hours=40), "GLOBEX", "Globex web shop security patch", ["globex-commerce-patch"])
    _test(story, globex, ago(hours=20), "Checkout with Adyen test cards", "passed", ["Test evidence from globex-test"])
    _release(story, "rel:initech-tps", ago(hours=18), "INITECH", "Initech TPS 2.4", ["initech-tps"])


def _at_risk_patch(story: Story) -> None:
    """An important patch (10 business days) with some 85 % of its time used and no release."""
    ctx, plan = story.ctx, story.plan
    calendar = calendar_of(ctx.customers["GLOBEX"])
    anchor = calendar.next_opening(ctx.now - dt.timedelta(days=7))
    day = calendar.business_time_between(anchor, calendar.add_business_days(anchor, 1))
    target = day * 8.5
    available = ctx.now - dt.timedelta(days=1)
    while calendar.business_time_between(available, ctx.now) < target and available > plan.earliest:
        available -= dt.timedelta(hours=1)
    plan.create(
        "globex-wms-java",
        max(available + dt.timedelta(hours=20), plan.earliest),
        "mia",
        "GLOBEX",
        "Update the Java runtime of the warehouse management servers",
        ["globex-wms-app-01", "globex-wms-app-02"],
        priority="high",
        need="The WMS servers run a Java runtime with a remotely exploitable flaw in the TLS stack.",
        desired_result="Both WMS servers on the patched runtime, scanners working.",
        plan="One server at a time behind the load balancer: install, restart, test a pick.",
        backout_plan="Switch back to the previous runtime, kept installed.",
        patch_components=["globex-wms-app-01: Java 17.0.12", "globex-wms-app-02: Java 17.0.12"],
        vulnerability="Oracle critical patch update: TLS handshake flaw, remotely exploitable.",
        patch_description="Java 17.0.13 runtime, about 190 MB.",
        urgency="important",
        available_at=available,
    )
    plan.act("globex-wms-java", max(available + dt.timedelta(hours=20, minutes=10), plan.earliest), "mia", "submit")


# ------------------------------------------------------------------------------ the problems


def _problem_create(
    story: Story, name: str, when: dt.datetime, by: str, data: dict[str, Any], incidents: Sequence[str]
) -> None:
    ctx, ops = story.ctx, story.ops

    async def run() -> None:
        body = {**data, "incidents": [ops.incident_refs[i] for i in incidents if i in ops.incident_refs]}
        problem = await ops.problems.create(ctx.actors[by], body)
        ops.problem_refs[name] = problem.id

    story.at(name, when, run)


def _problem_act(story: Story, name: str, when: dt.datetime, by: str, action: str, /, **params: Any) -> None:
    ctx, ops = story.ctx, story.ops

    async def run() -> None:
        if name in ops.problem_refs:
            await ops.problems.act(ctx.actors[by], ops.problem_refs[name], action, params)

    story.at(name, when, run)


def _link_incident(story: Story, problem: str, incident: str, when: dt.datetime, by: str) -> None:
    ctx, ops = story.ctx, story.ops

    async def run() -> None:
        if problem in ops.problem_refs and incident in ops.incident_refs:
            await ops.problems.act(
                ctx.actors[by], ops.problem_refs[problem], "link-incident", {"incident": ops.incident_refs[incident]}
            )

    story.at(problem, when, run)


def _globex_known_error(story: Story) -> None:
    """Tills drop off the store server every few days: linked, root cause found, workaround."""
    rng = story.ctx.rng
    spec = next(s for s in CATALOGUE["GLOBEX"] if s.title.startswith("POS till"))
    names = []
    for n, days in enumerate((40.0, 31.0, 22.0, 9.0)):
        name = f"inc:globex-pos:{n}"
        opened = story.business_time("GLOBEX", days, days + 1.5)
        story.open_incident(
            name,
            opened,
            "gwen" if n % 2 else "raj",
            {
                "customer": "GLOBEX",
                "title": spec.title,
                "cis": list(spec.cis),
                "priority": "normal",
                "symptoms": spec.symptoms,
                **({} if n % 2 else {"reported_by": "Leeds store manager"}),
            },
        )
        _lifecycle(story, name, "GLOBEX", opened, "normal", spec.cause, spec.fix, engineer="raj")
        names.append((name, opened))
    created = story.business_time("GLOBEX", 20.0, 21.0)
    problem = "prb:globex-pos"
    _problem_create(
        story,
        problem,
        max(created, names[2][1] + dt.timedelta(hours=6)),
        "sam",
        {
            "customer": "GLOBEX",
            "title": "Tills in the Leeds store drop to offline mode",
            "description": "Third time in three weeks; each time the till service on the store server is restarted.",
            "cis": ["globex-store-srv-01"],
        },
        [n for n, _ in names[:3]],
    )
    start = max(created, names[2][1] + dt.timedelta(hours=6))
    _problem_act(story, problem, start + dt.timedelta(hours=2), "raj", "investigate")
    _problem_act(
        story,
        problem,
        start + dt.timedelta(days=2, hours=rng.randint(1, 5)),
        "raj",
        "known-error",
        root_cause="The store server's network card renegotiates to 100 Mbit/s half duplex with the old switch "
        "port and drops the till connections under load.",
        workaround="Restart the till service on globex-store-srv-01 (runbook step 4); tills reconnect within "
        "two minutes.",
    )
    _link_incident(story, problem, names[3][0], names[3][1] + dt.timedelta(hours=1), "raj")


def _acme_resolved_by_rfc(story: Story, slot: tuple[dt.datetime, dt.datetime]) -> None:
    """Disk alerts on the ACME file server; a problem raises an RFC, the change is completed in
    a window, the problem is resolved and closed."""
    plan, ctx = story.plan, story.ctx
    start, end = slot
    problem_at = plan.office(plan.business(start, -9), "10:30")
    names = []
    for n, days in enumerate((16, 9, 3)):
        name = f"alert:acme-fs:{n}"
        opened = _minute(problem_at - dt.timedelta(days=days, hours=ctx.rng.randint(1, 8)))
        story.alert(name, opened, "ACME", "acme-fs-01", "disk_system_free_gb", round(ctx.rng.uniform(0.4, 1.6), 1))
        _lifecycle(
            story,
            name,
            "ACME",
            opened,
            "normal",
            "Volume shadow copies filled the system disk of acme-fs-01.",
            "Deleted the oldest shadow copies; 12 GB free again.",
            engineer="eve",
        )
        names.append(name)
    problem = "prb:acme-fs"
    _problem_create(
        story,
        problem,
        problem_at,
        "eve",
        {
            "customer": "ACME",
            "title": "System disk of acme-fs-01 keeps filling up",
            "description": "Three disk alerts in three weeks on the file server's system disk.",
            "cis": ["acme-fs-01", "acme-fs-01-os"],
        },
        names,
    )
    _problem_act(story, problem, problem_at + dt.timedelta(minutes=30), "eve", "investigate")
    _problem_act(
        story,
        problem,
        problem_at + dt.timedelta(hours=4),
        "eve",
        "known-error",
        root_cause="Shadow copies of the data volume are stored on the system disk (the default) and grow "
        "with every month-end.",
        workaround="Delete the oldest shadow copies with vssadmin when the disk alert fires.",
    )
    ops = story.ops
    raised = problem_at + dt.timedelta(hours=5)

    async def raise_rfc() -> None:
        eve = ctx.actors["eve"]
        new = await ops.problems.act(eve, ops.problem_refs[problem], "raise-rfc", {})
        assert new.rfc_key is not None
        rfc = await ctx.change.update(
            eve,
            new.rfc_key,
            {
                "plan": "Move the shadow copy storage of D: to the data disk (vssadmin resize/add shadowstorage), "
                "keep 10 % of the data disk, delete the copies left on C:.",
                "backout_plan": "Point the shadow storage back at C: with the previous size.",
                "priority": "medium",
            },
        )
        ctx.rfcs["acme-fs-shadow"] = rfc

    story.at(problem, raised, raise_rfc)
    rfc = "acme-fs-shadow"
    plan.act(rfc, raised + dt.timedelta(minutes=10), "eve", "submit")
    plan.act(rfc, plan.business(raised, 1), "carl", "authorize", release_requirements=[])
    plan.act(rfc, plan.business(raised, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    plan.act(rfc, plan.business(raised, 2), "tess", "vote", vote="approve", comment="Low risk, no reboot.")
    plan.act(rfc, plan.business(raised, 2) + dt.timedelta(hours=1), "omar", "vote", vote="approve", comment="Fine.")
    plan.act(rfc, plan.business(raised, 3), "rita", "schedule", planned_start=start, planned_end=end)
    plan.act(rfc, start + dt.timedelta(minutes=5), "eve", "implement")
    done = plan.act(rfc, end - dt.timedelta(minutes=30), "eve", "complete", comment="Shadow storage moved to D:.")
    _problem_act(
        story,
        problem,
        done + dt.timedelta(days=2),
        "eve",
        "resolve",
        resolution="Shadow storage moved to the data disk by the RFC; no disk alert since.",
    )
    _problem_act(story, problem, done + dt.timedelta(days=6), "sam", "close")


# --------------------------------------------------------------------------- special incidents


def _special_incidents(story: Story) -> None:
    """What the generic lifecycle does not show: reopened, escalated, handed to change
    management, on hold for the customer or a vendor fix, new and unacknowledged, alerts that
    repeat, and an incident on a CI the day after an RFC completed there."""
    plan = story.plan
    ago = plan.ago

    # Reopened by the customer, resolved again, confirmed.
    name = "inc:acme-portal-reopened"
    opened = story.business_time("ACME", 12.0, 13.0)
    story.open_incident(
        name,
        opened,
        "pat",
        {
            "customer": "ACME",
            "title": "Supplier portal invoice upload fails for large PDFs",
            "cis": ["acme-portal", "acme-portal-app-02"],
            "priority": "high",
            "symptoms": "Uploads over 10 MB stop at 99 %.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=12), "mia", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=14), "mia", "take")
    story.time(name, opened + dt.timedelta(hours=2), "mia", 90, "Raised the upload limit on the proxy", 60)
    story.act(
        name,
        opened + dt.timedelta(hours=3),
        "mia",
        "resolve",
        details="The reverse proxy limited request bodies to 10 MB.",
        actions_taken="Raised the proxy's limit to 50 MB.",
    )
    story.act(
        name,
        opened + dt.timedelta(hours=20),
        "pat",
        "reopen",
        reason="Suppliers in Mexico still cannot upload; the portal times out after 60 seconds.",
    )
    story.time(name, opened + dt.timedelta(hours=23), "mia", 120, "Proxy timeout for slow uplinks", 60)
    story.act(
        name,
        opened + dt.timedelta(hours=24),
        "mia",
        "resolve",
        details="The proxy also timed out slow uploads after 60 seconds.",
        actions_taken="Raised the proxy's read timeout to 10 minutes; tested from a throttled link.",
    )
    story.act(name, opened + dt.timedelta(days=2), "pat", "confirm", comment="Mexico uploads work now.")

    # Escalated to a specialist, then resolved and confirmed.
    name = "inc:globex-search-escalated"
    opened = story.business_time("GLOBEX", 6.0, 7.0)
    story.open_incident(
        name,
        opened,
        "gwen",
        {
            "customer": "GLOBEX",
            "title": "Web shop search returns no products",
            "cis": ["globex-shop", "globex-shop-app-02"],
            "priority": "high",
            "symptoms": "Every search on the shop answers 'no products found'.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=10), "raj", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=11), "raj", "take")
    story.time(name, opened + dt.timedelta(minutes=50), "raj", 40, "Checked the web nodes and the cache", 30)
    story.act(
        name,
        opened + dt.timedelta(hours=1),
        "raj",
        "escalate",
        to="mia",
        reason="Looks like the Elasticsearch index, which Mia knows.",
    )
    story.time(name, opened + dt.timedelta(hours=2, minutes=30), "mia", 80, "Reindexed the catalogue", 60)
    story.act(
        name,
        opened + dt.timedelta(hours=3),
        "mia",
        "resolve",
        details="The catalogue index alias pointed at an empty index after a failed reindex.",
        actions_taken="Reindexed the catalogue and switched the alias.",
    )
    story.act(name, opened + dt.timedelta(hours=20), "gwen", "confirm")

    # Handed to change management: an RFC raised from the incident.
    name = "inc:globex-prices-rfc"
    opened = _minute(ago(days=3, hours=2))
    story.open_incident(
        name,
        opened,
        "gwen",
        {
            "customer": "GLOBEX",
            "title": "Nightly price update to the tills overruns into opening time",
            "cis": ["globex-pos", "globex-pos-db"],
            "priority": "normal",
            "symptoms": "Tills in six stores showed yesterday's prices for the first hour.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=40), "mia", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=42), "mia", "take")
    story.time(
        name, opened + dt.timedelta(hours=3), "mia", 150, "Timed the price job; it grows with the catalogue", 120
    )
    story.act_raising_rfc(
        name,
        "globex-price-job",
        opened + dt.timedelta(hours=4),
        "mia",
        reason="The price job must start two hours earlier and run per region; the schedule is a change.",
    )

    # On hold: waiting for the customer; waiting for a vendor fix; researching.
    name = "inc:initech-scanner-hold"
    opened = story.business_time("INITECH", 2.0, 3.0)
    story.open_incident(
        name,
        opened,
        "bill",
        {
            "customer": "INITECH",
            "title": "Reception scanner rejects A3 documents",
            "cis": ["initech-scan-01"],
            "priority": "low",
            "symptoms": "A3 scans stop with 'paper size not supported'.",
        },
    )
    story.act(name, opened + dt.timedelta(hours=1), "raj", "acknowledge")
    story.act(name, opened + dt.timedelta(hours=1, minutes=2), "raj", "take")
    story.act(
        name,
        opened + dt.timedelta(hours=2),
        "raj",
        "hold",
        reason="customer",
        comment="Asked Initech which scan profile reception uses.",
    )
    name = "inc:acme-mes-pending-fix"
    opened = story.business_time("ACME", 4.0, 5.0)
    story.open_incident(
        name,
        opened,
        "raj",
        {
            "customer": "ACME",
            "title": "MES label printer driver crashes the spooler",
            "cis": ["acme-mes", "acme-mes-srv-01"],
            "priority": "normal",
            "symptoms": "The spooler on acme-mes-srv-01 stops twice a day.",
            "reported_by": "Tom Becker",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=30), "raj", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=31), "raj", "take")
    story.time(name, opened + dt.timedelta(hours=2), "raj", 110, "Crash dump analysed: vendor driver fault", 90)
    story.act(
        name,
        opened + dt.timedelta(hours=3),
        "raj",
        "hold",
        reason="pending_fix",
        comment="Zebra confirmed the driver bug; fixed driver promised for next week. Spooler restarts meanwhile.",
    )
    name = "inc:globex-loyalty-research"
    opened = story.business_time("GLOBEX", 1.0, 2.0)
    story.open_incident(
        name,
        opened,
        "gwen",
        {
            "customer": "GLOBEX",
            "title": "Loyalty app crashes on Android 15",
            "cis": ["globex-loyalty", "globex-loyalty-app-01"],
            "priority": "normal",
            "symptoms": "The app closes when customers open their points balance.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=50), "mia", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=52), "mia", "take")
    story.act(
        name, opened + dt.timedelta(hours=2), "mia", "hold", reason="research", comment="Reproducing on a test phone."
    )

    # Open now: a critical one past its targets (escalated at the present), a high one in work.
    name = "inc:initech-claims-down"
    opened = _minute(ago(hours=7))
    story.open_incident(
        name,
        opened,
        "bill",
        {
            "customer": "INITECH",
            "title": "Claims system unavailable for all adjusters",
            "cis": ["Initech Claims", "initech-claims-app-02"],
            "priority": "critical",
            "symptoms": "ClaimCenter answers HTTP 500 for every page since this morning.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=25), "eve", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=27), "sam", "assign", person="eve")
    story.tell(
        name, opened + dt.timedelta(hours=1), "sam", "phone", "Hourly update to Initech's head of claims.", "bill"
    )
    story.time(name, opened + dt.timedelta(hours=3), "eve", 150, "Database connection pool exhausted; tracing", 240)
    name = "inc:scl-fleet-open"
    opened = _minute(ago(hours=3))
    story.open_incident(
        name,
        opened,
        "liam",
        {
            "customer": "SCL",
            "title": "Fleet tracking shows no positions for the Melbourne trucks",
            "cis": ["scl-fleet", "scl-fleet-app-02"],
            "priority": "high",
            "symptoms": "Melbourne trucks show their last position from yesterday.",
        },
    )
    story.act(name, opened + dt.timedelta(minutes=20), "raj", "acknowledge")
    story.act(name, opened + dt.timedelta(minutes=21), "raj", "take")

    # New, from monitoring, nobody on it yet; a repeat joins it.
    story.alert("alert:acme-erp-cpu", ago(minutes=40), "ACME", "acme-erp-app-02", "cpu_percent", 96, duration_s=600)
    story.alert("alert:acme-erp-cpu", ago(minutes=25), "ACME", "acme-erp-app-02", "cpu_percent", 98, duration_s=1500)
    story.alert(None, ago(minutes=30), "GLOBEX", "globex-shop-app-03", "cpu_percent", 62, duration_s=600)

    # Alerts through the weeks, worked like any incident; some repeat and join.
    for name, days, customer, ci, metric, value, extra in (
        ("alert:globex-backup", 33.0, "GLOBEX", "globex-pos-db", "backup", "failure", {"message": "Job POS-DB failed"}),
        ("alert:initech-virus", 27.0, "INITECH", "initech-ws-004", "virus", "Trojan:Win32/Wacatac.B!ml", {}),
        ("alert:initech-ups", 44.0, "INITECH", "initech-ups-01", "ups", "warning", {"message": "On battery"}),
        ("alert:scl-backup", 18.0, "SCL", "scl-payroll-db", "backup", "failure", {"message": "VSS writer failed"}),
        ("alert:acme-eventlog", 25.0, "ACME", "acme-dc-01", "event_log", "error", {"message": "NTDS replication"}),
        ("alert:globex-disk", 14.0, "GLOBEX", "globex-wms-db-01", "disk_data_free_percent", 6, {}),
    ):
        opened = story.business_time(customer, days, days + 1.0, office=0.5)
        story.alert(name, opened, customer, ci, metric, value, **extra)
        story.alert(name, opened + dt.timedelta(minutes=15), customer, ci, metric, value, **extra)
        _lifecycle(
            story,
            name,
            customer,
            opened,
            "high" if metric == "virus" else "normal",
            f"Monitoring reported {metric.replace('_', ' ')} on {ci}.",
            "Checked the cause with the runbook and fixed it; the next check was green.",
        )
    for customer, ci in (("ACME", "acme-erp-app-01"), ("SCL", "scl-fleet-app-01"), ("INITECH", "initech-crm-app-02")):
        story.alert(None, story.business_time(customer, 5.0, 50.0), customer, ci, "cpu_percent", 71, duration_s=600)

    # The day after an RFC completed on a CI: the incident page shows the change.
    for rfc, customer, cis, title, by in (
        ("scl-sql-cu", "SCL", ["scl-dispatch-db"], "Dispatch lookups time out in the morning", "liam"),
        ("acme-test-reimage", "ACME", ["acme-erp-tst-01"], "SAP test instance does not start", "pat"),
    ):
        done = plan._last.get(rfc)
        if done is None:
            continue
        name = f"inc:after:{rfc}"
        opened = _minute(done + dt.timedelta(hours=18))
        story.open_incident(
            name,
            opened,
            by,
            {
                "customer": customer,
                "title": title,
                "cis": cis,
                "priority": "normal",
                "symptoms": "Since yesterday's maintenance window.",
            },
        )
        _lifecycle(
            story,
            name,
            customer,
            opened,
            "normal",
            "A setting changed by yesterday's change was not carried over.",
            "Restored the setting as documented in the RFC's plan.",
            engineer="mia",
        )


# ---------------------------------------------------------------------------- the scheduler


def _scheduler_rounds(story: Story) -> None:
    """The escalation jobs as the scheduler runs them (every few hours here), so escalations
    are raised when their points were reached, not all at the end."""
    ctx, ops = story.ctx, story.ops
    at = story.plan.earliest + dt.timedelta(hours=3)
    n = 0
    while at < story.now:

        async def run() -> None:
            now = ctx.clock.now()
            await ops.incidents.escalate_due(now)

        story.at(f"scheduler:{n}", at, run)
        if n % 8 == 0:

            async def patches() -> None:
                await ops.patches.escalate(ctx.clock.now())

            story.at(f"scheduler:patches:{n}", at, patches)
        at += dt.timedelta(hours=3)
        n += 1


# ---------------------------------------------------------------------------------- stories


async def operations_story(plan: ChangePlan) -> None:
    """Releases, incidents, alerts and problems, planned into the change plan (see the module
    docstring for why)."""
    ctx = plan.ctx
    story = Story(plan, operations(ctx))
    await _acme_october_update(story)
    await _scl_dispatch_update(story)
    await _initech_backed_out(story)
    await _current_releases(story)
    _at_risk_patch(story)
    slot = await plan.last_slot("ACME", ["acme-fs-01"], 120, ctx.now - dt.timedelta(days=16))
    _acme_resolved_by_rfc(story, slot)
    _globex_known_error(story)
    _special_incidents(story)
    for customer in CONTACTS:
        _generic_incidents(story, customer)
    _scheduler_rounds(story)


OPERATION_STORIES: tuple[Callable[[ChangePlan], Awaitable[None]], ...] = (operations_story,)


# ------------------------------------------------------------------------------------ steps


def finished_month(present: dt.datetime, customers: Sequence[Customer]) -> str:
    """The last month that is over in every customer's zone at `present`."""
    local_days = [present.astimezone(ZoneInfo(c.timezone or "UTC")).date() for c in customers] or [present.date()]
    first = min(local_days).replace(day=1)
    last = first - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


async def issue_monthly_reports(ctx: DemoContext) -> None:
    """The finished month's report for every customer, issued (frozen) by the scheduler's first
    round on the first business day of the next month in the customer's calendar (by the service
    manager at the present if that day has not come yet)."""
    ops = operations(ctx)
    customers = [c for key, c in ctx.customers.items() if key != ctx.pkey]
    month = finished_month(ctx.now, customers)
    ops.month = month
    year, number = int(month[:4]), int(month[5:])
    following = dt.date(year + number // 12, number % 12 + 1, 1)
    due: list[tuple[dt.datetime, Customer]] = []
    for customer in customers:
        calendar = customer_calendar(customer)
        opening = first_business_day(calendar, following.year, following.month)
        due.append((_local(opening, "00:10", calendar.timezone), customer))
    for at, customer in sorted(due, key=lambda item: (item[0], item[1].key)):
        if at <= ctx.now:
            ctx.clock.set(at)
            ops.reports_issued += await ops.reports.issue_due(at)
        else:
            ctx.clock.set(ctx.now)
            try:
                await ops.reports.issue(ctx.actors["sam"], customer.key, month)
            except Conflict:  # issued already with another customer's round
                continue
            ops.reports_issued += 1
    ctx.clock.set(ctx.now)


async def raise_escalations(ctx: DemoContext) -> None:
    """The scheduler's escalation jobs once at the present: what is overdue now reaches the
    service manager's inbox."""
    ops = operations(ctx)
    ctx.clock.set(ctx.now)
    ops.escalations += await ops.incidents.escalate_due(ctx.now)
    ops.escalations += await ops.patches.escalate(ctx.now)


__all__ = [
    "OPERATION_STORIES",
    "Operations",
    "OperationsFigures",
    "build_operations",
    "finished_month",
    "issue_monthly_reports",
    "operations",
    "operations_figures",
    "raise_escalations",
]
