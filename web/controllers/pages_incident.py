"""Browser pages for incident management and the service manager's dashboard.

- `/incidents`: the engineer's queue (mine, my team's, all) by the nearest due time, each row
  with its SLA clock; a customer contact's own incidents.
- `/incidents/new`: the incident form; `/incidents/{key}`: the incident with its SLA targets,
  timeline, recent changes, matches, linked releases and the viewer's actions as forms.
- `/dashboard/service` and `GET /api/dashboard/service`: the service manager's figures.

Thin, like `pages_change.py`: parse, call IncidentService / ServiceDashboard, shape, render.
Every rule stays in the services; a refused action re-renders the page with the service's own
message and nothing changed. Jinja autoescapes every page, so tenant text is safe.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Response, Template

from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, StaleVersion
from cmdb.models import Actor, HistoryEntry, Person, Role
from cmdb.services import CMDBService
from incident.dashboard import DashboardFigures, ServiceDashboard, may_read
from incident.metrics import PRIORITY_ORDER, Attainment, Rate, percent
from incident.models import Incident, IncidentPriority, IncidentStatus
from incident.services import IncidentService, IncidentView, calendar_of
from incident.sla import SLAClock, SLATerms, TargetState, sla_clock
from incident.workflow import HOLD_REASONS, STAFF, TRANSITIONS
from web.controllers.pages import NAV, NavEntry, badge, page, pagination, url, when
from web.controllers.pages_change import choices, problems_by_field, split_list
from web.deps import parse_ref

PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Rows per page, up to 100")]
Offset = Annotated[int, QueryParameter(ge=0)]

QUEUE_PAGE = 50
TABS = {"mine": "Mine", "team": "My team's", "all": "All"}
STAFF_SCAN = 500  # provider staff read once per page, for assignee names and the assign forms

ACTION_LABELS: dict[str, str] = {
    "acknowledge": "Acknowledge",
    "set-priority": "Change priority",
    "assign": "Assign",
    "take": "Take it",
    "hold": "Put on hold",
    "resume": "Resume work",
    "resolve": "Resolve",
    "confirm": "Confirm it is fixed",
    "reopen": "Reopen: not fixed",
    "escalate": "Escalate",
    "raise-rfc": "Raise an RFC",
    "close": "Close: outside the SLA",
    "link": "Link to a parent incident",
}
DONE: dict[str, str] = {
    "created": "Recorded.",
    "acknowledge": "Acknowledged.",
    "set-priority": "Priority changed.",
    "assign": "Assigned.",
    "take": "It is yours.",
    "hold": "On hold.",
    "resume": "Work resumed.",
    "resolve": "Resolved: the customer is asked to confirm.",
    "confirm": "Confirmed: closed.",
    "reopen": "Reopened.",
    "escalate": "Escalated.",
    "raise-rfc": "RFC raised.",
    "close": "Closed.",
    "link": "Linked to its parent.",
    "time": "Time recorded.",
    "communication": "Communication recorded.",
}
DANGER = frozenset({"reopen", "close"})
INPUT_LABELS: dict[str, str] = {
    "comment": "Comment",
    "reason": "Reason",
    "priority": "Priority",
    "classification": "Classification",
    "person": "Engineer",
    "to": "Escalate to",
    "details": "Resolution details",
    "actions_taken": "Actions taken",
    "sla_covered": "Covered by the SLA",
    "out_of_sla_reason": "Why the cause is outside the SLA",
    "billable_permission": "Customer's permission for billable work",
    "confirmed_by": "Confirmed by",
    "parent": "Parent incident",
}
TEXTAREAS = frozenset({"comment", "details", "actions_taken", "out_of_sla_reason"})
HOLD_LABELS = {
    "research": "Research or testing",
    "customer": "Waiting for the customer",
    "pending_fix": "Fix identified: waiting for the customer's approval to deploy",
}
CHANGE_MANAGEMENT = "change_management"
FIELD_LABELS: dict[str, str] = {
    "customer": "Customer",
    "title": "Title",
    "cis": "Affected CIs and services",
    "priority": "Priority",
    "reported_by": "Reported by",
    "contact": "How to reach them",
    "symptoms": "Symptoms",
    "errors": "Errors seen",
    "steps_to_reproduce": "Steps to reproduce",
    "environment_changes": "Changes in the environment around that time",
    "classification": "Classification",
}
FORM_FIELDS = tuple(FIELD_LABELS)
TIME_FIELDS = ("minutes", "estimated_minutes", "note")
COMMUNICATION_FIELDS = ("channel", "direction", "party", "summary")
CHANNELS = ("phone", "email", "portal", "chat", "in_person", "other")
EVENT_LABELS: dict[str, str] = {
    "created": "Recorded",
    "acknowledged": "Acknowledged",
    "priority_changed": "Priority changed",
    "assigned": "Assigned",
    "taken": "Taken",
    "held": "Put on hold",
    "resumed": "Resumed",
    "resolved": "Resolved",
    "confirmed": "Confirmed by the customer",
    "reopened": "Reopened",
    "escalated": "Escalated",
    "rfc_raised": "RFC raised",
    "closed": "Closed",
    "linked": "Linked to a parent",
    "updated": "Updated",
    "time_recorded": "Time recorded",
    "communication": "Communication",
    "alert_repeat": "Alert repeated",
    "escalation": "Escalated (SLA)",
}
INTERNAL_EVENTS = frozenset({"time_recorded"})  # effort is the provider's business, not the customer's


# --- small helpers ----------------------------------------------------------------------------


def span(seconds: float, *, business: bool = False) -> str:
    """A duration for a person: 45 min, 3 h 20 min, 2 d 4 h. Business time stays in hours
    (a business day is not 24 hours)."""
    seconds = abs(int(seconds))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400 or business:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    return f"{days} d {hours} h" if hours else f"{days} d"


def is_staff(actor: Actor) -> bool:
    return actor.is_provider_staff and actor.has_any(*STAFF)


def may_report(actor: Actor) -> bool:
    return actor.has_any(*STAFF) or (Role.CUSTOMER in actor.roles and not actor.is_provider_staff)


def _status(error: Exception) -> int:
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, Conflict | StaleVersion):
        return 409
    return 403


def target_view(name: str, target: TargetState, paused: bool) -> dict[str, Any]:
    """One SLA target as the page shows it: text, share used and a colour class."""
    state = target.state
    if paused and state in ("on_track", "at_risk"):
        state = "paused"
    if state == "breached":
        text = f"Overdue by {span(target.remaining_seconds)}"
    elif state == "paused":
        text = f"Paused, {span(target.remaining_seconds, business=True)} left"
    elif state in ("on_track", "at_risk"):
        text = f"{span(target.remaining_seconds, business=True)} left"
    elif state == "met":
        text = "Met"
    elif state == "missed":
        text = f"Met late (due {when(target.due)})" if target.due else "Met late"
    else:
        text = "No target"
    share = max(target.elapsed_share, 0.0)
    share_text = f"{share * 100:.0f} %" if target.due else ""
    if state == "breached" and share < 1.0:
        share_text = "over 100 %"  # the queue's quick reading of a breach: see Lookups.running
    return {
        "name": name,
        "state": state,
        "text": text,
        "share": share_text,
        "bar": min(int(share * 100), 100),
        "due": when(target.due),
        "met": when(target.met_at),
        "paused": paused,
    }


def clock_view(clock: SLAClock) -> dict[str, Any]:
    """The running target: response until responded, then resolution."""
    if clock.response.met_at is None and clock.response.due is not None:
        return target_view("Response", clock.response, False)
    return target_view("Resolution", clock.resolution, clock.paused)


class Lookups:
    """What rows of incidents need from other records, read once per page: customers (keys,
    SLA terms, calendars) and the provider's staff (names)."""

    def __init__(self, cmdb: CMDBService, actor: Actor) -> None:
        self.cmdb = cmdb
        self.actor = actor
        self.customers: dict[int, Any] = {}
        self.staff: dict[int, Person] = {}
        self._terms: dict[int, tuple[SLATerms, Any]] = {}

    async def load(self, *, staff: bool) -> Lookups:
        customers, _ = await self.cmdb.list_customers(self.actor, 500, 0)
        self.customers = {c.id: c for c in customers}
        if staff and self.actor.is_provider_staff:
            provider = await self.cmdb.provider()
            people, _ = await self.cmdb.list_people(
                self.actor, customer=provider.id, role=None, expertise=None, limit=STAFF_SCAN, offset=0
            )
            self.staff = {p.id: p for p in people}
        return self

    def key(self, tenant_id: int) -> str:
        customer = self.customers.get(tenant_id)
        return customer.key if customer else ""

    def person(self, person_id: int | None) -> str:
        if person_id is None:
            return ""
        found = self.staff.get(person_id)
        return found.name if found else "provider engineer"

    def clock(self, incident: Incident, now: dt.datetime) -> SLAClock | None:
        customer = self.customers.get(incident.tenant_id)
        if customer is None:
            return None
        if incident.tenant_id not in self._terms:
            self._terms[incident.tenant_id] = (SLATerms.from_sla(customer.sla), calendar_of(customer))
        terms, calendar = self._terms[incident.tenant_id]
        return sla_clock(incident, terms, calendar, now)

    def running(self, incident: Incident, now: dt.datetime) -> dict[str, Any] | None:
        """The running target of an active incident for a queue row. A target already past
        due is read straight from its due time: "overdue by" is wall-clock time, and the
        business time used (over 100 %) is not worth walking the calendar over the days or
        weeks since the incident came in, for every row of a long backlog."""
        if not incident.is_open:
            return None
        responding = incident.responded_at is None and incident.response_due is not None
        due = incident.response_due if responding else incident.resolution_due
        until = now if responding else (incident.paused_since or now)
        resolved = incident.awaiting_confirmation
        if due is not None and until >= due and not resolved:
            overdue = TargetState(due, None, 0.0, -int((until - due).total_seconds()), "breached")
            return target_view("Response" if responding else "Resolution", overdue, False)
        clock = self.clock(incident, now)
        return clock_view(clock) if clock else None

    def assignable(self) -> list[dict[str, str]]:
        return [
            {"value": p.username, "label": f"{p.name} ({p.username})"}
            for p in sorted(self.staff.values(), key=lambda p: p.name)
            if p.active and p.roles & STAFF
        ]


