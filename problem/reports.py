"""The monthly customer report: computed live from every process's records, frozen when issued.

A report covers one customer and one calendar month in the customer's own time zone. Until it
is issued it is computed on each request (`frozen: false`); issuing stores the whole report
(`monthly_report.data`), and from then on every reader gets that frozen copy, so a later edit
to an incident or an RFC never shifts what the customer was sent. The page compares the frozen
copy with a live recomputation to show what changed since.

The scheduler job "monthly-reports" issues last month's report for every customer on (or, if
it was down, after) the first business day of the month in the customer's calendar, once per
customer and month (a unique index decides), and notifies the customer's report contacts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from change.models import RFCState
from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.calendar import BusinessCalendar
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Customer, Scope
from cmdb.notifications import NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService, system_actor
from incident.services import IncidentService
from problem import report_repository as repo
from problem.report_summary import SummaryFigures, month_bounds_local, month_label, percent, summary_sentences
from problem.services import ProblemService
from release.patches import PatchService

log = logging.getLogger("keel.reports")

MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
PRIORITIES = repo.PRIORITY_ORDER
REVERSED_ACTIONS = ("failed", "backed_out")
ISSUE_BATCH = 100  # reports the scheduler issues in one round
STATE_LABELS = {state.value: state.label for state in RFCState}


def _iso(value: Any) -> str:
    """A stored UTC timestamp as ISO 8601. SQLite hands back the text Piccolo wrote
    ("2026-10-03 10:00:00+00:00"): swapping the space for a "T" is the same answer as parsing
    it and calling isoformat, without the cost for thousands of rows."""
    if isinstance(value, str) and value.endswith("+00:00") and value[10:11] == " ":
        return value[:10] + "T" + value[11:]
    return cmdb_repo._utc(value).isoformat()


@dataclass(frozen=True)
class ReportPeriod:
    """A customer's month as UTC instants [start, end), with its weeks (Monday to Sunday,
    the first and last cut at the month's edges)."""

    month: str
    timezone: str
    start: dt.datetime
    end: dt.datetime
    week_starts: tuple[dt.datetime, ...]
    week_labels: tuple[str, ...]
    over: bool  # the month has ended in the customer's zone


def parse_month(value: str | None) -> str:
    if not value or not MONTH_PATTERN.match(value.strip()):
        raise InvalidInput.field("month", "must be a month as YYYY-MM, for example 2026-10")
    return value.strip()


def period_for(calendar: BusinessCalendar, month: str, now: dt.datetime) -> ReportPeriod:
    """The month's bounds in the customer's zone; 422 for a month that has not started yet."""
    tz = calendar.tz
    first, following = month_bounds_local(month)
    today = now.astimezone(tz).date()
    if first > today:
        raise InvalidInput.field("month", f"{month} is in the future: there is nothing to report yet")

    def instant(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)

    days = [first]
    day = first + dt.timedelta(days=1)
    while day < following:
        if day.isoweekday() == 1:
            days.append(day)
        day += dt.timedelta(days=1)
    return ReportPeriod(
        month=month,
        timezone=calendar.timezone,
        start=instant(first),
        end=instant(following),
        week_starts=tuple(instant(d) for d in days),
        week_labels=tuple(f"{d.day} {d.strftime('%b')}" for d in days),
        over=following <= today,
    )


def first_business_day(calendar: BusinessCalendar, year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first if calendar.is_business_day(first) else calendar.next_business_day(first)


def previous_month(day: dt.date) -> str:
    last = day.replace(day=1) - dt.timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def customer_calendar(customer: Customer) -> BusinessCalendar:
    data = dict(customer.calendar)
    data.setdefault("timezone", customer.timezone or "UTC")
    if customer.holiday_region and "holiday_region" not in data:
        data["holiday_region"] = customer.holiday_region
    try:
        return BusinessCalendar.from_dict(data)
    except ValueError:  # a calendar the CMDB accepted earlier but that no longer parses
        return BusinessCalendar(timezone=customer.timezone or "UTC")


@dataclass(frozen=True)
class MonthlyReport:
    data: dict[str, Any]
    frozen: bool
    issued_at: dt.datetime | None = None
    issued_by: str = ""
    changes: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.data,
            "frozen": self.frozen,
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "issued_by": self.issued_by or None,
        }


# --- the figures that "what changed since" compares ---------------------------------------------


