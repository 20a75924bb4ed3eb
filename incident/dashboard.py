"""The service manager's dashboard: SLA attainment, escalation, reopen and first-contact rates,
and estimated against actual time per engineer, for a period and one customer or all.

Reads the incident tables with a few raw, read-only queries (the figures are aggregates over
many incidents, so loading full records through the repository would be wasted work) and hands
plain rows to the pure counting in :mod:`incident.metrics`, where every figure is defined.

Who may read: provider staff with the service manager, administrator or engineer role. Customer
contacts get 403: the figures name provider engineers and their time, which is internal; the
customer's own SLA attainment is in their monthly report.

The period is whole UTC days, `period_from` to `period_to` both included.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cmdb import db
from cmdb import repository as repo
from cmdb.errors import FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from cmdb.services import Clock, CMDBService
from incident.metrics import IncidentFacts, ServiceFigures, TimeFacts, last_full_month, service_figures

READERS = (Role.SERVICE_MANAGER, Role.ADMINISTRATOR, Role.ENGINEER)
MAX_PERIOD_DAYS = 400
ESCALATION_KIND = "incident"
# History actions (incident.workflow.EVENT_KINDS) that hand an incident to an engineer or
# escalate it. Escalation to change management raises an RFC: an incident with an RFC key
# counts as escalated too.
ESCALATE_ACTIONS = ("escalated", "rfc_raised")
HANDOVER_ACTIONS = ("assigned", "taken", *ESCALATE_ACTIONS)


@dataclass(frozen=True)
class DashboardFigures:
    period_from: dt.date
    period_to: dt.date
    customer_id: int | None
    customer_key: str | None
    computed_at: dt.datetime
    figures: ServiceFigures

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.period_from.isoformat(),
            "to": self.period_to.isoformat(),
            "customer": self.customer_key,
            "computed_at": self.computed_at.isoformat(),
            **self.figures.as_dict(),
        }


def may_read(actor: Actor) -> bool:
    return actor.is_provider_staff and actor.has_any(*READERS)


def _moment(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def _resolved_at(row: Mapping[str, Any]) -> dt.datetime | None:
    """When the incident was resolved, if it stands resolved now: closed, or resolved and
    awaiting the customer's confirmation. A resolution the customer refused (reopened, back to
    open) no longer counts, as in the SLA clock (:func:`incident.sla.sla_clock`)."""
    if row["status"] == "closed":
        return _moment(row["resolved_at"]) or _moment(row["closed_at"])
    if row["status"] == "hold_resolution" and row["waiting_for"] == "confirmation":
        return _moment(row["resolved_at"])
    return None


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def check_period(period_from: dt.date | None, period_to: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The period asked for, or the last full month; both days included."""
    default_from, next_month = last_full_month(today)
    start = period_from or (default_from if period_to is None else period_to.replace(day=1))
    end = period_to or (next_month - dt.timedelta(days=1) if period_from is None else today)
    problems = []
    if end < start:
        problems.append(FieldProblem("to", "must be on or after the start of the period"))
    elif (end - start).days + 1 > MAX_PERIOD_DAYS:
        problems.append(FieldProblem("to", f"must be at most {MAX_PERIOD_DAYS} days after the start"))
    if problems:
        raise InvalidInput(problems)
    return start, end