def incident_row(incident: Incident, lookups: Lookups, now: dt.datetime) -> dict[str, Any]:
    return {
        "key": incident.key,
        "href": f"/incidents/{incident.key}",
        "title": incident.title,
        "customer": lookups.key(incident.tenant_id),
        "status": badge(incident.status),
        "priority": badge(incident.priority),
        "assignee": lookups.person(incident.assignee_id),
        "assigned": incident.assignee_id is not None,
        "created": when(incident.created_at),
        "sla": lookups.running(incident, now),
        "awaiting_confirmation": incident.awaiting_confirmation,
        "reopened": incident.reopen_count,
    }


# --- the queue and the customer's list ----------------------------------------------------------


@get("/incidents", include_in_schema=False)
async def incident_queue(
    incidents: IncidentService,
    cmdb: CMDBService,
    actor: Actor,
    tab: str | None = None,
    customer: str | None = None,
    status: str | None = None,
    offset: Offset = 0,
) -> Template:
    """Provider staff: the queue (mine, my team's, all) by the nearest due time. A customer
    contact: their own incidents, newest first."""
    now = incidents.clock.now()
    customer = customer.strip() if customer and customer.strip() else None
    if not actor.is_provider_staff:
        status = status.strip() if status and status.strip() else None
        items, total = await incidents.list_incidents(
            actor, statuses=[status] if status else None, limit=QUEUE_PAGE, offset=offset
        )
        lookups = await Lookups(cmdb, actor).load(staff=False)
        params = {"status": status}
        return page(
            "incidents/list.html",
            actor,
            section="incidents",
            title="My incidents",
            rows=[incident_row(i, lookups, now) for i in items],
            filters=params,
            statuses=choices(IncidentStatus),
            pages=pagination("/incidents", params, total, QUEUE_PAGE, offset),
            can_report=may_report(actor),
            waiting=sum(1 for i in items if i.awaiting_confirmation),
        )
    # Engineers work their own queue first; service managers and others oversee all of it.
    chosen = (tab or ("mine" if actor.has_any(Role.ENGINEER) else "all")).strip()
    if chosen not in TABS:
        raise InvalidInput.field("tab", f"must be one of {', '.join(TABS)}")
    items, total = await incidents.queue(
        actor, scope=chosen, customer=parse_ref(customer) if customer else None, limit=QUEUE_PAGE, offset=offset
    )
    lookups = await Lookups(cmdb, actor).load(staff=True)
    params = {"tab": chosen, "customer": customer}
    return page(
        "incidents/queue.html",
        actor,
        section="incidents",
        title="Incident queue",
        tab=chosen,
        tabs=[
            {"key": k, "label": v, "href": url("/incidents", {**params, "tab": k}), "current": k == chosen}
            for k, v in TABS.items()
        ],
        rows=[incident_row(i, lookups, now) for i in items],
        total=total,
        filters=params,
        customers=[{"key": c.key, "name": c.name} for c in lookups.customers.values() if not c.is_provider],
        pages=pagination("/incidents", params, total, QUEUE_PAGE, offset),
        can_report=may_report(actor),
    )


