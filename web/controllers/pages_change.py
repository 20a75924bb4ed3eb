"""Browser pages for change management: the change manager's queue, the RFC list, the RFC form,
the RFC page with its workflow actions, the committee member's pending votes, the calendar.

Thin, like `pages.py`: parse the form, call ChangeService / CMDBService, shape what the template
shows, render. Every rule (who may do what, what a step needs) stays in `change.workflow` and the
service; a refused action re-renders the RFC page with the service's own message and nothing
changed. Times typed into a form are the customer's local time (their tenant's time zone) and
stored in UTC. Jinja autoescapes every page, so tenant text is safe.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Response, Template
from markupsafe import Markup

from change.catalogue import CATALOGUE
from change.models import RFC, ChangeType, ImpactClass, Origin, Priority, RFCState, Urgency, VoteChoice
from change.services import ChangeService, RFCImpact
from change.workflow import TRANSITIONS, allowed_actions
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from cmdb.models import Actor, HistoryEntry, RelationshipType, Role
from cmdb.services import CMDBService, ImpactRow
from release.patches import PatchService
from release.urgency import PatchState
from web import graphsvg
from web.auth import provider_staff
from web.controllers.pages import badge, graph_nodes, page, pagination, row_label, show, when
from web.controllers.pages_patches import relative
from web.deps import parse_ref

PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Rows per page, up to 100")]
Offset = Annotated[int, QueryParameter(ge=0)]

QUEUE_LIMIT = 100
LOOKAHEAD = dt.timedelta(days=31)
PICTURE_MAX_NODES = 60
PICTURE_DEPTH = 3  # hops drawn around each affected CI (the CI pages draw 2, at most 3)
PICTURE_ROOTS = 5  # affected CIs whose neighbourhoods are drawn
IMPACT_LISTED = 50
CALENDAR_STATES = ("scheduled", "implementing", "completed", "failed", "backed_out")
CALENDAR_SCAN = 2000  # RFCs read at most to fill one month
RAISE_ROLES = (Role.ENGINEER, Role.CHANGE_MANAGER, Role.CUSTOMER, Role.ADMINISTRATOR, Role.SERVICE_MANAGER)

ACTION_LABELS: dict[str, str] = {
    "submit": "Submit",
    "request-info": "Request information",
    "set-priority": "Change priority",
    "authorize": "Authorize",
    "reject": "Reject",
    "refer-to-committee": "Refer to committee",
    "vote": "Vote",
    "approve": "Approve",
    "customer-approve": "Approve for the customer",
    "schedule": "Schedule",
    "withdraw": "Withdraw",
    "implement": "Start implementation",
    "complete": "Complete",
    "fail": "Record failure",
    "back-out": "Back out",
}
DONE: dict[str, str] = {
    "created": "Saved as a draft.",
    "updated": "Saved.",
    "submit": "Submitted.",
    "request-info": "Sent back to the originator for information.",
    "set-priority": "Priority changed.",
    "authorize": "Authorized.",
    "reject": "Rejected.",
    "refer-to-committee": "Referred to the review committee.",
    "vote": "Your vote is recorded.",
    "approve": "Approved.",
    "customer-approve": "Approved on the customer's side.",
    "schedule": "Scheduled.",
    "withdraw": "Withdrawn.",
    "implement": "Implementation started.",
    "complete": "Completed.",
    "fail": "Failure recorded.",
    "back-out": "Backed out.",
}
DANGER = frozenset({"reject", "withdraw", "fail", "back-out"})
INPUT_LABELS: dict[str, str] = {
    "comment": "Comment",
    "reason": "Reason",
    "priority": "New priority",
    "release_requirements": "Release requirements",
    "vote": "Your vote",
    "emergency_reason": "Emergency change advisory board decision",
    "planned_start": "Planned start",
    "planned_end": "Planned end",
}
FIELD_LABELS: dict[str, str] = {
    "customer": "Customer",
    "title": "Title",
    "type": "Type",
    "template": "Standard change template",
    "priority": "Priority",
    "origin": "Origin",
    "origin_ref": "Incident or problem reference",
    "cis": "Affected CIs",
    "need": "Problem or need",
    "desired_result": "Desired result",
    "plan": "Implementation plan",
    "backout_plan": "Backout plan",
    "deadline": "Proposed deadline",
    "cost": "Cost",
    "budget": "Budget for approval",
    "customer_ref": "Customer's change reference",
    "refers_to": "Follows up RFC",
    "affected_people": "People affected (named by hand)",
    "urgency": "Urgency",
    "vulnerability": "Vulnerability or flaw addressed",
    "patch_components": "Components to patch",
    "patch_description": "Patch description (files, size)",
    "available_at": "Update available since",
    "proposed_deployment": "Proposed deployment",
    "testing_done": "Testing done so far",
}
FORM_FIELDS = tuple(FIELD_LABELS)
TEXT_FIELDS = (
    "title",
    "need",
    "desired_result",
    "plan",
    "backout_plan",
    "vulnerability",
    "patch_description",
    "testing_done",
)
OPTIONAL_REFS = ("origin_ref", "customer_ref", "refers_to", "template")
LIST_FIELDS = ("cis", "affected_people", "patch_components")
MOMENT_FIELDS = ("deadline", "available_at", "proposed_deployment")
AMOUNT_FIELDS = ("cost", "budget")
PROBLEM_FIELD = {"ci_ids": "cis", "class": "cis"}
BAD_MOMENT = "must be a date and time, e.g. 2026-11-21 22:00"
PRIORITY_ORDER = {p: i for i, p in enumerate(Priority)}


# --- small helpers ----------------------------------------------------------------------------


def split_list(text: str | None) -> list[str]:
    """A comma- or line-separated field as a list of non-blank items, order kept, no repeats."""
    items: list[str] = []
    for part in re.split(r"[,\n]", text or ""):
        item = part.strip()
        if item and item not in items:
            items.append(item)
    return items


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_local(raw: str | None, tz: ZoneInfo) -> tuple[str | None, bool]:
    """A `datetime-local` value read in the customer's time zone, as ISO 8601 with an offset.
    Returns (value for the service, ok); a value that does not parse is passed on unchanged so
    the service names the field, and `ok` is False so the page words the reason for a person."""
    text = (raw or "").strip()
    if not text:
        return None, True
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        return text, False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(dt.UTC).isoformat(), True


def local_value(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    """A stored moment as a `datetime-local` input value in the customer's time zone."""
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if moment else ""


