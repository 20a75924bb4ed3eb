"""Incident SLA: the templates a customer can be on, the targets, the due times and the clock.

Pure: the standard library, :mod:`cmdb.calendar` and :mod:`incident.models` only.

Two templates (domain, "Incident"), chosen by ``customer.sla["incident_template"]``:

``priorities`` (the default). Response: critical 1 business hour, high 2 business hours, normal
next business day, low 2 business days. Resolution (our defaults): critical 4 business hours,
high 8 business hours, normal 3 business days, low 5 business days.

``levels``. The API's priority maps to a response level (critical: Level 1; high and normal:
Level 2; low: Level 3; ``customer.sla["incident_levels"]`` may remap). Level 1: 15 minutes
first response and no resolution deadline ("ongoing escalation until resolved": the record shows
no ``resolution_due`` and escalates every ``sla["ongoing_escalation_hours"]`` business hours,
default 4, until resolved); Level 2: 30 minutes, resolution
within 1 business day; Level 3: 60 minutes, resolution within 2 business days.

``customer.sla["incident_targets"]`` overrides any target, e.g.
``{"critical": {"response": "30m", "resolution": "2h"}, "level_2": {"resolution": "2bd"}}``.
A target is written ``"15m"`` (business minutes), ``"4h"`` (business hours), ``"3bd"``
(business days: same local time N business days later, :meth:`BusinessCalendar.add_business_days`),
``"nbd"`` (next business day: by closing time of the first business day after the day the
incident was received) or ``null`` (no target).

All targets run in the customer's business calendar. ``customer.sla["incident_clock"] = "24x7"``
makes minute and hour targets run on the wall clock instead (business-day targets stay in
business days), for customers who buy round-the-clock cover.

The clock pauses while the incident waits for the customer (``hold_resolution`` and
``pending_fix``) unless ``customer.sla["pause_when_waiting_for_customer"]`` is false. When a
pause ends, ``resolution_due`` moves later by the business time the pause covered.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cmdb.calendar import BusinessCalendar

from .models import Incident, IncidentPriority, IncidentStatus, ResponseLevel

__all__ = [
    "DEFAULT_ESCALATION_SHARE",
    "DEFAULT_LEVEL_TARGETS",
    "DEFAULT_ONGOING_HOURS",
    "DEFAULT_PRIORITY_LEVELS",
    "DEFAULT_PRIORITY_TARGETS",
    "DEFAULT_RECENT_CHANGE_DAYS",
    "PAUSING_STATUSES",
    "TEMPLATES",
    "Clock24x7",
    "Escalation",
    "SLAClock",
    "SLATerms",
    "Target",
    "TargetClock",
    "due_points",
    "sla_clock",
    "validate_terms",
]

TEMPLATES = ("priorities", "levels")
DEFAULT_ESCALATION_SHARE = 0.75
DEFAULT_RECENT_CHANGE_DAYS = 7
#: Level 1 ("ongoing escalation until resolved"): after the first response, the service
#: managers hear of it again every this many business hours until it is resolved.
DEFAULT_ONGOING_HOURS = 4
#: How many ongoing escalations one incident can raise (a forgotten Level 1 must not page forever).
MAX_ONGOING = 50
#: Statuses in which the incident waits for the customer, so the clock may stand still.
PAUSING_STATUSES = frozenset({IncidentStatus.HOLD_RESOLUTION, IncidentStatus.PENDING_FIX})

_TARGET = re.compile(r"^\s*(\d+)\s*(m|h|bd)\s*$")

Kind = Literal["minutes", "business_days", "next_business_day"]


@dataclass(frozen=True)
class Target:
    """One SLA target: an amount of business minutes, N business days, or next business day."""

    kind: Kind
    amount: int = 0

    @classmethod
    def parse(cls, text: str) -> Target:
        if text.strip().lower() == "nbd":
            return cls("next_business_day")
        match = _TARGET.match(text.lower())
        if match is None:
            raise ValueError(f"{text!r} is not a target: write 15m, 4h, 3bd or nbd")
        number, unit = int(match.group(1)), match.group(2)
        if unit == "bd":
            return cls("business_days", number)
        minutes = number * 60 if unit == "h" else number
        if minutes <= 0:
            raise ValueError(f"{text!r}: a target must be longer than zero")
        return cls("minutes", minutes)

    def text(self) -> str:
        if self.kind == "next_business_day":
            return "nbd"
        if self.kind == "business_days":
            return f"{self.amount}bd"
        return f"{self.amount // 60}h" if self.amount % 60 == 0 else f"{self.amount}m"

    def describe(self) -> str:
        if self.kind == "next_business_day":
            return "next business day"
        if self.kind == "business_days":
            return f"{self.amount} business day{'s' if self.amount != 1 else ''}"
        if self.amount % 60 == 0:
            hours = self.amount // 60
            return f"{hours} hour{'s' if hours != 1 else ''}"
        return f"{self.amount} minutes"


class TargetClock:
    """How targets and elapsed time are measured: the customer's business calendar."""

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar

    def add_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        return self.calendar.add_business_hours(start, dt.timedelta(minutes=minutes))

    def between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        return self.calendar.business_time_between(a, b)

    def due(self, target: Target, start: dt.datetime) -> dt.datetime:
        if target.kind == "minutes":
            return self.add_minutes(start, target.amount)
        if target.kind == "business_days":
            return self.calendar.add_business_days(start, target.amount)
        day = self.calendar.next_business_day(self.calendar.local_date(start))
        hours = self.calendar.business_hours_on(day)
        assert hours is not None  # next_business_day returns a business day
        return hours[1]