# --- the incident form --------------------------------------------------------------------------


def form_values(source: Mapping[str, Any]) -> dict[str, str]:
    values = {name: str(source.get(name) or "") for name in FORM_FIELDS}
    values["priority"] = values["priority"] or IncidentPriority.NORMAL.value
    return values


def form_data(values: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": parse_ref(values["customer"].strip()) if values["customer"].strip() else None,
        "title": values["title"],
        "cis": split_list(values["cis"]),
        "priority": values["priority"].strip() or None,
    }
    for name in (
        "reported_by",
        "contact",
        "symptoms",
        "errors",
        "steps_to_reproduce",
        "environment_changes",
        "classification",
    ):
        if values[name].strip():
            data[name] = values[name]
    return data


async def _render_form(
    cmdb: CMDBService,
    actor: Actor,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, list[str]] | None = None,
    general: Sequence[str] = (),
    message: str | None = None,
    status: int = 200,
) -> Template:
    customers = (await cmdb.list_customers(actor, 500, 0))[0] if actor.is_provider_staff else []
    own = ""
    if not actor.is_provider_staff:
        own = (await cmdb.get_customer(actor, actor.tenant_id)).key
    return page(
        "incidents/form.html",
        actor,
        section="incidents",
        title="Record an incident",
        status=status,
        values=values,
        errors=errors or {},
        general=list(general),
        message=message,
        labels=FIELD_LABELS,
        choose_customer=actor.is_provider_staff,
        customers=[{"key": c.key, "name": c.name} for c in customers],
        customer_key=own,
        priorities=choices(IncidentPriority),
    )