def key_figures(data: Mapping[str, Any]) -> dict[str, int]:
    """The countable figures of a report, by a label a reader understands."""
    incidents = data.get("incidents") or {}
    sla = data.get("sla") or {}
    rfcs = data.get("rfcs") or {}
    alerts = (data.get("health") or {}).get("alerts") or {}
    figures: dict[str, int] = {
        "Incidents": int(incidents.get("total", 0)),
        "Incidents resolved": int(incidents.get("resolved", 0)),
        "Incidents open at the end of the month": int(incidents.get("open_at_end", 0)),
        "Incidents reopened": int(incidents.get("reopened", 0)),
        "Incidents escalated": int(incidents.get("escalated", 0)),
        "Answered within the agreed time": int((sla.get("response") or {}).get("met", 0)),
        "Response measured": int((sla.get("response") or {}).get("measured", 0)),
        "Fixed within the agreed time": int((sla.get("resolution") or {}).get("met", 0)),
        "Resolution measured": int((sla.get("resolution") or {}).get("measured", 0)),
        "Monitoring warnings": int(alerts.get("received", 0)),
        "Planned changes open at the end of the month": int((rfcs.get("counts") or {}).get("open_at_end", 0)),
        "Planned changes completed": int((rfcs.get("counts") or {}).get("completed", 0)),
        "Planned changes reversed": int((rfcs.get("counts") or {}).get("reversed", 0)),
    }
    for priority, count in (incidents.get("by_priority") or {}).items():
        figures[f"{str(priority).capitalize()} incidents"] = int(count)
    return figures