class Clock24x7(TargetClock):
    """Round-the-clock cover: minutes are wall minutes; business-day targets stay business days."""

    def add_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        return start + dt.timedelta(minutes=minutes)

    def between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        return max(b - a, dt.timedelta(0))


DEFAULT_PRIORITY_TARGETS: Mapping[str, tuple[str | None, str | None]] = {
    "critical": ("1h", "4h"),
    "high": ("2h", "8h"),
    "normal": ("nbd", "3bd"),
    "low": ("2bd", "5bd"),
}
DEFAULT_LEVEL_TARGETS: Mapping[str, tuple[str | None, str | None]] = {
    "level_1": ("15m", None),
    "level_2": ("30m", "1bd"),
    "level_3": ("60m", "2bd"),
}
DEFAULT_PRIORITY_LEVELS: Mapping[str, str] = {
    "critical": "level_1",
    "high": "level_2",
    "normal": "level_2",
    "low": "level_3",
}


def validate_terms(sla: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with a customer's incident SLA terms, as (field, reason); empty when fine."""
    problems: list[tuple[str, str]] = []
    template = sla.get("incident_template", "priorities")
    if template not in TEMPLATES:
        problems.append(("sla.incident_template", f"must be one of {', '.join(TEMPLATES)}"))
    targets = sla.get("incident_targets") or {}
    if not isinstance(targets, Mapping):
        problems.append(("sla.incident_targets", "must be an object of priority or level to targets"))
        targets = {}
    known = {*DEFAULT_PRIORITY_TARGETS, *DEFAULT_LEVEL_TARGETS}
    for name, spec in targets.items():
        if name not in known:
            problems.append(("sla.incident_targets", f"unknown priority or level {name!r}"))
            continue
        if not isinstance(spec, Mapping):
            problems.append((f"sla.incident_targets.{name}", "must be an object with response and resolution"))
            continue
        for which in ("response", "resolution"):
            value = spec.get(which)
            if value is None:
                continue
            try:
                Target.parse(str(value))
            except ValueError as error:
                problems.append((f"sla.incident_targets.{name}.{which}", str(error)))
    levels = sla.get("incident_levels") or {}
    if not isinstance(levels, Mapping) or any(
        p not in DEFAULT_PRIORITY_LEVELS or v not in DEFAULT_LEVEL_TARGETS for p, v in levels.items()
    ):
        problems.append(("sla.incident_levels", "must map priorities to level_1, level_2 or level_3"))
    share = sla.get("escalation_share", DEFAULT_ESCALATION_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        problems.append(("sla.escalation_share", "must be a number between 0 and 1 (0.75 = 75 %)"))
    days = sla.get("recent_change_days", DEFAULT_RECENT_CHANGE_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 365:
        problems.append(("sla.recent_change_days", "must be a whole number of days from 1 to 365"))
    ongoing = sla.get("ongoing_escalation_hours", DEFAULT_ONGOING_HOURS)
    if isinstance(ongoing, bool) or not isinstance(ongoing, int | float) or not 0 < ongoing <= 1000:
        problems.append(("sla.ongoing_escalation_hours", "must be a number of business hours above 0"))
    if sla.get("incident_clock", "business") not in ("business", "24x7"):
        problems.append(("sla.incident_clock", "must be business or 24x7"))
    return problems


@dataclass(frozen=True)
class SLATerms:
    """A customer's incident terms, read from its SLA with the defaults filled in."""

    template: str
    targets: Mapping[str, tuple[Target | None, Target | None]]
    levels: Mapping[str, str]
    escalation_share: float
    pause_when_waiting: bool
    recent_change_days: int
    round_the_clock: bool
    ongoing_hours: float = DEFAULT_ONGOING_HOURS

    @classmethod
    def from_sla(cls, sla: Mapping[str, Any]) -> SLATerms:
        """Defaults for anything missing or malformed: a bad term must not stop incident intake
        (the customer form validates terms with :func:`validate_terms`)."""
        template = sla.get("incident_template", "priorities")
        template = template if template in TEMPLATES else "priorities"
        raw_overrides = sla.get("incident_targets")
        overrides: Mapping[str, Any] = raw_overrides if isinstance(raw_overrides, Mapping) else {}
        targets: dict[str, tuple[Target | None, Target | None]] = {}
        for name, (response, resolution) in {**DEFAULT_PRIORITY_TARGETS, **DEFAULT_LEVEL_TARGETS}.items():
            raw_spec = overrides.get(name)
            spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
            targets[name] = (
                _target(spec["response"]) if "response" in spec else _target(response),
                _target(spec["resolution"]) if "resolution" in spec else _target(resolution),
            )
        levels = dict(DEFAULT_PRIORITY_LEVELS)
        custom_levels = sla.get("incident_levels")
        if isinstance(custom_levels, Mapping):
            levels.update(
                {p: v for p, v in custom_levels.items() if p in DEFAULT_PRIORITY_LEVELS and v in DEFAULT_LEVEL_TARGETS}
            )
        share = sla.get("escalation_share", DEFAULT_ESCALATION_SHARE)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            share = DEFAULT_ESCALATION_SHARE
        days = sla.get("recent_change_days", DEFAULT_RECENT_CHANGE_DAYS)
        if isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= 365:
            days = DEFAULT_RECENT_CHANGE_DAYS
        ongoing = sla.get("ongoing_escalation_hours", DEFAULT_ONGOING_HOURS)
        if isinstance(ongoing, bool) or not isinstance(ongoing, int | float) or not 0 < ongoing <= 1000:
            ongoing = DEFAULT_ONGOING_HOURS
        return cls(
            template=template,
            targets=targets,
            levels=levels,
            escalation_share=float(share),
            pause_when_waiting=bool(sla.get("pause_when_waiting_for_customer", True)),
            recent_change_days=days,
            round_the_clock=sla.get("incident_clock") == "24x7",
            ongoing_hours=float(ongoing),
        )

    def level_for(self, priority: IncidentPriority) -> ResponseLevel | None:
        if self.template != "levels":
            return None
        return ResponseLevel(self.levels[priority.value])

    def targets_for(self, priority: IncidentPriority) -> tuple[Target | None, Target | None]:
        level = self.level_for(priority)
        return self.targets[level.value if level else priority.value]

    def clock(self, calendar: BusinessCalendar) -> TargetClock:
        return Clock24x7(calendar) if self.round_the_clock else TargetClock(calendar)

    def dues(
        self, priority: IncidentPriority, start: dt.datetime, calendar: BusinessCalendar
    ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """Response and resolution due for an incident received at ``start`` (no pauses yet)."""
        clock = self.clock(calendar)
        response, resolution = self.targets_for(priority)
        return (
            clock.due(response, start) if response else None,
            clock.due(resolution, start) if resolution else None,
        )


def _target(value: Any) -> Target | None:
    if value is None:
        return None
    try:
        return Target.parse(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetState:
    """One target's standing now: ``state`` is on_track, at_risk (past the escalation share),
    breached, met or missed (met late), or paused."""

    due: dt.datetime | None
    met_at: dt.datetime | None
    elapsed_share: float
    remaining_seconds: int
    state: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due.isoformat() if self.due else None,
            "met_at": self.met_at.isoformat() if self.met_at else None,
            "elapsed_share": round(self.elapsed_share, 4),
            "remaining_seconds": self.remaining_seconds,
            "state": self.state,
        }


@dataclass(frozen=True)
class SLAClock:
    template: str
    response_level: str | None
    response_target: Target | None
    resolution_target: Target | None
    response: TargetState
    resolution: TargetState
    paused: bool
    paused_seconds: int

    @property
    def elapsed_share(self) -> float:
        """The share of the target now running: response until responded, then resolution."""
        return self.response.elapsed_share if self.response.met_at is None else self.resolution.elapsed_share

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "response_level": self.response_level,
            "response_target": self.response_target.describe() if self.response_target else None,
            "resolution_target": self.resolution_target.describe() if self.resolution_target else None,
            "response": self.response.as_dict(),
            "resolution": self.resolution.as_dict(),
            "paused": self.paused,
            "paused_seconds": self.paused_seconds,
            "elapsed_share": round(self.elapsed_share, 4),
        }


def _state(
    clock: TargetClock,
    start: dt.datetime,
    due: dt.datetime | None,
    met_at: dt.datetime | None,
    until: dt.datetime,
    paused_before: dt.timedelta,
    share: float,
    paused: bool,
) -> TargetState:
    if due is None:
        return TargetState(None, met_at, 0.0, 0, "met" if met_at else "none")
    end = met_at or until
    total = clock.between(start, due) - paused_before
    elapsed = clock.between(start, end) - paused_before
    fraction = elapsed / total if total > dt.timedelta(0) else (1.0 if end >= due else 0.0)
    remaining = int(clock.between(end, due).total_seconds()) if end < due else -int((end - due).total_seconds())
    if met_at is not None:
        state = "met" if met_at <= due else "missed"
    elif end >= due:
        state = "breached"
    elif paused:
        state = "paused"
    elif fraction >= share:
        state = "at_risk"
    else:
        state = "on_track"
    return TargetState(due, met_at, max(fraction, 0.0), remaining, state)


def sla_clock(incident: Incident, terms: SLATerms, calendar: BusinessCalendar, now: dt.datetime) -> SLAClock:
    """Where the incident stands against its targets at ``now``. The resolution clock stops
    while paused and once resolved (awaiting confirmation); pauses already ended have moved
    ``resolution_due`` later, so their business time is taken out of both sides of the share."""
    clock = terms.clock(calendar)
    response_target, resolution_target = terms.targets_for(incident.priority)
    paused_before = dt.timedelta(seconds=sum(p.business_seconds for p in incident.pauses if p.end is not None))
    share = terms.escalation_share
    response = _state(
        clock, incident.created_at, incident.response_due, incident.responded_at, now, dt.timedelta(0), share, False
    )
    if incident.status is IncidentStatus.CLOSED:
        resolved = incident.closure.resolved_at if incident.closure else incident.resolved_at or incident.closed_at
    elif incident.awaiting_confirmation:
        resolved = incident.resolved_at
    else:
        resolved = None
    until = incident.paused_since or now
    resolution = _state(
        clock,
        incident.created_at,
        incident.resolution_due,
        resolved,
        until,
        paused_before,
        share,
        incident.paused_since is not None,
    )
    running = int((now - incident.paused_since).total_seconds()) if incident.paused_since else 0
    return SLAClock(
        template=incident.sla_template,
        response_level=incident.response_level.value if incident.response_level else None,
        response_target=response_target,
        resolution_target=resolution_target,
        response=response,
        resolution=resolution,
        paused=incident.paused_since is not None,
        paused_seconds=int(paused_before.total_seconds()) + running,
    )


@dataclass(frozen=True)
class Escalation:
    """An administrative escalation point: ``level`` (response_warning, response_breach,
    resolution_warning, resolution_breach), when it falls, and who hears of it."""

    level: str
    at: dt.datetime
    audience: str


def due_points(
    incident: Incident, terms: SLATerms, calendar: BusinessCalendar, now: dt.datetime | None = None
) -> Sequence[Escalation]:
    """The escalation points still ahead of or behind an incident's running clocks, oldest
    first: the escalation share of each target (to the service manager) and its breach (to the
    executive level). None while the clock is paused, once responded for the response target,
    once resolved for the resolution target, and none at all when closed.

    An incident without a resolution target at Level 1 ("ongoing escalation until resolved")
    instead escalates to the service managers every ``terms.ongoing_hours`` business hours
    (pauses excluded) from the time received: ``ongoing_1``, ``ongoing_2``, ... up to the first
    one after ``now`` (only the first one without ``now``), at most :data:`MAX_ONGOING`."""
    if incident.status is IncidentStatus.CLOSED or incident.paused_since is not None:
        return []
    clock = terms.clock(calendar)
    share = terms.escalation_share
    points: list[Escalation] = []
    if incident.responded_at is None and incident.response_due is not None:
        total = clock.between(incident.created_at, incident.response_due)
        points.append(
            Escalation(
                "response_warning",
                clock.add_minutes(incident.created_at, total.total_seconds() / 60 * share),
                "service_manager",
            )
        )
        points.append(Escalation("response_breach", incident.response_due, "executive"))
    if incident.resolution_due is not None and not incident.awaiting_confirmation:
        paused = dt.timedelta(seconds=sum(p.business_seconds for p in incident.pauses if p.end is not None))
        total = clock.between(incident.created_at, incident.resolution_due) - paused
        # The warning point: `share` of the target's own business time, plus the pauses so far.
        warning_after = total * share + paused
        points.append(
            Escalation(
                "resolution_warning",
                clock.add_minutes(incident.created_at, warning_after.total_seconds() / 60),
                "service_manager",
            )
        )
        points.append(Escalation("resolution_breach", incident.resolution_due, "executive"))
    if (
        incident.resolution_due is None
        and incident.response_level is ResponseLevel.LEVEL_1
        and not incident.awaiting_confirmation
    ):
        paused_minutes = sum(p.business_seconds for p in incident.pauses if p.end is not None) / 60
        step = terms.ongoing_hours * 60
        for n in range(1, MAX_ONGOING + 1):
            at = clock.add_minutes(incident.created_at, n * step + paused_minutes)
            points.append(Escalation(f"ongoing_{n}", at, "service_manager"))
            if now is None or at > now:
                break
    return sorted(points, key=lambda p: p.at)