def local_text(moment: dt.datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return ""
    if tz.key == "UTC":
        return when(moment)
    return f"{moment.astimezone(tz).strftime('%Y-%m-%d %H:%M')} {tz.key} ({when(moment)})"


def age(now: dt.datetime, then: dt.datetime) -> str:
    seconds = max((now - then).total_seconds(), 0)
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def problems_by_field(problems: Iterable[FieldProblem], known: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Field problems keyed by the form's field names; those of no form field as sentences."""
    names = set(known)
    fields: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in problems:
        name = PROBLEM_FIELD.get(problem.field, problem.field)
        if name in names:
            fields.setdefault(name, []).append(problem.reason)
        else:
            general.append(problem.sentence())
    return fields, general


def reword_moments(errors: dict[str, list[str]], bad: Iterable[str]) -> None:
    for name in bad:
        if name in errors:
            errors[name] = [BAD_MOMENT]


def choices(enum: Iterable[Any]) -> list[dict[str, str]]:
    return [badge(member) for member in enum]


async def tenant_zone(cmdb: CMDBService, actor: Actor, tenant: int | str | None) -> tuple[str, ZoneInfo]:
    """The customer's key and time zone (UTC when the customer is unknown to this actor)."""
    if tenant is None or tenant == "":
        return "", zone(None)
    try:
        customer = await cmdb.get_customer(actor, tenant)
    except (NotFound, InvalidInput):
        return "", zone(None)
    return customer.key, zone(customer.timezone)


def can_raise(actor: Actor) -> bool:
    return actor.has_any(*RAISE_ROLES)


def is_change_manager(actor: Actor) -> bool:
    return actor.is_provider_staff and actor.has_any(Role.CHANGE_MANAGER)


def may_edit(rfc: RFC, actor: Actor) -> bool:
    """Mirrors ChangeService.update's check, only to decide whether to offer the edit link."""
    if rfc.state not in (RFCState.DRAFT, RFCState.NEEDS_INFORMATION):
        return False
    if not actor.is_provider_staff and actor.tenant_id != rfc.tenant_id:
        return False
    return actor.person_id == rfc.originator_id or actor.has_any(Role.CHANGE_MANAGER, Role.ENGINEER)


def conflict_map(pairs: Sequence[tuple[RFC, RFC, Any]]) -> dict[int, list[str]]:
    """RFC id -> keys of the RFCs it conflicts with."""
    found: dict[int, list[str]] = {}
    for a, b, _ in pairs:
        found.setdefault(a.id, []).append(b.key)
        found.setdefault(b.id, []).append(a.key)
    return {rfc_id: sorted(set(keys)) for rfc_id, keys in found.items()}


def window_text(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A planned window in UTC, the end's date left out when it is the start's."""
    if start is None or end is None:
        return ""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M}\u2013{tail} UTC"


def rfc_row(rfc: RFC, keys: Mapping[int, str], now: dt.datetime, conflicts: Mapping[int, list[str]]) -> dict[str, Any]:
    return {
        "id": rfc.id,
        "key": rfc.key,
        "href": f"/changes/{rfc.key}",
        "title": rfc.title,
        "customer": keys.get(rfc.tenant_id, ""),
        "state": badge(rfc.state),
        "priority": badge(rfc.priority),
        "type": badge(rfc.type),
        "age": age(now, rfc.created_at),
        "created": when(rfc.created_at),
        "updated": when(rfc.updated_at),
        "planned": window_text(rfc.planned_start, rfc.planned_end),
        "conflicts": conflicts.get(rfc.id, []),
        "version": rfc.version,
    }


def impact_view(impact: RFCImpact | None, actor: Actor) -> dict[str, Any] | None:
    if impact is None:
        return None
    impact_class = ImpactClass(impact.impact_class) if impact.impact_class in ImpactClass.values() else None
    risk = impact.risk or {}
    customers = list(impact.customers)
    if not actor.is_provider_staff:
        customers = [c for c in customers if c == actor.tenant_id]  # a customer never learns who else
    return {
        "class": badge(impact_class) if impact_class else None,
        "committee_required": impact.committee_required,
        "score": risk.get("score"),
        "level": risk.get("level", ""),
        "factors": list(risk.get("factors", [])),
        "frozen": impact.frozen,
        "computed": when(impact.computed_at),
        "total": impact.total or len(impact.cis),
        "services": len(impact.services),
        "customers": len(customers),
        "adjustments": list(impact.adjustments),
    }


# --- the queue and the list -------------------------------------------------------------------


async def _keys(cmdb: CMDBService, rfcs: Iterable[RFC]) -> dict[int, str]:
    return await cmdb.customer_keys({rfc.tenant_id for rfc in rfcs})


def _one_click(rfc: RFC, allowed: Sequence[str]) -> list[dict[str, Any]]:
    """Actions that need no input from the person: one button each. Authorize gets its own
    small form (release requirements); the rest live on the RFC page."""
    return [
        {"action": a, "label": ACTION_LABELS.get(a, a), "danger": a in DANGER}
        for a in allowed
        if not TRANSITIONS[a].needs and not (a == "approve" and rfc.type is ChangeType.EMERGENCY)
    ]


@get("/changes", include_in_schema=False)
async def change_list(
    change: ChangeService,
    cmdb: CMDBService,
    patches: PatchService,
    actor: Actor,
    all_: Annotated[str | None, QueryParameter(name="all")] = None,
    state_: Annotated[str | None, QueryParameter(name="state")] = None,
    customer: str | None = None,
    q: str | None = None,
    limit: PageLimit = 50,
    offset: Offset = 0,
) -> Template:
    """A change manager's queue; everybody else (and the manager with ?all=1) the RFC list."""
    if is_change_manager(actor) and not all_:
        return await _queue(change, cmdb, actor, patches)
    state, customer, q = (v.strip() if v and v.strip() else None for v in (state_, customer, q))
    if not actor.is_provider_staff:
        customer = None  # a customer contact sees their own RFCs only: the service scopes it
    items, total = await change.list_rfcs(
        actor,
        customer=parse_ref(customer) if customer else None,
        states=[state] if state else None,
        q=q,
        limit=limit,
        offset=offset,
    )
    now = change.clock.now()
    pairs = await change.conflicts(actor, now, now + LOOKAHEAD)
    conflicts = conflict_map(pairs)
    keys = await _keys(cmdb, items)
    customers = (await cmdb.list_customers(actor, 500, 0))[0] if actor.is_provider_staff else []
    params = {"all": "1" if all_ else None, "state": state, "customer": customer, "q": q}
    title = "Changes" if actor.is_provider_staff else "My changes"
    return page(
        "changes/list.html",
        actor,
        section="changes",
        title=title,
        heading=title,
        rows=[rfc_row(rfc, keys, now, conflicts) for rfc in items],
        filters=params,
        states=choices(RFCState),
        customers=[{"key": c.key, "name": c.name} for c in customers],
        pages=pagination("/changes", params, total, limit, offset),
        queue_link=is_change_manager(actor),
        can_raise=can_raise(actor),
    )


async def _queue(change: ChangeService, cmdb: CMDBService, actor: Actor, patches: PatchService) -> Template:
    waiting = await change.queue(actor, limit=QUEUE_LIMIT)
    now = change.clock.now()
    conflicts = conflict_map(await change.conflicts(actor, now, now + LOOKAHEAD))
    coming, _ = await change.list_rfcs(actor, states=["scheduled", "implementing"], limit=100)
    coming = sorted(
        (
            r
            for r in coming
            if r.planned_start and r.planned_end and r.planned_start < now + LOOKAHEAD and r.planned_end > now
        ),
        key=lambda r: (r.planned_start, r.key),
    )
    keys = await _keys(cmdb, [rfc for rfc, _ in waiting] + coming)
    urgencies = await patches.urgency_for_rfcs([rfc.id for rfc, _ in waiting if rfc.urgency is not None])
    rows = []
    for rfc, allowed in waiting:
        impact = await change.impact(actor, rfc.id)
        urgency = urgencies.get(rfc.id)
        rows.append(
            {
                **rfc_row(rfc, keys, now, conflicts),
                "patch": {
                    "state": badge(urgency.state),
                    "state_value": urgency.state.value,
                    "due_utc": urgency.due.strftime("%Y-%m-%d %H:%M UTC"),
                    "due_relative": relative(now, urgency.due),
                }
                if urgency
                else None,
                "impact": impact_view(impact, actor),
                "one_click": _one_click(rfc, allowed),
                "authorize": "authorize" in allowed,
                "more": [ACTION_LABELS.get(a, a) for a in allowed if TRANSITIONS[a].needs and a != "authorize"],
            }
        )
    return page(
        "changes/queue.html",
        actor,
        section="changes",
        title="Change queue",
        rows=rows,
        coming=[rfc_row(rfc, keys, now, conflicts) for rfc in coming],
        conflicted=sum(1 for row in rows if row["conflicts"]),
        lookahead_days=LOOKAHEAD.days,
    )


# --- the RFC form -------------------------------------------------------------------------------


def form_values(source: Mapping[str, Any]) -> dict[str, str]:
    values = {name: str(source.get(name) or "") for name in FORM_FIELDS}
    # What the service assumes when they are left out, so a re-shown form never preselects
    # another type or priority than the one that would be saved.
    values["type"] = values["type"] or ChangeType.NORMAL.value
    values["priority"] = values["priority"] or Priority.MEDIUM.value
    return values


def form_data(values: Mapping[str, str], tz: ZoneInfo, *, creating: bool) -> tuple[dict[str, Any], list[str]]:
    """The form as the service's RFC fields, and the date fields that did not parse."""
    data: dict[str, Any] = {}
    bad: list[str] = []
    if creating:
        data["customer"] = parse_ref(values["customer"]) if values["customer"].strip() else None
    for name in TEXT_FIELDS:
        data[name] = values[name]
    for name in ("type", "priority", "origin"):
        if values[name].strip():
            data[name] = values[name].strip()
    for name in OPTIONAL_REFS:
        data[name] = values[name].strip() or None
    if data.get("type") != ChangeType.STANDARD.value:
        data["template"] = None
    for name in LIST_FIELDS:
        data[name] = split_list(values[name])
    for name in MOMENT_FIELDS:
        value, ok = parse_local(values[name], tz)
        data[name] = value
        if not ok:
            bad.append(name)
    for name in AMOUNT_FIELDS:
        data[name] = values[name].strip() or None
    data["urgency"] = values["urgency"].strip() or None
    return data, bad


def rfc_form_values(rfc: RFC, names: Mapping[int, str], tz: ZoneInfo, customer: str) -> dict[str, str]:
    """A stored RFC as form values, for the edit form."""

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    return {
        "customer": customer,
        "title": rfc.title,
        "type": rfc.type.value,
        "template": text(rfc.template),
        "priority": rfc.priority.value,
        "origin": rfc.origin.value,
        "origin_ref": text(rfc.origin_ref),
        "cis": ", ".join(names.get(ci, str(ci)) for ci in rfc.ci_ids),
        "need": rfc.need,
        "desired_result": rfc.desired_result,
        "plan": rfc.plan,
        "backout_plan": rfc.backout_plan,
        "deadline": local_value(rfc.deadline, tz),
        "cost": text(rfc.cost),
        "budget": text(rfc.budget),
        "customer_ref": text(rfc.customer_ref),
        "refers_to": text(rfc.refers_to),
        "affected_people": "\n".join(rfc.affected_people),
        "urgency": rfc.urgency.value if rfc.urgency else "",
        "vulnerability": rfc.vulnerability,
        "patch_components": "\n".join(rfc.patch_components),
        "patch_description": rfc.patch_description,
        "available_at": local_value(rfc.available_at, tz),
        "proposed_deployment": local_value(rfc.proposed_deployment, tz),
        "testing_done": rfc.testing_done,
    }


async def _render_form(
    cmdb: CMDBService,
    actor: Actor,
    values: Mapping[str, str],
    *,
    rfc: RFC | None = None,
    errors: Mapping[str, list[str]] | None = None,
    general: Sequence[str] = (),
    message: str | None = None,
    status: int = 200,
) -> Template:
    customers = (await cmdb.list_customers(actor, 500, 0))[0] if actor.is_provider_staff else []
    own_key, own_zone = await tenant_zone(cmdb, actor, rfc.tenant_id if rfc else values.get("customer") or None)
    if rfc is None and not actor.is_provider_staff:
        own_key, own_zone = await tenant_zone(cmdb, actor, actor.tenant_id)
    return page(
        "changes/form.html",
        actor,
        section="new-change" if rfc is None else "changes",
        title=f"Edit {rfc.key}" if rfc else "Raise a change",
        status=status,
        rfc={"key": rfc.key, "version": rfc.version, "state": badge(rfc.state)} if rfc else None,
        values=values,
        errors=errors or {},
        general=list(general),
        message=message,
        labels=FIELD_LABELS,
        choose_customer=rfc is None and actor.is_provider_staff,
        customers=[{"key": c.key, "name": c.name, "timezone": c.timezone} for c in customers],
        customer_key=own_key,
        timezone=own_zone.key,
        types=choices(ChangeType),
        priorities=choices(Priority),
        origins=choices(Origin) if actor.is_provider_staff else [],
        urgencies=choices(Urgency),
        templates=[{"key": t.key, "title": t.title} for t in CATALOGUE.values()],
    )


@get("/changes/new", include_in_schema=False)
async def rfc_new(cmdb: CMDBService, actor: Actor, customer: str | None = None) -> Template:
    if not can_raise(actor):
        raise Forbidden("Engineers, change managers and customer contacts raise RFCs.")
    values = form_values({"customer": customer or ""})
    return await _render_form(cmdb, actor, values)


@post("/changes/new", include_in_schema=False)
async def rfc_create(
    request: Request[Any, Any, Any], change: ChangeService, cmdb: CMDBService, actor: Actor
) -> Response[Any]:
    form = await request.form()
    values = form_values(form)
    if not actor.is_provider_staff:
        values["customer"], _ = await tenant_zone(cmdb, actor, actor.tenant_id)
    _, tz = await tenant_zone(
        cmdb, actor, parse_ref(values["customer"].strip()) if values["customer"].strip() else None
    )
    data, bad = form_data(values, tz, creating=True)
    try:
        rfc = await change.create(actor, data)
    except InvalidInput as error:
        errors, general = problems_by_field(error.problems, FORM_FIELDS)
        reword_moments(errors, bad)
        return await _render_form(
            cmdb,
            actor,
            values,
            errors=errors,
            general=general,
            status=422,
            message="Nothing was saved: correct the fields marked below.",
        )
    if form.get("intent") != "submit":
        return Redirect(path=f"/changes/{rfc.key}?done=created", status_code=303)
    return await _submit_after_save(change, cmdb, actor, rfc, values)


async def _submit_after_save(
    change: ChangeService, cmdb: CMDBService, actor: Actor, rfc: RFC, values: Mapping[str, str]
) -> Response[Any]:
    """Save and submit: the draft is saved; a submission that lacks what the workflow needs is
    refused with the list of what is missing, shown on the draft's edit form."""
    try:
        await change.act(actor, rfc.id, "submit", {})
    except InvalidInput as error:
        errors, general = problems_by_field(error.problems, FORM_FIELDS)
        return await _render_form(
            cmdb,
            actor,
            values,
            rfc=await _reload(change, actor, rfc),
            errors=errors,
            general=general,
            status=422,
            message=f"Saved as draft {rfc.key}, but not submitted: fill in the fields marked below, then submit.",
        )
    except (Conflict, Forbidden) as error:
        return await _rfc_page(change, cmdb, actor, rfc.key, status=_status(error), message=error.detail)
    return Redirect(path=f"/changes/{rfc.key}?done=submit", status_code=303)


async def _reload(change: ChangeService, actor: Actor, rfc: RFC) -> RFC:
    return (await change.get(actor, rfc.id)).rfc


async def _ci_names(cmdb: CMDBService, actor: Actor, ids: Iterable[int]) -> dict[int, str]:
    names: dict[int, str] = {}
    for ci_id in ids:
        try:
            names[ci_id] = (await cmdb.get_ci(actor, ci_id)).name
        except NotFound:
            names[ci_id] = f"provider CI #{ci_id}"
    return names


@get("/changes/{key:str}/edit", include_in_schema=False)
async def rfc_edit(change: ChangeService, cmdb: CMDBService, actor: Actor, key: str) -> Template:
    view = await change.get(actor, parse_ref(key))
    rfc = view.rfc
    if not may_edit(rfc, actor):
        if rfc.state not in (RFCState.DRAFT, RFCState.NEEDS_INFORMATION):
            raise Conflict(
                f"{rfc.key} is {rfc.state.value}: only drafts and RFCs sent back for information can be edited.",
                state=rfc.state.value,
            )
        raise Forbidden("Only the originator, an engineer or a change manager edits an RFC.")
    customer, tz = await tenant_zone(cmdb, actor, rfc.tenant_id)
    names = await _ci_names(cmdb, actor, rfc.ci_ids)
    return await _render_form(cmdb, actor, rfc_form_values(rfc, names, tz, customer), rfc=rfc)


@post("/changes/{key:str}/edit", include_in_schema=False)
async def rfc_update(
    request: Request[Any, Any, Any], change: ChangeService, cmdb: CMDBService, actor: Actor, key: str
) -> Response[Any]:
    view = await change.get(actor, parse_ref(key))
    rfc = view.rfc
    form = await request.form()
    customer, tz = await tenant_zone(cmdb, actor, rfc.tenant_id)
    values = {**form_values(form), "customer": customer}
    data, bad = form_data(values, tz, creating=False)
    version = str(form.get("version") or "")
    try:
        rfc = await change.update(actor, rfc.id, data, int(version) if version.isdigit() else None)
    except InvalidInput as error:
        errors, general = problems_by_field(error.problems, FORM_FIELDS)
        reword_moments(errors, bad)
        return await _render_form(
            cmdb,
            actor,
            values,
            rfc=rfc,
            errors=errors,
            general=general,
            status=422,
            message="Nothing was saved: correct the fields marked below.",
        )
    except (Conflict, Forbidden) as error:
        return await _render_form(cmdb, actor, values, rfc=rfc, status=_status(error), message=error.detail)
    if form.get("intent") == "submit":
        return await _submit_after_save(change, cmdb, actor, rfc, values)
    return Redirect(path=f"/changes/{rfc.key}?done=updated", status_code=303)


# --- the RFC page -----------------------------------------------------------------------------


def _status(error: Exception) -> int:
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, Conflict):
        return 409
    return 403


def _input(
    name: str,
    row_needs: Sequence[str],
    rfc: RFC,
    tz: ZoneInfo,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> dict[str, Any]:
    kind = {
        "comment": "textarea",
        "emergency_reason": "textarea",
        "release_requirements": "textarea",
        "reason": "text",
        "priority": "select",
        "vote": "radio",
        "planned_start": "datetime",
        "planned_end": "datetime",
    }.get(name, "text")
    default = ""
    if name == "priority":
        default = rfc.priority.value
    elif name == "planned_start":
        default = local_value(rfc.planned_start, tz)
    elif name == "planned_end":
        default = local_value(rfc.planned_end, tz)
    options: list[dict[str, str]] = []
    if name == "priority":
        options = choices(Priority)
    elif name == "vote":
        options = choices(VoteChoice)
    hints = {
        "release_requirements": "One per line or comma separated, e.g. test evidence. Leave empty for none.",
        "emergency_reason": "Needed when this emergency change would otherwise need the review committee.",
    }
    return {
        "name": name,
        "label": INPUT_LABELS.get(name, name),
        "kind": kind,
        "required": name in row_needs,
        "value": values.get(name, default),
        "options": options,
        "errors": errors.get(name, []),
        "hint": hints.get(name, ""),
    }


def action_forms(
    rfc: RFC,
    allowed: Sequence[str],
    tz: ZoneInfo,
    failed: str | None,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The actions the viewer may take: (buttons needing no input, forms with inputs)."""
    buttons, forms = [], []
    for action in allowed:
        row = TRANSITIONS[action]
        names = list(dict.fromkeys([*row.needs, *row.accepts]))
        if action == "approve" and rfc.type is not ChangeType.EMERGENCY:
            names = [n for n in names if n != "emergency_reason"]
        mine = action == failed
        entry = {
            "action": action,
            "label": ACTION_LABELS.get(action, action),
            "danger": action in DANGER,
            "failed": mine,
        }
        if not names:
            buttons.append(entry)
            continue
        if "comment" not in names:
            names.append("comment")
        entry["inputs"] = [_input(n, row.needs, rfc, tz, values if mine else {}, errors if mine else {}) for n in names]
        entry["timezone"] = tz.key if any(n.startswith("planned_") for n in names) else ""
        forms.append(entry)
    return buttons, forms


def timeline_view(entry: HistoryEntry, actor: Actor) -> dict[str, Any]:
    data = dict(entry.after or {})
    details: list[str] = []
    before, after = data.get("from"), data.get("to")
    if before and after and before != after:
        details.append(f"{_state_label(before)} \u2192 {_state_label(after)}")
    if entry.action == "priority_changed":
        details.append(f"priority {data.get('before')} \u2192 {data.get('after')}")
    if data.get("release_requirements") is not None and entry.action == "authorized":
        requirements = data["release_requirements"]
        details.append("release requirements: " + (", ".join(map(str, requirements)) if requirements else "none"))
    if entry.action == "voted" and data.get("vote"):
        details.append(f"vote: {data['vote']}")
    if data.get("planned_start"):
        details.append(f"window {when(_iso(data['planned_start']))} \u2013 {when(_iso(data.get('planned_end')))}")
    if data.get("emergency_reason"):
        details.append(f"emergency (ECAB): {data['emergency_reason']}")
    for violation in data.get("schedule_violations") or []:
        details.append(f"outside the rules: {violation}")
    if entry.action == "updated":
        changed = sorted((data.get("after") or {}).keys())
        if changed:
            details.append("changed " + ", ".join(FIELD_LABELS.get(PROBLEM_FIELD.get(n, n), n) for n in changed))
    if entry.action == "impact_adjusted":
        verb = "added" if data.get("action") == "add" else "removed"
        name = data.get("ci_name") if actor.is_provider_staff else None
        details.append(f"{verb} CI {name or '#' + str(data.get('ci'))}")
    return {
        "what": entry.action.replace("_", " ").capitalize(),
        "who": entry.actor_name,
        "at": when(entry.at),
        "comment": entry.comment,
        "details": details,
    }


def _state_label(value: Any) -> str:
    return RFCState(value).label if value in RFCState.values() else str(value)


def _iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


async def impact_picture(
    cmdb: CMDBService, actor: Actor, rfc: RFC, impact: RFCImpact | None
) -> tuple[str, int, int, list[dict[str, Any]]]:
    """The affected CIs and what they impact, drawn from their neighbourhoods (bounded), and
    the impacted CIs listed with names. Returns (svg, drawn, omitted, listed rows)."""
    impacted = set(impact.cis) if impact else set()
    affected = list(rfc.ci_ids)
    rows: dict[int, ImpactRow] = {}
    raw_edges: set[tuple[int, int, str]] = set()
    for ci_id in affected[:PICTURE_ROOTS]:
        try:
            _, found, near = await cmdb.neighbourhood(actor, ci_id, depth=PICTURE_DEPTH, max_nodes=400)
        except (NotFound, KeyError):
            continue
        rows.update(found)
        raw_edges.update(near)
    listed: list[dict[str, Any]] = []
    for ci_id in list(impact.cis if impact else ())[:IMPACT_LISTED]:
        row = rows.get(ci_id)
        if row is None:
            try:
                ci = await cmdb.get_ci(actor, ci_id)
                row = ImpactRow(ci.id, ci.ci_class, 0, 0, ci)
            except NotFound:
                row = ImpactRow(ci_id, None, 0, 0, None)
        listed.append(
            {
                "label": row_label(row),
                "href": f"/cis/{ci_id}" if row.ci else None,
                "class": row.ci_class.label if row.ci_class else "",
                "criticality": badge(row.ci.criticality) if row.ci else None,
                "affected": ci_id in rfc.ci_ids,
            }
        )
    if not rows:
        return "", 0, 0, listed
    root = next((ci for ci in affected if ci in rows), next(iter(rows)))
    roots = {ci for ci in affected if ci in rows}
    # Keep the affected CIs, then the impacted ones, then the nearest neighbours: at most 60 boxes.
    hops = graphsvg.distances(root, rows, [graphsvg.Edge(a, b, "") for a, b, _ in raw_edges])
    far = len(rows) + 1
    ranked = sorted(rows, key=lambda i: (0 if i in roots else 1 if i in impacted else 2, hops.get(i, far), i))
    kept = set(ranked[:PICTURE_MAX_NODES])
    omitted = len(rows) - len(kept)
    nodes = [
        replace(node, root=node.id in roots, impacted=node.id in impacted and node.id not in roots)
        for node in graph_nodes({i: rows[i] for i in kept}, root, impacted)
    ]
    edges = [
        graphsvg.Edge(a, b, RelationshipType(kind).label if kind in RelationshipType.values() else kind)
        for a, b, kind in sorted(raw_edges)
        if a in kept and b in kept
    ]
    drawing = graphsvg.render(
        nodes, edges, root, max_nodes=PICTURE_MAX_NODES, title=f"CIs affected and impacted by {rfc.key}"
    )
    return drawing.svg, drawing.drawn, omitted + drawing.omitted, listed


async def _people(cmdb: CMDBService, actor: Actor, ids: Iterable[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for person_id in {i for i in ids if i is not None}:
        try:
            names[person_id] = (await cmdb.get_person(actor, person_id)).name
        except NotFound:
            names[person_id] = "provider staff"
    return names


async def patch_urgency(
    patches: PatchService | None, rfc: RFC, tz: ZoneInfo, now: dt.datetime
) -> dict[str, Any] | None:
    """A patch RFC's deadline and where it stands, times in the customer's zone; None for an
    RFC without urgency level (or a page rendered without the patch service)."""
    if patches is None or rfc.urgency is None:
        return None
    view = (await patches.urgency_for_rfcs([rfc.id])).get(rfc.id)
    if view is None:
        return None
    return {
        "level": badge(view.level),
        "deadline": view.deadline.describe(),
        "clock_start": local_text(view.clock_start, tz),
        "due": local_text(view.due, tz),
        "due_iso": view.due.isoformat(),
        "due_relative": relative(now, view.due),
        "state": badge(view.state),
        "state_value": view.state.value,
        "share": f"{min(view.share_used, 9.99):.0%}",
        "met": local_text(view.met_at, tz) if view.met_at else "",
        "met_on_time": view.met_on_time,
        "open": view.state is not PatchState.MET,
    }


async def _rfc_page(
    change: ChangeService,
    cmdb: CMDBService,
    actor: Actor,
    key: str,
    *,
    patches: PatchService | None = None,
    status: int = 200,
    message: str | None = None,
    notice: str | None = None,
    failed: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, list[str]] | None = None,
) -> Template:
    view = await change.get(actor, parse_ref(key))
    rfc = view.rfc
    customer, tz = await tenant_zone(cmdb, actor, rfc.tenant_id)
    impact = view.impact or await change.impact(actor, rfc.id)
    timeline = await change.timeline(actor, rfc.id)
    votes = await change.votes(actor, rfc.id) if actor.is_provider_staff else []
    people = await _people(cmdb, actor, [rfc.originator_id, rfc.customer_approved_by, *(v["member"] for v in votes)])
    ci_names = await _ci_names(cmdb, actor, rfc.ci_ids)
    now = change.clock.now()
    pairs = await change.conflicts(actor, now - LOOKAHEAD, now + LOOKAHEAD) if rfc.planned_start else []
    conflicts = conflict_map(pairs).get(rfc.id, [])
    svg, drawn, omitted, impacted = await impact_picture(cmdb, actor, rfc, impact)
    buttons, forms = action_forms(rfc, view.allowed, tz, failed, values or {}, errors or {})
    urgency = await patch_urgency(patches, rfc, tz, now)
    tally: dict[str, int] = {}
    for vote in votes:
        tally[str(vote["vote"])] = tally.get(str(vote["vote"]), 0) + 1
    return page(
        "changes/detail.html",
        actor,
        section="changes",
        title=f"{rfc.key} {rfc.title}",
        status=status,
        message=message,
        notice=notice,
        rfc={
            "key": rfc.key,
            "id": rfc.id,
            "title": rfc.title,
            "version": rfc.version,
            "customer": customer,
            "timezone": tz.key,
            "state": badge(rfc.state),
            "type": badge(rfc.type),
            "priority": badge(rfc.priority),
            "origin": badge(rfc.origin),
            "origin_ref": rfc.origin_ref,
            "originator": people.get(rfc.originator_id or 0, "system") if rfc.originator_id else "system",
            "created": when(rfc.created_at),
            "updated": when(rfc.updated_at),
            "need": rfc.need,
            "desired_result": rfc.desired_result,
            "plan": rfc.plan,
            "backout_plan": rfc.backout_plan,
            "deadline": local_text(rfc.deadline, tz),
            "cost": show(rfc.cost),
            "budget": show(rfc.budget),
            "customer_ref": rfc.customer_ref,
            "refers_to": rfc.refers_to,
            "template": CATALOGUE[rfc.template].title if rfc.template in CATALOGUE else rfc.template,
            "affected_people": list(rfc.affected_people),
            "cis": [
                {
                    "id": ci,
                    "name": ci_names.get(ci, f"#{ci}"),
                    "redacted": ci_names.get(ci, "").startswith("provider CI"),
                }
                for ci in rfc.ci_ids
            ],
            "planned_start": local_text(rfc.planned_start, tz),
            "planned_end": local_text(rfc.planned_end, tz),
            "release_requirements": list(rfc.release_requirements),
            "emergency_reason": rfc.emergency_reason,
            "pir": rfc.post_implementation_review_required,
            "customer_approval_required": rfc.customer_approval_required,
            "customer_approved_by": people.get(rfc.customer_approved_by) if rfc.customer_approved_by else None,
            "is_patch": rfc.is_patch,
            "urgency": badge(rfc.urgency) if rfc.urgency else None,
            "patch_components": list(rfc.patch_components),
            "vulnerability": rfc.vulnerability,
            "patch_description": rfc.patch_description,
            "available_at": local_text(rfc.available_at, tz),
            "proposed_deployment": local_text(rfc.proposed_deployment, tz),
            "testing_done": rfc.testing_done,
            "in_review": rfc.state is RFCState.IN_REVIEW,
        },
        patch_urgency=urgency,
        conflicts=conflicts,
        impact=impact_view(impact, actor),
        svg=Markup(svg) if svg else None,  # graphsvg escapes every text it draws
        drawn=drawn,
        omitted=omitted,
        impacted=impacted,
        timeline=[timeline_view(e, actor) for e in timeline],
        votes=[
            {
                "member": people.get(v["member"], "committee member"),
                "vote": badge(VoteChoice(v["vote"])),
                "comment": v["comment"],
                "at": when(v["at"]),
            }
            for v in votes
        ],
        tally=tally,
        show_votes=actor.is_provider_staff and (bool(votes) or rfc.state is RFCState.IN_REVIEW),
        buttons=buttons,
        forms=forms,
        editable=may_edit(rfc, actor),
    )


@get("/changes/{key:str}", include_in_schema=False)
async def rfc_detail(
    change: ChangeService,
    cmdb: CMDBService,
    patches: PatchService,
    actor: Actor,
    key: str,
    done: str | None = None,
) -> Template:
    notice = DONE.get(done or "")
    return await _rfc_page(change, cmdb, actor, key, patches=patches, notice=notice)


def action_params(
    action: str, form: Mapping[str, Any], tz: ZoneInfo
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The form's inputs for this action (only those its row takes), the raw values to show
    again, and the date fields that did not parse."""
    row = TRANSITIONS[action]
    params: dict[str, Any] = {}
    raw: dict[str, str] = {}
    bad: list[str] = []
    for name in dict.fromkeys(("comment", *row.needs, *row.accepts)):
        value = str(form.get(name) or "")
        raw[name] = value
        if name == "release_requirements":
            params[name] = split_list(value)
        elif name in ("planned_start", "planned_end"):
            moment, ok = parse_local(value, tz)
            if moment is not None:
                params[name] = moment
            if not ok:
                bad.append(name)
        elif value.strip():
            params[name] = value
    return params, raw, bad


@post("/changes/{key:str}/actions/{action:str}", include_in_schema=False)
async def rfc_action(
    request: Request[Any, Any, Any],
    change: ChangeService,
    cmdb: CMDBService,
    patches: PatchService,
    actor: Actor,
    key: str,
    action: str,
) -> Response[Any]:
    """One workflow action from a form: on success back to the RFC page (303) with a notice; on
    refusal the RFC page again with the service's message, status 409, 422 or 403."""
    form = await request.form()
    view = await change.get(actor, parse_ref(key))  # 404 for what the viewer may not see
    rfc = view.rfc
    if action not in TRANSITIONS:
        return await _rfc_page(
            change,
            cmdb,
            actor,
            rfc.key,
            patches=patches,
            status=422,
            message=f"There is no action {action!r} on an RFC.",
        )
    _, tz = await tenant_zone(cmdb, actor, rfc.tenant_id)
    params, raw, bad = action_params(action, form, tz)
    version = str(form.get("version") or "")
    try:
        await change.act(actor, rfc.id, action, params, expected_version=int(version) if version.isdigit() else None)
    except (InvalidInput, Conflict, Forbidden) as error:
        errors: dict[str, list[str]] = {}
        message = error.detail
        if isinstance(error, InvalidInput):
            errors, general = problems_by_field(error.problems, raw)
            reword_moments(errors, bad)
            message = f"{ACTION_LABELS[action]} refused, nothing changed: " + "; ".join(
                [*(f"{INPUT_LABELS.get(n, n)} {r[0]}" for n, r in errors.items()), *general]
            )
        elif isinstance(error, Conflict | Forbidden):
            message = f"{ACTION_LABELS[action]} refused, nothing changed. {error.detail}"
        return await _rfc_page(
            change,
            cmdb,
            actor,
            rfc.key,
            patches=patches,
            status=_status(error),
            message=message,
            failed=action,
            values=raw,
            errors=errors,
        )
    return Redirect(path=f"/changes/{rfc.key}?done={action}", status_code=303)


# --- the committee member's votes -------------------------------------------------------------


@get("/changes/votes", include_in_schema=False)
async def pending_votes(change: ChangeService, cmdb: CMDBService, actor: Actor) -> Template:
    if not (actor.is_provider_staff and actor.has_any(Role.COMMITTEE_MEMBER)):
        raise Forbidden("Only review committee members vote on RFCs.")
    in_review, _ = await change.list_rfcs(actor, states=[RFCState.IN_REVIEW.value], limit=500)
    now = change.clock.now()
    keys = await _keys(cmdb, in_review)
    pending, voted = [], []
    for rfc in sorted(in_review, key=lambda r: (PRIORITY_ORDER[r.priority], r.created_at)):
        if "vote" not in allowed_actions(rfc, actor):
            continue  # their own RFC: the originator never votes on it
        votes = await change.votes(actor, rfc.id)
        mine = next((v for v in votes if v["member"] == actor.person_id), None)
        row = {**rfc_row(rfc, keys, now, {}), "votes": len(votes)}
        if mine is None:
            pending.append(row)
        else:
            voted.append({**row, "mine": badge(VoteChoice(mine["vote"]))})
    return page("changes/votes.html", actor, section="votes", title="Votes", pending=pending, voted=voted)


# --- the calendar -----------------------------------------------------------------------------


def parse_month(raw: str | None, today: dt.date) -> dt.date:
    if not raw or not raw.strip():
        return today.replace(day=1)
    match = re.fullmatch(r"(\d{4})-(\d{2})", raw.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1 <= int(match.group(1)) <= 9998:
        raise InvalidInput.field("month", "must be a month as YYYY-MM, e.g. 2026-11")
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


@get("/changes/calendar", guards=[provider_staff], include_in_schema=False)
async def change_calendar(change: ChangeService, cmdb: CMDBService, actor: Actor, month: str | None = None) -> Template:
    now = change.clock.now()
    first = parse_month(month, now.astimezone(dt.UTC).date())
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    start = dt.datetime.combine(weeks[0][0], dt.time(), dt.UTC)
    end = dt.datetime.combine(weeks[-1][-1] + dt.timedelta(days=1), dt.time(), dt.UTC)
    found: list[RFC] = []
    offset = 0
    while offset < CALENDAR_SCAN:
        batch, total = await change.list_rfcs(actor, states=list(CALENDAR_STATES), limit=500, offset=offset)
        found += [
            r for r in batch if r.planned_start and r.planned_end and r.planned_start < end and r.planned_end > start
        ]
        offset += len(batch)
        if not batch or offset >= total:
            break
    conflicts = conflict_map(await change.conflicts(actor, start, end))
    keys = await _keys(cmdb, found)
    by_day: dict[dt.date, list[dict[str, Any]]] = {}
    for rfc in sorted(found, key=lambda r: (r.planned_start, r.key)):
        assert rfc.planned_start and rfc.planned_end
        day = max(rfc.planned_start.astimezone(dt.UTC).date(), weeks[0][0])
        last = min((rfc.planned_end - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date(), weeks[-1][-1])
        entry = {
            "key": rfc.key,
            "href": f"/changes/{rfc.key}",
            "title": rfc.title,
            "customer": keys.get(rfc.tenant_id, ""),
            "state": badge(rfc.state),
            "time": f"{rfc.planned_start.astimezone(dt.UTC):%H:%M}\u2013{rfc.planned_end.astimezone(dt.UTC):%H:%M}",
            "conflicts": conflicts.get(rfc.id, []),
        }
        while day <= last:
            by_day.setdefault(day, []).append(entry)
            day += dt.timedelta(days=1)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    today = now.astimezone(dt.UTC).date()
    return page(
        "changes/calendar.html",
        actor,
        section="calendar",
        title=f"Change calendar {first:%B %Y}",
        month=f"{first:%B %Y}",
        month_value=f"{first:%Y-%m}",
        previous=f"/changes/calendar?month={previous:%Y-%m}",
        following=f"/changes/calendar?month={following:%Y-%m}",
        this_month=f"/changes/calendar?month={today:%Y-%m}",
        weekdays=[calendar.day_abbr[(i) % 7] for i in range(7)],
        weeks=[
            [
                {
                    "date": day.isoformat(),
                    "day": day.day,
                    "outside": day.month != first.month,
                    "today": day == today,
                    "items": by_day.get(day, []),
                }
                for day in week
            ]
            for week in weeks
        ],
        count=len(found),
        conflicted=sum(1 for r in found if r.id in conflicts),
    )


CHANGE_PAGE_HANDLERS: list[Any] = [
    change_list,
    rfc_new,
    rfc_create,
    pending_votes,
    change_calendar,
    rfc_detail,
    rfc_edit,
    rfc_update,
    rfc_action,
]

__all__ = ["CHANGE_PAGE_HANDLERS"]
