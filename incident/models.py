"""Incident management's vocabulary: the incident, its statuses, priorities and records.

Pure Python: the standard library and :mod:`cmdb.models` only, no framework, no database.

An incident records (domain, "Incident"): its customer; the person who reported it and how to
reach them; who received it; the affected CIs (services are CIs of class ``service``); symptoms
and errors; steps to reproduce; changes in the customer's environment around that time (typed by
hand, next to the RFCs the product finds on the CIs); classification; priority; the time of every
activity (the history); time spent (:class:`TimeEntry`); communications
(:class:`Communication`) and, once resolved, the closure record (:class:`Closure`).

The record is frozen: the workflow (:mod:`incident.workflow`) returns a new one made with
:func:`dataclasses.replace`, plus the :class:`Event` list the service appends to the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cmdb.models import Choice

__all__ = [
    "ACTIVE_STATUSES",
    "Closure",
    "Communication",
    "Event",
    "Incident",
    "IncidentChoice",
    "IncidentPriority",
    "IncidentSource",
    "IncidentStatus",
    "Pause",
    "ResponseLevel",
    "TimeEntry",
    "WaitingFor",
]


class IncidentChoice(Choice):
    """A :class:`~cmdb.models.Choice` whose labels and colours live in this module's maps."""

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())

    @property
    def colour(self) -> str:
        return _COLOURS.get(self, "grey")


class IncidentStatus(IncidentChoice):
    """Where an incident stands (api.md). See ``docs/incidents.md`` for the diagram."""

    NEW = "new"
    OPEN = "open"
    HOLD_RESEARCH = "hold_research"
    HOLD_RESOLUTION = "hold_resolution"
    PENDING_FIX = "pending_fix"
    RFC_SUBMITTED = "rfc_submitted"
    CLOSED = "closed"


#: Every status but closed: the incident still needs work or a customer's answer.
ACTIVE_STATUSES: frozenset[IncidentStatus] = frozenset(set(IncidentStatus) - {IncidentStatus.CLOSED})


class IncidentPriority(IncidentChoice):
    """Critical: many systems or sites, production halted. High: one system or site, work
    stopped there. Normal: one system, performance or non-critical. Low: minor, limited."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"critical": 0, "high": 1, "normal": 2, "low": 3}[self.value]


class ResponseLevel(IncidentChoice):
    """The response levels some SLAs use instead of priorities (domain, "Incident")."""

    LEVEL_1 = "level_1"
    LEVEL_2 = "level_2"
    LEVEL_3 = "level_3"


class IncidentSource(IncidentChoice):
    MANUAL = "manual"
    ALERT = "alert"
    CUSTOMER = "customer"


class WaitingFor(IncidentChoice):
    """Why an incident in ``hold_resolution`` waits: for the customer's information or action,
    or, once resolved, for the customer's confirmation that it is fixed."""

    CUSTOMER = "customer"
    CONFIRMATION = "confirmation"


_LABELS: dict[StrEnum, str] = {
    IncidentStatus.HOLD_RESEARCH: "On hold: research",
    IncidentStatus.HOLD_RESOLUTION: "On hold: resolution",
    IncidentStatus.PENDING_FIX: "Pending: fix identified",
    IncidentStatus.RFC_SUBMITTED: "RFC submitted",
    ResponseLevel.LEVEL_1: "Level 1",
    ResponseLevel.LEVEL_2: "Level 2",
    ResponseLevel.LEVEL_3: "Level 3",
    WaitingFor.CONFIRMATION: "Customer confirmation",
}
_COLOURS: dict[StrEnum, str] = {
    IncidentStatus.NEW: "blue",
    IncidentStatus.OPEN: "orange",
    IncidentStatus.HOLD_RESEARCH: "purple",
    IncidentStatus.HOLD_RESOLUTION: "yellow",
    IncidentStatus.PENDING_FIX: "yellow",
    IncidentStatus.RFC_SUBMITTED: "purple",
    IncidentStatus.CLOSED: "green",
    IncidentPriority.CRITICAL: "red",
    IncidentPriority.HIGH: "orange",
    IncidentPriority.NORMAL: "blue",
    IncidentPriority.LOW: "grey",
    ResponseLevel.LEVEL_1: "red",
    ResponseLevel.LEVEL_2: "orange",
    ResponseLevel.LEVEL_3: "blue",
    IncidentSource.ALERT: "red",
    IncidentSource.CUSTOMER: "blue",
}


