"""The service manager's figures, computed from plain rows: no database, no framework.

`incident/dashboard.py` reads the rows (incidents of a period, their escalations and
reassignments, time entries); this module only counts. Every figure keeps its numerator and
denominator so a page can show "7 of 9" next to "78 %", and a figure with nothing to count is
`None` (shown as a dash), never a misleading 0 % or 100 %.

Definitions (the period is half-open, [period_from, period_to)):

- The incidents of a period are those created in it.
- Response attainment: of the period's incidents whose response is decided, the share whose
  first response (acknowledgement) came at or before the response due time. An incident not
  yet responded to is *missed* once its due time has passed and *pending* (left out) before.
- Resolution attainment: the same with the resolution time against the resolution due time.
  The due time is the one the incident carries when the figures are read; it already includes
  the time the SLA clock was paused (on hold waiting for the customer), so it is the agreed
  target, not the calendar one.
- Escalation rate: the share of the period's incidents that were escalated at least once,
  technically (to a more experienced engineer or to change management) or administratively
  (the automatic escalations at a share of the SLA time and at breach).
- Reopen rate: of the period's incidents that were resolved at least once, the share the
  customer did not confirm and that went back to open (reopen count above 0).
- First-contact resolution: of the period's resolved incidents, the share resolved by the
  first engineer it was given to, never reassigned to another one, never reopened and never
  escalated. Assigning an unassigned incident is the first contact, not a reassignment.
- Estimated against actual time per engineer: from time entries recorded in the period; an
  entry may carry the engineer's estimate of the work. Estimated and actual minutes are
  compared on the entries that carry an estimate (`accuracy` = actual / estimated: above 1
  means the work took longer than estimated); the total actual time covers every entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PRIORITY_ORDER = ("critical", "high", "normal", "low")


@dataclass(frozen=True)
class IncidentFacts:
    """What the figures need of one incident."""

    id: int
    tenant_id: int
    priority: str
    created_at: dt.datetime
    response_due: dt.datetime | None = None
    responded_at: dt.datetime | None = None
    resolution_due: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    reopen_count: int = 0
    reassignments: int = 0
    escalated: bool = False

    @property
    def ever_resolved(self) -> bool:
        return self.resolved_at is not None or self.reopen_count > 0


@dataclass(frozen=True)
class TimeFacts:
    """One time entry: who worked, how long, and the estimate they gave (if any)."""

    person_id: int
    person_name: str
    incident_id: int
    minutes: int
    estimated_minutes: int | None = None


def share(count: int, of: int) -> float | None:
    return count / of if of else None


def percent(value: float | None) -> str:
    return "\u2014" if value is None else f"{value * 100:.1f} %"


@dataclass(frozen=True)
class Attainment:
    """Targets met and missed; pending ones (not decided yet) stay out of the share."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def decided(self) -> int:
        return self.met + self.missed

    @property
    def rate(self) -> float | None:
        return share(self.met, self.decided)

    def as_dict(self) -> dict[str, Any]:
        return {"met": self.met, "missed": self.missed, "pending": self.pending, "rate": self.rate}


@dataclass(frozen=True)
class Rate:
    count: int = 0
    of: int = 0

    @property
    def rate(self) -> float | None:
        return share(self.count, self.of)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "of": self.of, "rate": self.rate}


@dataclass(frozen=True)
class EngineerTime:
    person_id: int
    name: str
    incidents: int
    entries: int
    estimated_entries: int
    estimated_minutes: int
    actual_on_estimated_minutes: int
    actual_minutes: int

    @property
    def variance_minutes(self) -> int:
        """Actual minus estimated, on the entries that carry an estimate."""
        return self.actual_on_estimated_minutes - self.estimated_minutes

    @property
    def accuracy(self) -> float | None:
        """Actual / estimated on estimated entries: 1.0 is spot on, 1.5 took half again as long."""
        return self.actual_on_estimated_minutes / self.estimated_minutes if self.estimated_minutes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "person": self.person_id,
            "name": self.name,
            "incidents": self.incidents,
            "entries": self.entries,
            "estimated_entries": self.estimated_entries,
            "estimated_minutes": self.estimated_minutes,
            "actual_on_estimated_minutes": self.actual_on_estimated_minutes,
            "actual_minutes": self.actual_minutes,
            "variance_minutes": self.variance_minutes,
            "accuracy": self.accuracy,
        }