@get("/incidents/new", include_in_schema=False)
async def incident_new(cmdb: CMDBService, actor: Actor, customer: str | None = None) -> Template:
    if not may_report(actor):
        raise Forbidden("Engineers, service managers and customer contacts record incidents.")
    return await _render_form(cmdb, actor, form_values({"customer": customer or ""}))


@post("/incidents/new", include_in_schema=False)
async def incident_create(
    request: Request[Any, Any, Any], incidents: IncidentService, cmdb: CMDBService, actor: Actor
) -> Response[Any]:
    form = await request.form()
    values = form_values(form)
    if not actor.is_provider_staff:
        values["customer"] = (await cmdb.get_customer(actor, actor.tenant_id)).key
    try:
        incident = await incidents.create(actor, form_data(values))
    except InvalidInput as error:
        errors, general = problems_by_field(error.problems, FORM_FIELDS)
        return await _render_form(
            cmdb,
            actor,
            values,
            errors=errors,
            general=general,
            status=422,
            message="Nothing was recorded: correct the fields marked below.",
        )
    return Redirect(path=f"/incidents/{incident.key}?done=created", status_code=303)


# --- the incident page --------------------------------------------------------------------------


def _input(
    name: str,
    action: str,
    incident: Incident,
    lookups: Lookups,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> dict[str, Any]:
    row = TRANSITIONS[action]
    referred = bool(incident.closure and incident.closure.referred_to_customer)
    kind, options, default, hint = "text", [], "", ""
    if name in TEXTAREAS:
        kind = "textarea"
    if name == "priority":
        kind, options, default = "select", choices(IncidentPriority), incident.priority.value
    elif name == "reason" and action == "hold":
        kind = "select"
        options = [{"value": k, "label": HOLD_LABELS.get(k, k)} for k in HOLD_REASONS]
    elif name == "person":
        kind, options = "select", lookups.assignable()
    elif name == "to":
        kind = "select"
        options = [{"value": CHANGE_MANAGEMENT, "label": "Change management (raises an RFC)"}, *lookups.assignable()]
    elif name == "sla_covered":
        kind, default = "radio", "yes"
        options = [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No: refer it back to the customer"}]
    elif name == "billable_permission":
        kind = "select"
        options = [
            {"value": "", "label": "Not asked"},
            {"value": "yes", "label": "Given"},
            {"value": "no", "label": "Refused"},
        ]
    elif name == "parent":
        hint = "An incident key of the same customer, e.g. INC-2026-0012"
    elif name == "reason" and action == "assign" and incident.assignee_id is not None:
        hint = "Needed to reassign: it counts as a technical escalation."
    return {
        "name": name,
        "label": INPUT_LABELS.get(name, name),
        "kind": kind,
        "required": name in row.needs
        or (name == "reason" and action == "assign" and incident.assignee_id is not None)
        or (name == "out_of_sla_reason" and action == "close" and not referred),
        "value": values.get(name, default),
        "options": options,
        "errors": errors.get(name, []),
        "hint": hint,
    }


def action_forms(
    incident: Incident,
    allowed: Sequence[str],
    lookups: Lookups,
    failed: str | None,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> list[dict[str, Any]]:
    """The viewer's actions, each a form with the inputs it needs (the link action lives by
    the matches, where the parent is chosen)."""
    forms = []
    for action in allowed:
        if action == "link":
            continue
        row = TRANSITIONS[action]
        names = list(dict.fromkeys([*row.needs, *row.accepts, "comment"]))
        mine = action == failed
        forms.append(
            {
                "action": action,
                "label": ACTION_LABELS.get(action, action),
                "danger": action in DANGER,
                "failed": mine,
                "inputs": [
                    _input(n, action, incident, lookups, values if mine else {}, errors if mine else {}) for n in names
                ],
            }
        )
    return forms


def action_params(action: str, form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's inputs for this action as the service takes them, and the raw values."""
    row = TRANSITIONS[action]
    params: dict[str, Any] = {}
    raw: dict[str, str] = {}
    for name in dict.fromkeys((*row.needs, *row.accepts, "comment")):
        value = str(form.get(name) or "")
        raw[name] = value
        text = value.strip()
        if name in ("sla_covered", "billable_permission"):
            if text in ("yes", "no"):
                params[name] = text == "yes"
            elif text:
                params[name] = text  # the service names the field
        elif text:
            params[name] = text
    return params, raw


def _detail_lines(entry: HistoryEntry, staff: bool) -> list[str]:
    data = dict(entry.after or {})
    lines: list[str] = []
    before, after = data.get("from"), data.get("to")
    if before and after and before != after:
        lines.append(f"{_status_label(before)} \u2192 {_status_label(after)}")
    if entry.action == "priority_changed":
        lines.append(f"priority {data.get('before')} \u2192 {data.get('after')}")
    elif entry.action == "acknowledged" and data.get("priority"):
        lines.append(f"priority {data['priority']}")
    if entry.action in ("assigned", "taken", "escalated") and data.get("assignee") and staff:
        lines.append(f"to {data['assignee']}")
    if data.get("technical_escalation"):
        lines.append("reassigned: technical escalation")
    if entry.action in ("held", "reopened", "escalated", "rfc_raised", "priority_changed") and data.get("reason"):
        reason = data["reason"]
        lines.append(f"reason: {HOLD_LABELS.get(reason, reason) if entry.action == 'held' else reason}")
    if data.get("rfc"):
        lines.append(f"RFC {data['rfc']}")
    if entry.action == "time_recorded":
        estimate = data.get("estimated_minutes")
        lines.append(
            f"{data.get('person')}: {data.get('minutes')} min"
            + (f" (estimated {estimate} min)" if estimate is not None else "")
        )
    if entry.action == "communication":
        lines.append(
            f"{data.get('direction', '')} {str(data.get('channel', '')).replace('_', ' ')}".strip()
            + (f" with {data['party']}" if data.get("party") else "")
        )
    if entry.action == "linked" and data.get("parent"):
        lines.append(f"parent {data['parent']}")
    if entry.action == "confirmed" and data.get("confirmed_by"):
        lines.append(f"by {data['confirmed_by']}")
    if data.get("referred_to_customer"):
        lines.append("outside the SLA: referred back to the customer")
    return lines


def _status_label(value: Any) -> str:
    return IncidentStatus(value).label if value in IncidentStatus.values() else str(value)


def timeline_view(entries: Iterable[HistoryEntry], staff: bool) -> list[dict[str, Any]]:
    """The incident's history: every activity, communication and time entry, newest last."""
    shown = []
    for entry in entries:
        if not staff and entry.action in INTERNAL_EVENTS:
            continue
        shown.append(
            {
                "kind": entry.action,
                "what": EVENT_LABELS.get(entry.action, entry.action.replace("_", " ").capitalize()),
                "who": entry.actor_name,
                "at": when(entry.at),
                "comment": entry.comment,
                "details": _detail_lines(entry, staff),
            }
        )
    return shown


def _text(value: str) -> str:
    return value or ""


async def _incident_page(
    incidents: IncidentService,
    cmdb: CMDBService,
    actor: Actor,
    key: str,
    *,
    status: int = 200,
    message: str | None = None,
    notice: str | None = None,
    failed: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, list[str]] | None = None,
) -> Template:
    view: IncidentView = await incidents.get(actor, parse_ref(key))
    incident = view.incident
    staff = is_staff(actor)
    lookups = await Lookups(cmdb, actor).load(staff=actor.is_provider_staff)
    history = await incidents.history(actor, incident.id)
    matches = await incidents.matches(actor, incident.id) if staff and incident.is_open else []
    closure = incident.closure
    now = incidents.clock.now()
    sla = view.sla
    return page(
        "incidents/detail.html",
        actor,
        section="incidents",
        title=f"{incident.key} {incident.title}",
        status=status,
        message=message,
        notice=notice,
        staff=staff,
        inc={
            "key": incident.key,
            "id": incident.id,
            "title": incident.title,
            "version": incident.version,
            "customer": view.customer.key,
            "timezone": view.customer.timezone,
            "status": badge(incident.status),
            "priority": badge(incident.priority),
            "source": badge(incident.source),
            "response_level": incident.response_level.label if incident.response_level else "",
            "waiting_for": incident.waiting_for.label if incident.waiting_for else "",
            "awaiting_confirmation": incident.awaiting_confirmation,
            "assignee": view.assignee.name if view.assignee else ("provider engineer" if incident.assignee_id else ""),
            "reported_by": incident.reported_by,
            "contact": incident.contact,
            "received_by": lookups.person(incident.received_by_id) if incident.received_by_id else "",
            "created": when(incident.created_at),
            "updated": when(incident.updated_at),
            "acknowledged": when(incident.acknowledged_at),
            "resolved": when(incident.resolved_at),
            "closed": when(incident.closed_at),
            "reopen_count": incident.reopen_count,
            "classification": incident.classification,
            "symptoms": _text(incident.symptoms),
            "errors": _text(incident.errors),
            "steps_to_reproduce": _text(incident.steps_to_reproduce),
            "environment_changes": _text(incident.environment_changes),
            "rfc_key": incident.rfc_key,
            "parent": view.parent_key,
            "children": [{"key": k, "title": t} for _, k, t in view.children],
            "cis": [{"id": ci.id, "name": ci.name, "class": ci.ci_class.label} for ci in view.cis],
        },
        sla={
            "template": sla.template,
            "response_target": sla.response_target.describe() if sla.response_target else "none",
            "resolution_target": sla.resolution_target.describe()
            if sla.resolution_target
            else "none (ongoing escalation until resolved)",
            "response": target_view("Response", sla.response, False),
            "resolution": target_view("Resolution", sla.resolution, sla.paused),
            "paused": sla.paused,
            "paused_for": span(sla.paused_seconds) if sla.paused_seconds else "",
            "running": clock_view(sla) if incident.is_open else None,
        },
        closure={
            "details": closure.details,
            "actions_taken": closure.actions_taken,
            "resolved_by": closure.resolved_by,
            "resolved_at": when(closure.resolved_at),
            "time_to_resolve": span(closure.time_to_resolve_minutes * 60),
            "business_time_to_resolve": span(closure.business_minutes_to_resolve * 60),
            "sla_covered": closure.sla_covered,
            "out_of_sla_reason": closure.out_of_sla_reason,
            "referred_to_customer": closure.referred_to_customer,
            "billable_permission": closure.billable_permission,
            "confirmed_by": closure.confirmed_by,
            "confirmed_at": when(closure.confirmed_at),
        }
        if closure
        else None,
        escalations=[{"level": e.level.replace("_", " "), "at": when(e.created_at)} for e in view.escalations]
        if staff
        else [],
        recent_changes=[
            {
                "key": change.key,
                "title": change.title,
                "completed": when(change.completed_at),
                "direct": change.direct,
                "href": f"/changes/{change.key}",
            }
            for change in view.recent_changes
        ],
        releases=[{"key": release_key, "href": f"/releases/{release_key}"} for _, release_key in view.releases],
        matches=[
            {
                **incident_row(other, lookups, now),
                "score": f"{score.score * 100:.0f} %",
                "similarity": f"{score.similarity * 100:.0f} %",
                "same_cis": len(score.same_cis),
                "neighbour_cis": len(score.neighbour_cis),
            }
            for other, score in matches
        ],
        can_link="link" in view.allowed,
        link_failed=failed == "link",
        timeline=timeline_view(history, staff),
        time_entries=[
            {
                "person": lookups.person(e.person_id),
                "minutes": e.minutes,
                "estimated": e.estimated_minutes,
                "at": when(e.at),
                "note": e.note,
            }
            for e in view.time_entries
        ]
        if staff
        else [],
        time_total=sum(e.minutes for e in view.time_entries),
        communications=[
            {
                "channel": c.channel.replace("_", " "),
                "direction": c.direction,
                "party": c.party,
                "summary": c.summary,
                "at": when(c.at),
            }
            for c in view.communications
        ],
        forms=action_forms(incident, view.allowed, lookups, failed, values or {}, errors or {}),
        can_record_time=staff and incident.is_open,
        can_communicate=incident.is_open and (staff or Role.CUSTOMER in actor.roles),
        side_failed=failed if failed in ("time", "communication") else None,
        side_values=values if failed in ("time", "communication") else {},
        side_errors=errors if failed in ("time", "communication") else {},
        channels=[{"value": c, "label": c.replace("_", " ").capitalize()} for c in CHANNELS],
    )


@get("/incidents/{key:str}", include_in_schema=False)
async def incident_detail(
    incidents: IncidentService, cmdb: CMDBService, actor: Actor, key: str, done: str | None = None
) -> Template:
    notice = DONE.get(done or "")
    return await _incident_page(incidents, cmdb, actor, key, notice=notice)


def _refusal(
    action_label: str, error: InvalidInput | Conflict | Forbidden | StaleVersion, known: Iterable[str]
) -> tuple[str, dict[str, list[str]]]:
    if isinstance(error, InvalidInput):
        errors, general = problems_by_field(error.problems, known)
        reasons = [*(f"{INPUT_LABELS.get(n, FIELD_LABELS.get(n, n))} {r[0]}" for n, r in errors.items()), *general]
        return f"{action_label} refused, nothing changed: " + "; ".join(reasons), errors
    if isinstance(error, StaleVersion):
        return (
            f"{action_label} refused, nothing changed: someone changed it since you loaded the page. {error.detail}",
            {},
        )
    return f"{action_label} refused, nothing changed. {error.detail}", {}


@post("/incidents/{key:str}/actions/{action:str}", include_in_schema=False)
async def incident_action(
    request: Request[Any, Any, Any],
    incidents: IncidentService,
    cmdb: CMDBService,
    actor: Actor,
    key: str,
    action: str,
) -> Response[Any]:
    """One workflow action from a form: on success back to the page (303) with a notice; on
    refusal the page again with the service's message, status 409, 422 or 403."""
    form = await request.form()
    view = await incidents.get(actor, parse_ref(key))  # 404 for what the viewer may not see
    incident = view.incident
    if action not in TRANSITIONS:
        return await _incident_page(
            incidents, cmdb, actor, incident.key, status=422, message=f"There is no action {action!r} on an incident."
        )
    params, raw = action_params(action, form)
    version = str(form.get("version") or "")
    try:
        await incidents.act(
            actor, incident.id, action, params, expected_version=int(version) if version.isdigit() else None
        )
    except (InvalidInput, Conflict, Forbidden, StaleVersion) as error:
        message, errors = _refusal(ACTION_LABELS[action], error, raw)
        return await _incident_page(
            incidents,
            cmdb,
            actor,
            incident.key,
            status=_status(error),
            message=message,
            failed=action,
            values=raw,
            errors=errors,
        )
    return Redirect(path=f"/incidents/{incident.key}?done={action}", status_code=303)


def _whole(raw: str) -> int | str | None:
    text = raw.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text  # not a number: the service names the field


@post("/incidents/{key:str}/time", include_in_schema=False)
async def incident_time(
    request: Request[Any, Any, Any], incidents: IncidentService, cmdb: CMDBService, actor: Actor, key: str
) -> Response[Any]:
    form = await request.form()
    view = await incidents.get(actor, parse_ref(key))
    raw = {name: str(form.get(name) or "") for name in TIME_FIELDS}
    data: dict[str, Any] = {"minutes": _whole(raw["minutes"]), "note": raw["note"].strip()}
    estimate = _whole(raw["estimated_minutes"])
    if estimate is not None:
        data["estimated_minutes"] = estimate
    try:
        await incidents.record_time(actor, view.incident.id, data)
    except (InvalidInput, Forbidden) as error:
        message, errors = _refusal("Recording time", error, TIME_FIELDS)
        return await _incident_page(
            incidents,
            cmdb,
            actor,
            view.incident.key,
            status=_status(error),
            message=message,
            failed="time",
            values=raw,
            errors=errors,
        )
    return Redirect(path=f"/incidents/{view.incident.key}?done=time", status_code=303)


@post("/incidents/{key:str}/communications", include_in_schema=False)
async def incident_communication(
    request: Request[Any, Any, Any], incidents: IncidentService, cmdb: CMDBService, actor: Actor, key: str
) -> Response[Any]:
    form = await request.form()
    view = await incidents.get(actor, parse_ref(key))
    raw = {name: str(form.get(name) or "") for name in COMMUNICATION_FIELDS}
    data: dict[str, Any] = {"channel": raw["channel"].strip(), "summary": raw["summary"], "party": raw["party"].strip()}
    if raw["direction"].strip():
        data["direction"] = raw["direction"].strip()
    try:
        await incidents.record_communication(actor, view.incident.id, data)
    except (InvalidInput, Forbidden) as error:
        message, errors = _refusal("Recording the communication", error, COMMUNICATION_FIELDS)
        return await _incident_page(
            incidents,
            cmdb,
            actor,
            view.incident.key,
            status=_status(error),
            message=message,
            failed="communication",
            values=raw,
            errors=errors,
        )
    return Redirect(path=f"/incidents/{view.incident.key}?done=communication", status_code=303)


NAV.append(NavEntry("incidents", "Incidents", "/incidents", lambda actor: actor.is_provider_staff))
NAV.append(NavEntry("incidents", "My incidents", "/incidents", lambda actor: not actor.is_provider_staff))


# --- the service manager's dashboard ----------------------------------------------------------

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(raw: str | None, name: str, problems: list[FieldProblem]) -> dt.date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if not DAY.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(FieldProblem(name, "must be a date as YYYY-MM-DD, e.g. 2026-10-01"))
        return None


def parse_period(raw_from: str | None, raw_to: str | None) -> tuple[dt.date | None, dt.date | None]:
    problems: list[FieldProblem] = []
    start, end = parse_day(raw_from, "from", problems), parse_day(raw_to, "to", problems)
    if problems:
        raise InvalidInput(problems)
    return start, end


def _tone_up(rate: float | None) -> str:
    """Higher is better (attainment, first-contact resolution)."""
    if rate is None:
        return "none"
    return "good" if rate >= 0.95 else "fair" if rate >= 0.8 else "poor"


def _tone_down(rate: float | None) -> str:
    """Lower is better (escalation, reopen)."""
    if rate is None:
        return "none"
    return "good" if rate <= 0.05 else "fair" if rate <= 0.15 else "poor"


def _attainment_tile(key: str, label: str, figure: Attainment) -> dict[str, str]:
    pending = f", {figure.pending} not due yet" if figure.pending else ""
    return {
        "key": key,
        "label": label,
        "value": percent(figure.rate),
        "detail": f"{figure.met} of {figure.decided} met{pending}",
        "tone": _tone_up(figure.rate),
    }


def _rate_tile(key: str, label: str, figure: Rate, of: str, lower_is_better: bool) -> dict[str, str]:
    return {
        "key": key,
        "label": label,
        "value": percent(figure.rate),
        "detail": f"{figure.count} of {figure.of} {of}",
        "tone": _tone_down(figure.rate) if lower_is_better else _tone_up(figure.rate),
    }


def dashboard_view(found: DashboardFigures) -> dict[str, Any]:
    figures = found.figures
    return {
        "period_from": found.period_from.isoformat(),
        "period_to": found.period_to.isoformat(),
        "customer": found.customer_key,
        "computed": when(found.computed_at),
        "incidents": figures.incidents,
        "tiles": [
            _attainment_tile("response", "Response attainment", figures.response),
            _attainment_tile("resolution", "Resolution attainment", figures.resolution),
            _rate_tile("escalation", "Escalation rate", figures.escalation, "incidents escalated", True),
            _rate_tile("reopen", "Reopen rate", figures.reopen, "resolved incidents reopened", True),
            _rate_tile(
                "first-contact",
                "First-contact resolution",
                figures.first_contact,
                "resolved by the first engineer, never reassigned, reopened or escalated",
                False,
            ),
        ],
        "priorities": [
            {
                "value": priority,
                "label": priority.capitalize(),
                "response": percent(response.rate),
                "response_count": f"{response.met} of {response.decided}",
                "resolution": percent(resolution.rate),
                "resolution_count": f"{resolution.met} of {resolution.decided}",
            }
            for priority in PRIORITY_ORDER
            if priority in figures.by_priority
            for response, resolution in [figures.by_priority[priority]]
        ],
        "engineers": [{**engineer.as_dict(), "accuracy": percent(engineer.accuracy)} for engineer in figures.engineers],
    }


@get("/dashboard/service", include_in_schema=False)
async def service_dashboard_page(
    dashboard: ServiceDashboard,
    cmdb: CMDBService,
    actor: Actor,
    customer: str | None = None,
    from_: Annotated[str | None, QueryParameter(name="from")] = None,
    to: str | None = None,
) -> Template:
    customer = customer.strip() if customer and customer.strip() else None
    filters = {"customer": customer or "", "from": (from_ or "").strip(), "to": (to or "").strip()}
    errors: dict[str, list[str]] = {}
    found: DashboardFigures | None = None
    message = None
    try:
        start, end = parse_period(from_, to)
        found = await dashboard.figures(
            actor, customer=parse_ref(customer) if customer else None, period_from=start, period_to=end
        )
        filters.update({"from": found.period_from.isoformat(), "to": found.period_to.isoformat()})
    except InvalidInput as error:
        if not may_read(actor):
            raise
        for problem in error.problems:
            errors.setdefault(problem.field, []).append(problem.reason)
        message = "The period does not read as dates: correct the fields marked below."
    customers = (await cmdb.list_customers(actor, 500, 0))[0]
    return page(
        "incidents/dashboard.html",
        actor,
        section="service-dashboard",
        title="Service dashboard",
        status=422 if errors else 200,
        message=message,
        d=dashboard_view(found) if found else None,
        filters=filters,
        errors=errors,
        customers=[{"key": c.key, "name": c.name} for c in customers if not c.is_provider],
        json_href=url("/api/dashboard/service", filters),
    )


@get(
    "/api/dashboard/service",
    tags=["incidents"],
    summary="The service manager's figures for a period and customer",
    description=(
        "SLA response and resolution attainment, escalation rate, reopen rate, first-contact "
        "resolution and estimated against actual time per engineer, for incidents raised from "
        "`from` to `to` (UTC days, both included; default: the last full month) of one customer "
        "(key or id) or all. Service managers, engineers and administrators of the provider."
    ),
)
async def service_dashboard_api(
    dashboard: ServiceDashboard,
    actor: Actor,
    customer: str | None = None,
    from_: Annotated[str | None, QueryParameter(name="from", description="First day, YYYY-MM-DD")] = None,
    to: Annotated[str | None, QueryParameter(description="Last day (included), YYYY-MM-DD")] = None,
) -> dict[str, Any]:
    start, end = parse_period(from_, to)
    ref = parse_ref(customer.strip()) if customer and customer.strip() else None
    found = await dashboard.figures(actor, customer=ref, period_from=start, period_to=end)
    return found.as_dict()


NAV.append(
    NavEntry(
        "service-dashboard",
        "Service dashboard",
        "/dashboard/service",
        lambda actor: actor.is_provider_staff and actor.has_any(Role.SERVICE_MANAGER, Role.ADMINISTRATOR),
    )
)

HANDLERS: list[Any] = [
    incident_queue,
    incident_new,
    incident_create,
    incident_detail,
    incident_action,
    incident_time,
    incident_communication,
    service_dashboard_page,
    service_dashboard_api,
]