@dataclass(frozen=True)
class Closure:
    """The closure record (domain): when the incident was reported and by whom, details, the
    actions taken, who resolved it, the time to resolve, whether the SLA covered it; when the
    cause was outside the SLA, the reason, whether it was referred back to the customer and
    whether the customer gave permission for billable work."""

    reported_at: dt.datetime
    reported_by: str
    details: str
    actions_taken: str
    resolved_by_id: int | None
    resolved_by: str
    resolved_at: dt.datetime
    time_to_resolve_minutes: int
    business_minutes_to_resolve: int
    sla_covered: bool = True
    out_of_sla_reason: str = ""
    referred_to_customer: bool = False
    billable_permission: bool | None = None
    confirmed_by: str = ""
    confirmed_at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reported_at": self.reported_at.isoformat(),
            "reported_by": self.reported_by,
            "details": self.details,
            "actions_taken": self.actions_taken,
            "resolved_by_id": self.resolved_by_id,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at.isoformat(),
            "time_to_resolve_minutes": self.time_to_resolve_minutes,
            "business_minutes_to_resolve": self.business_minutes_to_resolve,
            "sla_covered": self.sla_covered,
            "out_of_sla_reason": self.out_of_sla_reason,
            "referred_to_customer": self.referred_to_customer,
            "billable_permission": self.billable_permission,
            "confirmed_by": self.confirmed_by,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Closure:
        confirmed = data.get("confirmed_at")
        return cls(
            reported_at=dt.datetime.fromisoformat(data["reported_at"]),
            reported_by=data.get("reported_by", ""),
            details=data.get("details", ""),
            actions_taken=data.get("actions_taken", ""),
            resolved_by_id=data.get("resolved_by_id"),
            resolved_by=data.get("resolved_by", ""),
            resolved_at=dt.datetime.fromisoformat(data["resolved_at"]),
            time_to_resolve_minutes=int(data.get("time_to_resolve_minutes", 0)),
            business_minutes_to_resolve=int(data.get("business_minutes_to_resolve", 0)),
            sla_covered=bool(data.get("sla_covered", True)),
            out_of_sla_reason=data.get("out_of_sla_reason", ""),
            referred_to_customer=bool(data.get("referred_to_customer", False)),
            billable_permission=data.get("billable_permission"),
            confirmed_by=data.get("confirmed_by", ""),
            confirmed_at=dt.datetime.fromisoformat(confirmed) if confirmed else None,
        )


@dataclass(frozen=True)
class Pause:
    """One interval during which the SLA clock stood still (waiting for the customer).
    ``business_seconds`` is the business time it covered, by which the resolution due moved."""

    start: dt.datetime
    end: dt.datetime | None
    reason: str
    business_seconds: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "reason": self.reason,
            "business_seconds": self.business_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pause:
        return cls(
            start=dt.datetime.fromisoformat(data["start"]),
            end=dt.datetime.fromisoformat(data["end"]) if data.get("end") else None,
            reason=data.get("reason", ""),
            business_seconds=int(data.get("business_seconds", 0)),
        )


@dataclass(frozen=True)
class Incident:
    """An incident. Times are timezone-aware (UTC when they come from storage).

    ``response_due`` and ``resolution_due`` are computed in the customer's business calendar
    from ``created_at`` and the SLA template (:mod:`incident.sla`); ``resolution_due`` is None
    under a Level 1 response level ("ongoing escalation until resolved"). ``pauses`` lists the
    intervals the SLA clock stood still; ``paused_since`` is set while one is running.
    """

    id: int
    key: str
    tenant_id: int
    title: str
    status: IncidentStatus
    priority: IncidentPriority
    source: IncidentSource
    created_at: dt.datetime
    updated_at: dt.datetime
    ci_ids: tuple[int, ...] = ()
    response_due: dt.datetime | None = None
    resolution_due: dt.datetime | None = None
    assignee_id: int | None = None
    reopen_count: int = 0
    version: int = 1
    acknowledged_at: dt.datetime | None = None
    responded_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    parent_id: int | None = None
    reported_by: str = ""
    contact: str = ""
    received_by_id: int | None = None
    symptoms: str = ""
    errors: str = ""
    steps_to_reproduce: str = ""
    environment_changes: str = ""
    classification: str = ""
    sla_template: str = "priorities"
    response_level: ResponseLevel | None = None
    waiting_for: WaitingFor | None = None
    paused_since: dt.datetime | None = None
    pauses: tuple[Pause, ...] = ()
    closure: Closure | None = None
    rfc_key: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is not IncidentStatus.CLOSED

    @property
    def awaiting_confirmation(self) -> bool:
        return self.status is IncidentStatus.HOLD_RESOLUTION and self.waiting_for is WaitingFor.CONFIRMATION


@dataclass(frozen=True)
class TimeEntry:
    id: int
    incident_id: int
    person_id: int
    minutes: int
    at: dt.datetime
    note: str = ""
    estimated_minutes: int | None = None


@dataclass(frozen=True)
class Communication:
    """A message to or from the customer: ``channel`` (phone, email, portal, chat, in_person),
    ``direction`` (inbound, outbound), who and a summary."""

    id: int
    incident_id: int
    channel: str
    direction: str
    summary: str
    at: dt.datetime
    person_id: int | None = None
    party: str = ""


@dataclass(frozen=True)
class Event:
    """One entry of an incident's history, as the workflow produced it; the service appends it."""

    kind: str
    actor_id: int | None
    actor_name: str
    at: dt.datetime
    comment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