def figure_changes(issued: Mapping[str, Any], live: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Figures whose value differs between the issued report and a recomputation now."""
    before, after = key_figures(issued), key_figures(live)
    return [
        {"figure": name, "issued": before.get(name, 0), "now": after.get(name, 0)}
        for name in [*before, *(n for n in after if n not in before)]
        if before.get(name, 0) != after.get(name, 0)
    ]


class ReportService:
    def __init__(
        self,
        clock: Clock,
        cmdb: CMDBService,
        change: ChangeService,
        patches: PatchService,
        incidents: IncidentService,
        problems: ProblemService,
        notifications: NotificationService | None = None,
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.patches = patches
        self.incidents = incidents
        self.problems = problems
        self.notifications = notifications or getattr(patches, "notifications", None)

    # --- reading ---------------------------------------------------------------------------

    async def _resolve(
        self, actor: Actor, customer_ref: int | str | None, month: str | None
    ) -> tuple[Customer, ReportPeriod]:
        problems: list[FieldProblem] = []
        if customer_ref is None or customer_ref == "":
            problems.append(FieldProblem("customer", "is required (the customer's key or id)"))
        if not month or not MONTH_PATTERN.match(month.strip()):
            problems.append(FieldProblem("month", "must be a month as YYYY-MM, for example 2026-10"))
        if problems:
            raise InvalidInput(problems)
        assert customer_ref is not None and month is not None
        customer = await self.cmdb.get_customer(actor, customer_ref)  # another tenant's: NotFound
        return customer, period_for(customer_calendar(customer), month.strip(), self.clock.now())

    async def monthly(
        self, actor: Actor, customer_ref: int | str | None, month: str | None, *, live: bool = False
    ) -> MonthlyReport:
        """The frozen copy once issued (unless `live`), else a live computation. The current
        month is answered as a draft of the figures so far (`draft: true`)."""
        customer, period = await self._resolve(actor, customer_ref, month)
        if not live:
            stored = await repo.issued(customer.id, period.month)
            if stored is not None:
                return MonthlyReport(stored["data"], True, stored["issued_at"], stored["issued_by"])
        return MonthlyReport(await self.compute(customer, period), False)

    async def with_changes(self, actor: Actor, customer_ref: int | str | None, month: str | None) -> MonthlyReport:
        """The report as `monthly` answers it, plus, for an issued one, the figures that differ
        in a recomputation now."""
        report = await self.monthly(actor, customer_ref, month)
        if not report.frozen:
            return report
        customer, period = await self._resolve(actor, customer_ref, month)
        live = await self.compute(customer, period)
        return MonthlyReport(report.data, True, report.issued_at, report.issued_by, figure_changes(report.data, live))

    # --- computing -------------------------------------------------------------------------

    async def compute(self, customer: Customer, period: ReportPeriod) -> dict[str, Any]:
        now = self.clock.now()
        start, end = period.start, period.end
        # The RFC section first: its reads then come back early and the shaping of its
        # thousands of rows in Python overlaps the aggregates still running on the database.
        (
            rfcs,
            buckets,
            scalars,
            items,
            alerts_by_metric,
            patch_compliance,
            problems,
            repeated,
            releases,
        ) = await _together(
            self._rfc_section(customer.id, period, now),
            repo.incident_buckets(customer.id, start, end, period.week_starts, now),
            repo.incident_scalars(customer.id, start, end, min(end, now)),
            repo.notable_incidents(customer.id, start, end),
            repo.alert_counts(customer.id, start, end),
            self._patch_compliance(customer, period.month),
            repo.problems_of_month(customer.id, start, end),
            repo.repeated_cis(customer.id, start, end),
            repo.release_incidents(customer.id, start, end),
        )
        incidents = self._incident_section(buckets, period)
        incidents.update(scalars)
        incidents["items"] = items
        sla = self._sla_section(buckets, customer)
        findings, recommendations = self._findings(
            period, incidents, sla, patch_compliance, problems, repeated, releases
        )

        alerts = {
            name: sum(row[name] for row in alerts_by_metric) for name in ("received", "breached", "opened", "joined")
        }
        alerts["ignored"] = alerts["received"] - alerts["opened"] - alerts["joined"]
        health = {
            "alerts": alerts,
            "by_metric": alerts_by_metric,
            "actions": {
                "incidents_from_alerts": incidents["from_alerts"],
                "minutes_worked": incidents["minutes_worked"],
                "changes_completed": rfcs["counts"]["completed"],
            },
        }
        patches_due, patches_on_time = _patch_counts(patch_compliance)
        figures = SummaryFigures(
            customer_name=customer.name,
            month=period.month,
            incidents=incidents["total"],
            urgent_incidents=incidents["by_priority"].get("critical", 0),
            response_met=sla["response"]["met"],
            response_measured=sla["response"]["measured"],
            resolution_met=sla["resolution"]["met"],
            resolution_measured=sla["resolution"]["measured"],
            incidents_open_at_end=incidents["open_at_end"],
            alerts_received=alerts["received"],
            alerts_acted_on=alerts["opened"] + alerts["joined"],
            changes_completed=rfcs["counts"]["completed"],
            changes_open_at_end=rfcs["counts"]["open_at_end"],
            changes_reversed=rfcs["counts"]["reversed"],
            patches_due=patches_due,
            patches_on_time=patches_on_time,
            problems_investigated=sum(1 for f in findings if f["kind"] == "problem_open"),
            problems_solved=sum(1 for f in findings if f["kind"] == "problem_resolved"),
        )
        sentences = summary_sentences(figures)
        return {
            "customer": customer.key,
            "customer_name": customer.name,
            "month": period.month,
            "month_label": month_label(period.month),
            "period": {"start": start.isoformat(), "end": end.isoformat(), "timezone": period.timezone},
            "draft": not period.over,
            "generated_at": now.isoformat(),
            "summary": " ".join(sentences),
            "summary_sentences": sentences,
            "health": health,
            "incidents": incidents,
            "sla": sla,
            "rfcs": rfcs,
            "patch_compliance": patch_compliance,
            "findings": findings,
            "recommendations": recommendations,
        }

    @staticmethod
    def _incident_section(buckets: Sequence[Mapping[str, Any]], period: ReportPeriod) -> dict[str, Any]:
        by_priority = {p: 0 for p in PRIORITIES}
        weeks: list[dict[str, Any]] = [
            {"start": start.isoformat(), "label": label, "counts": {p: 0 for p in PRIORITIES}}
            for start, label in zip(period.week_starts, period.week_labels, strict=True)
        ]
        totals = {"total": 0, "resolved": 0, "reopened": 0, "from_alerts": 0}
        for row in buckets:
            priority = str(row["priority"])
            by_priority[priority] = by_priority.get(priority, 0) + row["total"]
            week = min(max(int(row["week"]), 0), len(weeks) - 1)
            weeks[week]["counts"][priority] = weeks[week]["counts"].get(priority, 0) + row["total"]
            for name in totals:
                totals[name] += row[name]
        return {**totals, "by_priority": by_priority, "weeks": weeks}

    @staticmethod
    def _sla_section(buckets: Sequence[Mapping[str, Any]], customer: Customer) -> dict[str, Any]:
        def measure(rows: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Any]:
            met = sum(row[f"{kind}_met"] for row in rows)
            measured = sum(row[f"{kind}_measured"] for row in rows)
            return {"met": met, "measured": measured, "percent": percent(met, measured)}

        by_priority = {}
        for priority in PRIORITIES:
            rows = [row for row in buckets if row["priority"] == priority]
            if rows:
                by_priority[priority] = {
                    "response": measure(rows, "response"),
                    "resolution": measure(rows, "resolution"),
                }
        target = customer.sla.get("report_target_percent")
        return {
            "response": measure(buckets, "response"),
            "resolution": measure(buckets, "resolution"),
            "by_priority": by_priority,
            "target_percent": int(target) if isinstance(target, int | float) else None,
        }

    async def _rfc_section(self, tenant_id: int, period: ReportPeriod, now: dt.datetime) -> dict[str, Any]:
        cut = min(period.end, now)
        open_rows, outcomes = await _together(
            repo.rfcs_open_at(tenant_id, cut),
            repo.rfc_outcomes(tenant_id, period.start, period.end, ("completed", *REVERSED_ACTIONS)),
        )

        labels = STATE_LABELS

        def item(row: Sequence[Any]) -> dict[str, Any]:
            # row is repo.RFC_ROW: id, key, title, state, priority, type, urgency, created_at
            return {
                "id": row[0],
                "key": row[1],
                "title": row[2],
                "state": row[3],
                "state_label": labels.get(row[3], row[3]),
                "priority": row[4],
                "type": row[5],
                "urgency": row[6],
                "created_at": _iso(row[7]),
            }

        open_items = [item(row) for row in open_rows]
        completed: list[dict[str, Any]] = []
        reversed_: list[dict[str, Any]] = []
        for row in outcomes:
            entry = item(row)
            entry["outcome"] = row[8]
            entry["at"] = _iso(row[9])
            (completed if row[8] == "completed" else reversed_).append(entry)
        by_state: dict[str, int] = {}
        for entry in open_items:
            by_state[entry["state"]] = by_state.get(entry["state"], 0) + 1
        if completed:
            by_state["completed"] = by_state.get("completed", 0) + len(completed)
        for entry in reversed_:
            by_state[entry["outcome"]] = by_state.get(entry["outcome"], 0) + 1
        return {
            "open_at_end": open_items,
            "completed": completed,
            "reversed": reversed_,
            "by_state": by_state,
            "counts": {"open_at_end": len(open_items), "completed": len(completed), "reversed": len(reversed_)},
            "state_basis": "state at the end of the month, rebuilt from each RFC's history",
        }

    async def _patch_compliance(self, customer: Customer, month: str) -> dict[str, Any]:
        provider = await self.cmdb.provider()
        result = await self.patches.compliance(system_actor(provider), customer.id, month)
        return dict(result.as_dict())

    @staticmethod
    def _findings(
        period: ReportPeriod,
        incidents: Mapping[str, Any],
        sla: Mapping[str, Any],
        patch_compliance: Mapping[str, Any] | None,
        problems: Sequence[Mapping[str, Any]],
        repeated: Sequence[Mapping[str, Any]],
        releases: Sequence[Mapping[str, Any]],
    ) -> tuple[list[dict[str, Any]], list[str]]:
        findings: list[dict[str, Any]] = []
        recommendations: list[str] = []
        for problem in problems:
            closed = problem["status"] in repo.CLOSED_PROBLEM_STATES
            if closed and period.start <= problem["updated_at"] < period.end:
                cause = f" Cause: {problem['root_cause']}." if problem["root_cause"] else ""
                findings.append(
                    {
                        "kind": "problem_resolved",
                        "ref": problem["key"],
                        "text": f"{problem['key']} {problem['title']}: the underlying cause was removed.{cause}",
                    }
                )
            elif not closed:
                opened = period.start <= problem["created_at"] < period.end
                text = f"{problem['key']} {problem['title']}: " + (
                    "opened this month to find the underlying cause." if opened else "still being investigated."
                )
                if problem["known_error"] and problem["workaround"]:
                    text += f" Cause known; workaround: {problem['workaround']}"
                findings.append({"kind": "problem_open", "ref": problem["key"], "text": text})
        for repeat in repeated:
            text = f"{repeat['incidents']} incidents on {repeat['name']} this month"
            findings.append({"kind": "repeated", "ref": repeat["name"], "text": text + "."})
            if repeat["problem"]:
                recommendations.append(f"{text}: a problem ({repeat['problem']}) is open to find the cause.")
            else:
                recommendations.append(f"{text}: we recommend looking for the underlying cause.")
        for release in releases:
            findings.append(
                {
                    "kind": "release",
                    "ref": release["key"],
                    "text": f"{release['incidents']} incident(s) followed the update {release['key']} "
                    f"({release['title']}).",
                }
            )
        lacking = (patch_compliance or {}).get("lacking") or []
        if lacking:
            names = sorted({str(item.get("ci_name") or item.get("ci")) for item in lacking})
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            recommendations.append(
                f"{len(names)} system(s) still lack an overdue security or software update ({shown}): "
                "we recommend agreeing a time to install them."
            )
        target = sla.get("target_percent")
        for kind, words in (("response", "answered"), ("resolution", "fixed")):
            value = sla[kind]["percent"]
            if target is not None and value is not None and value < target:
                recommendations.append(
                    f"Only {value} % of incidents were {words} within the agreed time (target {target} %): "
                    "we will review staffing and escalation with you."
                )
        if incidents.get("reopened"):
            n = incidents["reopened"]
            recommendations.append(
                f"{n} incident(s) came back after being fixed: we will check those fixes more closely."
            )
        return findings, recommendations

    # --- issuing ---------------------------------------------------------------------------

    async def issue(self, actor: Actor, customer_ref: int | str | None, month: str | None) -> MonthlyReport:
        """Freeze the report (provider staff only). 422 while the month is not over; 409 once issued."""
        if not actor.is_provider_staff:
            raise Forbidden("Only the provider's staff issue monthly reports.")
        customer, period = await self._resolve(actor, customer_ref, month)
        if not period.over:
            raise InvalidInput.field(
                "month", f"{period.month} is not over yet: a report is issued after its month ends"
            )
        report = await self._issue(customer, period, actor.username)
        if report is None:
            raise Conflict(
                f"The {month_label(period.month)} report for {customer.key} was issued already.",
                state="issued",
                allowed=[],
            )
        return report

    async def _issue(self, customer: Customer, period: ReportPeriod, issued_by: str) -> MonthlyReport | None:
        data = await self.compute(customer, period)
        now = self.clock.now()
        async with atomic(repo.engine()):
            if not await repo.insert_issued(customer.id, period.month, now, issued_by, data):
                return None
            await self._notify(customer, data)
        return MonthlyReport(data, True, now, issued_by)

    async def _notify(self, customer: Customer, data: Mapping[str, Any]) -> None:
        if self.notifications is None:
            return
        named = customer.sla.get("report_contacts") or []
        usernames = [str(name) for name in named] if isinstance(named, list) else []
        contacts = await repo.report_contacts(customer.id, usernames)
        await self.notifications.notify(
            contacts,
            tenant_id=customer.id,
            kind="report.monthly",
            subject=f"Your {data['month_label']} service report is ready",
            body=str(data.get("summary", "")),
            link=f"/reports/monthly/{customer.key}/{data['month']}",
        )

    async def issue_due(self, now: dt.datetime) -> int:
        """The scheduler job: on or after the first business day of a month in each customer's
        calendar, issue last month's report once. Answers how many were issued."""
        customers, _ = await cmdb_repo.list_customers(Scope.everything(0), 10_000, 0)
        due: list[tuple[Customer, BusinessCalendar, str]] = []
        for customer in customers:
            if customer.is_provider:
                continue
            calendar = customer_calendar(customer)
            today = now.astimezone(calendar.tz).date()
            try:
                opening = first_business_day(calendar, today.year, today.month)
            except ValueError:
                continue
            if today >= opening:
                due.append((customer, calendar, previous_month(today)))
        done = await repo.issued_tenants(sorted({month for _, _, month in due}))
        issued = 0
        waiting = [(customer, calendar, month) for customer, calendar, month in due if (customer.id, month) not in done]
        # A bounded batch per run keeps each scheduler round short; the rest follow next round.
        for customer, calendar, month in waiting[:ISSUE_BATCH]:
            try:
                report = await self._issue(customer, period_for(calendar, month, now), "scheduler")
            except Exception:  # one customer's failure must not hold back the others
                log.exception("monthly report for %s %s failed", customer.key, month)
                continue
            issued += report is not None
        return issued

    def jobs(self) -> list[Job]:
        return [Job("monthly-reports", dt.timedelta(minutes=15), self.issue_due)]


async def _together(*steps: Awaitable[Any]) -> list[Any]:
    """Run independent reads at once: on PostgreSQL each takes a pooled connection, on SQLite
    they queue on the one reader while Python shapes the rows of the previous ones. Inside a
    caller's transaction they run one after the other (one connection cannot run two at once)."""
    if repo.engine().current_transaction.get() is not None:
        return [await step for step in steps]
    return list(await asyncio.gather(*steps))


def _patch_counts(compliance: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """Due and on-time counts from PatchService's compliance (`counts.due`, `counts.met_on_time`)."""
    counts = (compliance or {}).get("counts") or {}
    due, met = counts.get("due"), counts.get("met_on_time")
    if not isinstance(due, int) or not isinstance(met, int):
        return None, None
    return due, met