class ServiceDashboard:
    def __init__(self, clock: Clock, cmdb: CMDBService) -> None:
        self.clock = clock
        self.cmdb = cmdb

    async def figures(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        period_from: dt.date | None = None,
        period_to: dt.date | None = None,
    ) -> DashboardFigures:
        if not may_read(actor):
            raise Forbidden(
                "The service dashboard is for the provider's service managers, engineers and administrators."
            )
        now = self.clock.now()
        start, end = check_period(period_from, period_to, now.astimezone(dt.UTC).date())
        tenant_id: int | None = None
        customer_key: str | None = None
        if customer is not None and customer != "":
            found = await self.cmdb.get_customer(actor, customer)  # NotFound for an unknown key
            tenant_id, customer_key = found.id, found.key
        since, until = _start_of(start), _start_of(end + dt.timedelta(days=1))
        incidents = await self._incidents(tenant_id, since, until)
        entries = await self._time_entries(tenant_id, since, until)
        return DashboardFigures(
            period_from=start,
            period_to=end,
            customer_id=tenant_id,
            customer_key=customer_key,
            computed_at=now,
            figures=service_figures(incidents, entries, now),
        )

    async def _incidents(self, tenant_id: int | None, since: dt.datetime, until: dt.datetime) -> list[IncidentFacts]:
        engine = repo.engine()
        where = "i.created_at >= ? AND i.created_at < ?"
        args: list[Any] = [since, until]
        if tenant_id is not None:
            where += " AND i.tenant = ?"
            args.append(tenant_id)
        rows = await db.fetch(
            engine,
            "SELECT i.id, i.tenant, i.priority, i.created_at, i.response_due, i.resolution_due,"
            " i.acknowledged_at, i.responded_at, i.resolved_at, i.closed_at, i.status, i.waiting_for,"
            f" i.reopen_count, i.rfc_key FROM incident i WHERE {where}",
            *args,
        )
        if not rows:
            return []
        escalated = await self._escalated(where, args)
        reassigned, technical = await self._handovers(where, args)
        escalated |= technical
        return [
            IncidentFacts(
                id=int(row["id"]),
                tenant_id=int(row["tenant"]),
                priority=str(row["priority"]),
                created_at=_moment(row["created_at"]) or since,
                response_due=_moment(row["response_due"]),
                responded_at=_moment(row["responded_at"]) or _moment(row["acknowledged_at"]),
                resolution_due=_moment(row["resolution_due"]),
                resolved_at=_resolved_at(row),
                reopen_count=int(row["reopen_count"] or 0),
                reassignments=reassigned.get(int(row["id"]), 0),
                escalated=bool(row["rfc_key"]) or int(row["id"]) in escalated,
            )
            for row in rows
        ]

    async def _escalated(self, where: str, args: Sequence[Any]) -> set[int]:
        """Incidents escalated administratively: a row in `escalation` (at a share of the SLA
        time or at breach)."""
        rows = await db.fetch(
            repo.engine(),
            "SELECT DISTINCT e.subject_id AS id FROM escalation e JOIN incident i ON i.id = e.subject_id"
            f" WHERE e.subject_kind = ? AND {where}",
            ESCALATION_KIND,
            *args,
        )
        return {int(row["id"]) for row in rows}

    async def _handovers(self, where: str, args: Sequence[Any]) -> tuple[dict[int, int], set[int]]:
        """From the incidents' history: per incident, how often it went from one engineer to
        another (assign, take or escalate with a previous assignee), and which incidents were
        escalated technically (escalate, raise-rfc, or a reassignment, which the workflow
        records as a technical escalation)."""
        marks = ", ".join("?" for _ in HANDOVER_ACTIONS)
        rows = await db.fetch(
            repo.engine(),
            "SELECT h.entity_id AS id, h.action AS action, h.after AS after FROM history h"
            " JOIN incident i ON i.id = h.entity_id"
            f" WHERE h.entity = 'incident' AND h.ci_id IS NULL AND h.action IN ({marks}) AND {where}",
            *HANDOVER_ACTIONS,
            *args,
        )
        reassignments: dict[int, int] = {}
        escalated: set[int] = set()
        for row in rows:
            incident_id = int(row["id"])
            after = repo_json(row["after"])
            after = after if isinstance(after, Mapping) else {}
            if row["action"] in ESCALATE_ACTIONS or after.get("technical_escalation"):
                escalated.add(incident_id)
            previous, assignee = after.get("previous_assignee_id"), after.get("assignee_id")
            if previous is not None and assignee is not None and previous != assignee:
                reassignments[incident_id] = reassignments.get(incident_id, 0) + 1
        return reassignments, escalated

    async def _time_entries(self, tenant_id: int | None, since: dt.datetime, until: dt.datetime) -> list[TimeFacts]:
        where = "t.at >= ? AND t.at < ?"
        args: list[Any] = [since, until]
        if tenant_id is not None:
            where += " AND i.tenant = ?"
            args.append(tenant_id)
        rows = await db.fetch(
            repo.engine(),
            "SELECT t.person, p.name, t.incident, t.minutes, t.estimated_minutes FROM incident_time t"
            f" JOIN incident i ON i.id = t.incident JOIN person p ON p.id = t.person WHERE {where}",
            *args,
        )
        return [
            TimeFacts(
                person_id=int(row["person"]),
                person_name=str(row["name"]),
                incident_id=int(row["incident"]),
                minutes=int(row["minutes"]),
                estimated_minutes=None if row["estimated_minutes"] is None else int(row["estimated_minutes"]),
            )
            for row in rows
        ]


def repo_json(value: Any) -> Any:
    """A JSONB column as Python: SQLite hands back text, asyncpg too unless a codec is set."""
    if value is None or isinstance(value, dict | list):
        return value or {}
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return {}


__all__ = ["READERS", "DashboardFigures", "ServiceDashboard", "check_period", "may_read"]
