"""The incident workflow: a table of transitions and one function that applies them.

Pure: the standard library, :mod:`cmdb.models`, :mod:`cmdb.errors`, :mod:`cmdb.calendar` and
this package's pure modules only. Whatever needs the database (who a named person is, the key
of the RFC raised, whether a parent exists) the service resolves first and passes in as a fact.

Statuses (api.md)::

    new --acknowledge--> open --hold(research)--> hold_research --resume--> open
                          |  --hold(customer)--> hold_resolution (waiting: customer) --resume--> open
                          |  --hold(pending_fix)--> pending_fix --resume--> open
                          |  --escalate(to change_management) / raise-rfc--> rfc_submitted --resume--> open
                          +--resolve--> hold_resolution (waiting: confirmation)
                                          --confirm--> closed
                                          --reopen--> open (reopen_count + 1)
    close: staff, when the cause is outside the SLA (referred back to the customer).

Checks run in this order, and the first that fails raises: the status does not allow the
action (:class:`~cmdb.errors.Conflict` with the status and the actions allowed now); the actor's
roles do not allow it (:class:`~cmdb.errors.Forbidden`); the inputs
(:class:`~cmdb.errors.InvalidInput`, every problem at once); the step's own rules (Conflict).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cmdb.calendar import BusinessCalendar
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Role

from .models import (
    Closure,
    Event,
    Incident,
    IncidentPriority,
    IncidentStatus,
    Pause,
    WaitingFor,
)
from .sla import PAUSING_STATUSES, SLATerms

__all__ = [
    "ACTIONS",
    "HOLD_REASONS",
    "MAX_TEXT",
    "STAFF",
    "TRANSITIONS",
    "Transition",
    "actions_in_state",
    "allowed_actions",
    "redo_dues",
    "transition",
]

MAX_TEXT = 20_000
S = IncidentStatus
STAFF = frozenset({Role.ENGINEER, Role.SERVICE_MANAGER, Role.ADMINISTRATOR})
CUSTOMER = Role.CUSTOMER
#: hold's reasons and where each leads.
HOLD_REASONS: Mapping[str, IncidentStatus] = {
    "research": S.HOLD_RESEARCH,
    "customer": S.HOLD_RESOLUTION,
    "pending_fix": S.PENDING_FIX,
}
_WORKING = frozenset({S.OPEN, S.HOLD_RESEARCH, S.HOLD_RESOLUTION, S.PENDING_FIX, S.RFC_SUBMITTED})
_ACTIVE = frozenset(set(S) - {S.CLOSED})


@dataclass(frozen=True)
class Transition:
    """One row: the statuses it may start from, who may take it (any one of ``by``), the inputs
    it needs and accepts (``comment`` always), the facts the service must pass."""

    action: str
    sources: frozenset[IncidentStatus]
    by: frozenset[Role]
    needs: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


def _row(
    action: str,
    sources: Iterable[IncidentStatus],
    by: Iterable[Role],
    needs: tuple[str, ...] = (),
    accepts: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
) -> Transition:
    return Transition(action, frozenset(sources), frozenset(by), needs, accepts, facts)


_SLA_FACTS = ("terms", "calendar")
# fmt: off
TRANSITIONS: Mapping[str, Transition] = {row.action: row for row in (
    _row("acknowledge",  {S.NEW}, STAFF, accepts=("priority", "classification"), facts=_SLA_FACTS),
    _row("set-priority", _ACTIVE, STAFF, ("priority", "reason"), facts=_SLA_FACTS),
    _row("assign",       _ACTIVE, STAFF, ("person",), ("reason",), facts=("assignee",)),
    _row("take",         _ACTIVE, STAFF, facts=("assignee",)),
    _row("hold",         {S.OPEN, S.HOLD_RESEARCH, S.PENDING_FIX}, STAFF, ("reason",), facts=_SLA_FACTS),
    _row("resume",       {S.HOLD_RESEARCH, S.HOLD_RESOLUTION, S.PENDING_FIX, S.RFC_SUBMITTED},
         {*STAFF, CUSTOMER}, facts=_SLA_FACTS),
    _row("resolve",      {S.OPEN, S.HOLD_RESEARCH, S.PENDING_FIX, S.RFC_SUBMITTED}, STAFF,
         ("details", "actions_taken"),
         ("sla_covered", "out_of_sla_reason", "billable_permission"), facts=(*_SLA_FACTS, "reporter")),
    _row("confirm",      {S.HOLD_RESOLUTION}, {*STAFF, CUSTOMER}, accepts=("confirmed_by",)),
    _row("reopen",       {S.HOLD_RESOLUTION}, {*STAFF, CUSTOMER}, ("reason",), facts=_SLA_FACTS),
    _row("escalate",     _WORKING, STAFF, ("to", "reason"), facts=("assignee", "rfc_key")),
    _row("raise-rfc",    _WORKING - {S.RFC_SUBMITTED}, STAFF, ("reason",), facts=("rfc_key",)),
    _row("close",        _WORKING, STAFF, accepts=("out_of_sla_reason", "billable_permission"),
         facts=(*_SLA_FACTS, "reporter")),
    _row("link",         _ACTIVE, STAFF, ("parent",), facts=("parent_id", "parent_key")),
)}
# fmt: on
ACTIONS = tuple(TRANSITIONS)

EVENT_KINDS: Mapping[str, str] = {
    "acknowledge": "acknowledged",
    "set-priority": "priority_changed",
    "assign": "assigned",
    "take": "taken",
    "hold": "held",
    "resume": "resumed",
    "resolve": "resolved",
    "confirm": "confirmed",
    "reopen": "reopened",
    "escalate": "escalated",
    "raise-rfc": "rfc_raised",
    "close": "closed",
    "link": "linked",
}


def _guard(incident: Incident, action: str) -> str | None:
    """Rules beyond the status table, as the reason the action is refused now."""
    if action in ("confirm", "reopen") and not incident.awaiting_confirmation:
        return "only a resolved incident awaiting the customer's confirmation can be confirmed or reopened"
    if action == "resume" and incident.awaiting_confirmation:
        return "a resolved incident waits for the customer: confirm or reopen it"
    if action == "hold" and incident.status is S.HOLD_RESOLUTION:
        return "already on hold"
    if (
        action == "close"
        and incident.awaiting_confirmation
        and not (incident.closure and incident.closure.referred_to_customer)
    ):
        return "a resolved incident closes when the customer confirms it"
    return None


def actions_in_state(incident: Incident) -> list[str]:
    return [
        action
        for action, row in TRANSITIONS.items()
        if incident.status in row.sources and _guard(incident, action) is None
    ]


def _may(row: Transition, actor: Actor, incident: Incident) -> bool:
    if Role.CUSTOMER in actor.roles and not actor.is_provider_staff:
        return CUSTOMER in row.by and actor.tenant_id == incident.tenant_id
    return bool(row.by & actor.roles)


def allowed_actions(incident: Incident, actor: Actor) -> list[str]:
    """What `actor` may do now: the buttons on the page and `allowed_actions` in the JSON."""
    return [a for a in actions_in_state(incident) if _may(TRANSITIONS[a], actor, incident)]


def _conflict(incident: Incident, action: str, reason: str | None = None) -> Conflict:
    allowed = actions_in_state(incident)
    why = reason or f"{incident.key} is {incident.status.value}"
    return Conflict(
        f"Cannot {action}: {why}. Allowed now: {', '.join(allowed) or 'nothing'}.",
        state=incident.status.value,
        allowed=allowed,
    )


# --- inputs -------------------------------------------------------------------------------


def _text(raw: Any, *, required: bool = True) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ValueError("must be text")
    if len(raw) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if required and not raw.strip():
        raise ValueError("is required")
    return raw.strip()


def _bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise ValueError("must be true or false")
    return raw


def _opt_bool(raw: Any) -> bool | None:
    return None if raw is None else _bool(raw)


def _priority(raw: Any) -> IncidentPriority:
    try:
        return IncidentPriority(raw)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(IncidentPriority.values())}") from None


def _reference(raw: Any) -> int | str:
    if isinstance(raw, bool) or not isinstance(raw, int | str) or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("must be an id or a key")
    return raw


PARSERS: Mapping[str, Callable[[Any], Any]] = {
    "comment": lambda raw: _text(raw, required=False),
    "reason": _text,
    "details": _text,
    "actions_taken": _text,
    "out_of_sla_reason": lambda raw: _text(raw, required=False),
    "classification": lambda raw: _text(raw, required=False)[:100],
    "confirmed_by": lambda raw: _text(raw, required=False)[:200],
    "priority": _priority,
    "sla_covered": _bool,
    "billable_permission": _opt_bool,
    "person": _reference,
    "parent": _reference,
    "to": _reference,
}


def _read_inputs(row: Transition, params: Mapping[str, Any], problems: list[FieldProblem]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in (*row.needs, *row.accepts, "comment"):
        if name not in params or params[name] is None:
            if name in row.needs:
                problems.append(FieldProblem(name, "is required"))
            continue
        try:
            values[name] = PARSERS[name](params[name])
        except ValueError as error:
            problems.append(FieldProblem(name, str(error)))
    return values


# --- the SLA clock ------------------------------------------------------------------------


def redo_dues(incident: Incident, priority: IncidentPriority, terms: SLATerms, calendar: BusinessCalendar) -> Incident:
    """Targets for a (new) priority, from when the incident was received, moved later by the
    pauses already taken."""
    response_due, resolution_due = terms.dues(priority, incident.created_at, calendar)
    paused = sum(p.business_seconds for p in incident.pauses if p.end is not None)
    if resolution_due is not None and paused:
        resolution_due = terms.clock(calendar).add_minutes(resolution_due, paused / 60)
    return replace(
        incident,
        priority=priority,
        response_level=terms.level_for(priority),
        response_due=response_due,
        resolution_due=resolution_due,
    )


def _pause(incident: Incident, to: IncidentStatus, terms: SLATerms, now: dt.datetime, reason: str) -> Incident:
    if to in PAUSING_STATUSES and terms.pause_when_waiting and incident.paused_since is None:
        return replace(incident, paused_since=now, pauses=(*incident.pauses, Pause(now, None, reason)))
    return incident


def _unpause(incident: Incident, terms: SLATerms, calendar: BusinessCalendar, now: dt.datetime) -> Incident:
    """End a running pause: its business time moves the resolution due later."""
    if incident.paused_since is None:
        return incident
    clock = terms.clock(calendar)
    seconds = int(clock.between(incident.paused_since, now).total_seconds())
    pauses = list(incident.pauses)
    if pauses and pauses[-1].end is None:
        pauses[-1] = replace(pauses[-1], end=now, business_seconds=seconds)
    due = incident.resolution_due
    if due is not None and seconds:
        due = clock.add_minutes(due, seconds / 60)
    return replace(incident, paused_since=None, pauses=tuple(pauses), resolution_due=due)


# --- the steps ----------------------------------------------------------------------------


@dataclass
class _Step:
    incident: Incident
    action: str
    actor: Actor
    now: dt.datetime
    values: dict[str, Any]
    facts: Mapping[str, Any]
    problems: list[FieldProblem]
    to: IncidentStatus
    data: dict[str, Any] = field(default_factory=dict)
    extra: list[Event] = field(default_factory=list)

    def fact(self, name: str) -> Any:
        if name not in self.facts:
            raise TypeError(f"{self.action} needs the service to pass {name}=")
        return self.facts[name]


def _closure(step: _Step, details: str, actions: str, covered: bool, reason: str, referred: bool) -> Closure:
    incident = step.incident
    terms: SLATerms = step.fact("terms")
    calendar: BusinessCalendar = step.fact("calendar")
    business = terms.clock(calendar).between(incident.created_at, step.now)
    return Closure(
        reported_at=incident.created_at,
        reported_by=str(step.fact("reporter")),
        details=details,
        actions_taken=actions,
        resolved_by_id=step.actor.person_id,
        resolved_by=step.actor.username,
        resolved_at=step.now,
        time_to_resolve_minutes=int((step.now - incident.created_at).total_seconds() // 60),
        business_minutes_to_resolve=int(business.total_seconds() // 60),
        sla_covered=covered,
        out_of_sla_reason=reason,
        referred_to_customer=referred,
        billable_permission=step.values.get("billable_permission"),
    )


def _step(step: _Step) -> Incident:
    incident, values, now = step.incident, step.values, step.now
    action = step.action
    if action == "acknowledge":
        priority = values.get("priority", incident.priority)
        incident = redo_dues(incident, priority, step.fact("terms"), step.fact("calendar"))
        step.data.update(priority=priority.value)
        if "classification" in values:
            step.data["classification"] = values["classification"]
            incident = replace(incident, classification=values["classification"])
        return replace(incident, acknowledged_at=now, responded_at=incident.responded_at or now)
    if action == "set-priority":
        old = incident.priority
        incident = redo_dues(incident, values["priority"], step.fact("terms"), step.fact("calendar"))
        step.data.update({"before": old.value, "after": values["priority"].value, "reason": values.get("reason")})
        return incident
    if action in ("assign", "take"):
        assignee_id, assignee_name = step.fact("assignee")
        if action == "take" and incident.assignee_id is not None and incident.assignee_id != assignee_id:
            raise _conflict(incident, action, f"{incident.key} is already taken")
        if assignee_id == incident.assignee_id:
            raise _conflict(incident, action, f"{incident.key} is already assigned to {assignee_name}")
        if action == "assign" and incident.assignee_id is not None and not values.get("reason"):
            step.problems.append(FieldProblem("reason", "is required when reassigning (technical escalation)"))
        step.data.update(assignee=assignee_name, assignee_id=assignee_id, previous_assignee_id=incident.assignee_id)
        if incident.assignee_id is not None:
            step.data["technical_escalation"] = True
            step.data["reason"] = values.get("reason", "")
        return replace(incident, assignee_id=assignee_id)
    if action == "hold":
        reason = values.get("reason", "")
        if reason not in HOLD_REASONS:
            step.problems.append(FieldProblem("reason", f"must be one of {', '.join(HOLD_REASONS)}"))
            return incident
        step.to = HOLD_REASONS[reason]
        if step.to is incident.status:
            raise _conflict(incident, action, f"{incident.key} is already {incident.status.value}")
        step.data["reason"] = reason
        terms: SLATerms = step.fact("terms")
        incident = _unpause(incident, terms, step.fact("calendar"), now)
        waiting = WaitingFor.CUSTOMER if step.to is S.HOLD_RESOLUTION else None
        incident = replace(incident, waiting_for=waiting)
        return _pause(incident, step.to, terms, now, reason)
    if action == "resume":
        step.to = S.OPEN
        return replace(_unpause(incident, step.fact("terms"), step.fact("calendar"), now), waiting_for=None)
    if action == "resolve":
        covered = values.get("sla_covered", True)
        reason = values.get("out_of_sla_reason", "")
        if not covered and not reason:
            step.problems.append(FieldProblem("out_of_sla_reason", "is required when the SLA does not cover the cause"))
        terms = step.fact("terms")
        incident = _unpause(incident, terms, step.fact("calendar"), now)
        closure = _closure(step, values["details"], values["actions_taken"], covered, reason, not covered)
        step.data.update(sla_covered=covered, referred_to_customer=not covered)
        incident = replace(incident, resolved_at=now, closure=closure, waiting_for=WaitingFor.CONFIRMATION)
        return _pause(incident, S.HOLD_RESOLUTION, terms, now, "confirmation")
    if action == "confirm":
        assert incident.closure is not None
        by = values.get("confirmed_by") or step.actor.username
        step.data["confirmed_by"] = by
        closure = replace(incident.closure, confirmed_by=by, confirmed_at=now)
        return replace(
            incident,
            closure=closure,
            closed_at=now,
            waiting_for=None,
            paused_since=None,
            pauses=_closed_pauses(incident, now),
        )
    if action == "reopen":
        step.to = S.OPEN
        incident = _unpause(incident, step.fact("terms"), step.fact("calendar"), now)
        step.data.update(reason=values["reason"], reopen_count=incident.reopen_count + 1)
        return replace(incident, reopen_count=incident.reopen_count + 1, waiting_for=None, resolved_at=None)
    if action in ("escalate", "raise-rfc"):
        target = values.get("to")
        if action == "raise-rfc" or target == "change_management":
            if incident.status is S.RFC_SUBMITTED:
                raise _conflict(incident, action, f"{incident.key} already waits for {incident.rfc_key}")
            rfc_key = step.fact("rfc_key")
            step.to = S.RFC_SUBMITTED
            step.data.update(kind="change_management", rfc=rfc_key, reason=values.get("reason", ""))
            return replace(incident, rfc_key=rfc_key, waiting_for=None)
        assignee_id, assignee_name = step.fact("assignee")
        if assignee_id == incident.assignee_id:
            raise _conflict(incident, action, f"{incident.key} is already assigned to {assignee_name}")
        step.data.update(
            kind="technical",
            assignee=assignee_name,
            assignee_id=assignee_id,
            previous_assignee_id=incident.assignee_id,
            reason=values.get("reason", ""),
        )
        return replace(incident, assignee_id=assignee_id)
    if action == "close":
        step.to = S.CLOSED
        if incident.closure is not None and incident.closure.referred_to_customer:
            step.data["referred_to_customer"] = True
            return replace(
                incident, closed_at=now, waiting_for=None, paused_since=None, pauses=_closed_pauses(incident, now)
            )
        reason = values.get("out_of_sla_reason", "")
        if not reason:
            step.problems.append(
                FieldProblem(
                    "out_of_sla_reason",
                    "is required: staff close an incident only when its cause is outside the SLA "
                    "(it is referred back to the customer); otherwise resolve it for the customer to confirm",
                )
            )
            return incident
        closure = _closure(step, reason, "Referred back to the customer: outside the SLA.", False, reason, True)
        step.data.update(referred_to_customer=True, out_of_sla_reason=reason)
        return replace(
            incident,
            closure=closure,
            resolved_at=now,
            closed_at=now,
            waiting_for=None,
            paused_since=None,
            pauses=_closed_pauses(incident, now),
        )
    if action == "link":
        parent_id, parent_key = step.fact("parent_id"), step.fact("parent_key")
        step.data.update(parent=parent_key, parent_id=parent_id)
        return replace(incident, parent_id=parent_id)
    raise AssertionError(f"no step for {action}")  # pragma: no cover - TRANSITIONS and _step agree


def _closed_pauses(incident: Incident, now: dt.datetime) -> tuple[Pause, ...]:
    """Closing ends a running pause without moving any due (nothing is left to meet)."""
    if incident.paused_since is None:
        return incident.pauses
    pauses = list(incident.pauses)
    if pauses and pauses[-1].end is None:
        pauses[-1] = replace(pauses[-1], end=now)
    return tuple(pauses)


def transition(
    incident: Incident, action: str, actor: Actor, now: dt.datetime, params: Mapping[str, Any], **facts: Any
) -> tuple[Incident, list[Event]]:
    """Apply ``action`` to ``incident`` as ``actor`` at ``now`` with the person's ``params``
    and the service's ``facts``. Returns the new record (``version`` + 1, ``updated_at`` =
    ``now``) and the events to append to its history; raises as the module docstring says."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = TRANSITIONS.get(action)
    if row is None:
        raise InvalidInput.field("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if incident.status not in row.sources:
        raise _conflict(incident, action)
    guard = _guard(incident, action)
    if guard is not None:
        raise _conflict(incident, action, guard)
    if not _may(row, actor, incident):
        raise Forbidden(f"Your roles do not allow {action} on an incident.")
    problems: list[FieldProblem] = []
    unknown = sorted(set(params) - {*row.needs, *row.accepts, "comment"})
    problems += [FieldProblem(name, f"is not an input of {action}") for name in unknown]
    values = _read_inputs(row, params, problems)
    if problems:
        raise InvalidInput(problems)
    step = _Step(incident, action, actor, now, values, facts, problems, row_target(row, incident))
    new = _step(step)
    if problems:
        raise InvalidInput(problems)
    new = replace(new, status=step.to, version=incident.version + 1, updated_at=now)
    data = {"action": action, "from": incident.status.value, "to": step.to.value, **step.data}
    first = Event(EVENT_KINDS[action], actor.person_id, actor.username, now, values.get("comment", ""), data)
    return new, [first, *step.extra]


_TARGETS: Mapping[str, IncidentStatus] = {
    "acknowledge": S.OPEN,
    "resolve": S.HOLD_RESOLUTION,
    "confirm": S.CLOSED,
    "reopen": S.OPEN,
    "resume": S.OPEN,
    "close": S.CLOSED,
}


def row_target(row: Transition, incident: Incident) -> IncidentStatus:
    """Where the action leads unless its step decides otherwise (hold, escalate)."""
    return _TARGETS.get(row.action, incident.status)