@dataclass(frozen=True)
class ServiceFigures:
    incidents: int
    response: Attainment
    resolution: Attainment
    escalation: Rate
    reopen: Rate
    first_contact: Rate
    engineers: tuple[EngineerTime, ...] = ()
    by_priority: Mapping[str, tuple[Attainment, Attainment]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "incidents": self.incidents,
            "response_attainment": self.response.as_dict(),
            "resolution_attainment": self.resolution.as_dict(),
            "escalation_rate": self.escalation.as_dict(),
            "reopen_rate": self.reopen.as_dict(),
            "first_contact_resolution": self.first_contact.as_dict(),
            "by_priority": {
                priority: {"response": response.as_dict(), "resolution": resolution.as_dict()}
                for priority, (response, resolution) in self.by_priority.items()
            },
            "engineers": [engineer.as_dict() for engineer in self.engineers],
        }


def attainment(pairs: Iterable[tuple[dt.datetime | None, dt.datetime | None]], now: dt.datetime) -> Attainment:
    """(due, done) pairs: met when done by due, missed when done late or still undone after due,
    pending when undone and not due yet. An incident with no target counts as pending."""
    met = missed = pending = 0
    for due, done in pairs:
        if due is None:
            pending += 1
        elif done is not None:
            if done <= due:
                met += 1
            else:
                missed += 1
        elif now > due:
            missed += 1
        else:
            pending += 1
    return Attainment(met, missed, pending)


def response_attainment(incidents: Iterable[IncidentFacts], now: dt.datetime) -> Attainment:
    return attainment(((i.response_due, i.responded_at) for i in incidents), now)


def resolution_attainment(incidents: Iterable[IncidentFacts], now: dt.datetime) -> Attainment:
    return attainment(((i.resolution_due, i.resolved_at) for i in incidents), now)


def escalation_rate(incidents: Iterable[IncidentFacts]) -> Rate:
    rows = list(incidents)
    return Rate(sum(1 for i in rows if i.escalated), len(rows))


def reopen_rate(incidents: Iterable[IncidentFacts]) -> Rate:
    resolved = [i for i in incidents if i.ever_resolved]
    return Rate(sum(1 for i in resolved if i.reopen_count > 0), len(resolved))


def is_first_contact_resolution(incident: IncidentFacts) -> bool:
    return (
        incident.resolved_at is not None
        and incident.reassignments == 0
        and incident.reopen_count == 0
        and not incident.escalated
    )


def first_contact_resolution(incidents: Iterable[IncidentFacts]) -> Rate:
    resolved = [i for i in incidents if i.resolved_at is not None]
    return Rate(sum(1 for i in resolved if is_first_contact_resolution(i)), len(resolved))


def time_per_engineer(entries: Iterable[TimeFacts]) -> tuple[EngineerTime, ...]:
    """Per engineer, the most time spent first (then by name)."""
    grouped: dict[int, list[TimeFacts]] = {}
    for entry in entries:
        grouped.setdefault(entry.person_id, []).append(entry)
    rows = []
    for person_id, own in grouped.items():
        estimated = [e for e in own if e.estimated_minutes is not None]
        rows.append(
            EngineerTime(
                person_id=person_id,
                name=own[0].person_name,
                incidents=len({e.incident_id for e in own}),
                entries=len(own),
                estimated_entries=len(estimated),
                estimated_minutes=sum(e.estimated_minutes or 0 for e in estimated),
                actual_on_estimated_minutes=sum(e.minutes for e in estimated),
                actual_minutes=sum(e.minutes for e in own),
            )
        )
    return tuple(sorted(rows, key=lambda r: (-r.actual_minutes, r.name, r.person_id)))


def service_figures(
    incidents: Iterable[IncidentFacts], entries: Iterable[TimeFacts], now: dt.datetime
) -> ServiceFigures:
    rows = list(incidents)
    by_priority = {
        priority: (response_attainment(own, now), resolution_attainment(own, now))
        for priority in PRIORITY_ORDER
        if (own := [i for i in rows if i.priority == priority])
    }
    return ServiceFigures(
        incidents=len(rows),
        response=response_attainment(rows, now),
        resolution=resolution_attainment(rows, now),
        escalation=escalation_rate(rows),
        reopen=reopen_rate(rows),
        first_contact=first_contact_resolution(rows),
        engineers=time_per_engineer(entries),
        by_priority=by_priority,
    )


def last_full_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """The default period: the first day of last month and the first day of this month."""
    this_month = today.replace(day=1)
    previous = (this_month - dt.timedelta(days=1)).replace(day=1)
    return previous, this_month


__all__ = [
    "Attainment",
    "EngineerTime",
    "IncidentFacts",
    "Rate",
    "ServiceFigures",
    "TimeFacts",
    "attainment",
    "escalation_rate",
    "first_contact_resolution",
    "is_first_contact_resolution",
    "last_full_month",
    "percent",
    "reopen_rate",
    "resolution_attainment",
    "response_attainment",
    "service_figures",
    "time_per_engineer",
]
