"""Problem pages: the list, raising a problem, a problem's page with its actions, and trends.

Thin like the API: parse the form, call ProblemService, shape what the template shows. A
refused action renders the problem page again with the service's message (409, 422 or 403).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Response, Template

from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, HistoryEntry, Role
from cmdb.services import CMDBService
from problem.models import Problem, ProblemStatus
from problem.services import ProblemService
from problem.workflow import TRANSITIONS, may_act
from web.controllers.pages import NAV, NavEntry, badge, page, pagination, when
from web.deps import parse_ref

PageLimit = Annotated[int, QueryParameter(ge=1, le=100)]
Offset = Annotated[int, QueryParameter(ge=0)]

ACTION_LABELS = {
    "investigate": "Start investigating",
    "update": "Update the record",
    "link-incident": "Link an incident",
    "known-error": "Record a known error",
    "raise-rfc": "Raise an RFC to remove the cause",
    "resolve": "Resolve",
    "close": "Close",
    "reopen": "Reopen",
}
INPUT_LABELS = {
    "comment": "Comment",
    "title": "Title",
    "description": "Description",
    "root_cause": "Root cause",
    "workaround": "Workaround",
    "incident": "Incident key or id",
    "resolution": "Resolution (why no change is needed, or how the cause was removed)",
}
# The inputs each action's form shows, in order.
ACTION_INPUTS: dict[str, tuple[str, ...]] = {
    "investigate": ("comment",),
    "update": ("title", "description", "root_cause", "workaround", "comment"),
    "link-incident": ("incident", "comment"),
    "known-error": ("root_cause", "workaround", "comment"),
    "raise-rfc": ("comment",),
    "resolve": ("resolution", "comment"),
    "close": ("comment",),
    "reopen": ("comment",),
}
TEXTAREAS = frozenset({"description", "root_cause", "workaround", "resolution", "comment"})
DONE = {
    "created": "Problem raised.",
    **{action: f"{label}: done." for action, label in ACTION_LABELS.items()},
}
FORM_FIELDS = ("customer", "title", "description", "incidents", "cis", "root_cause", "workaround")


def _reader(actor: Actor) -> bool:
    return actor.is_provider_staff or actor.has_any(Role.CUSTOMER)


NAV.append(NavEntry("problems", "Problems", "/problems", _reader))


def _status(error: Exception) -> int:
    if isinstance(error, InvalidInput):
        return 422
    if isinstance(error, Conflict):
        return 409
    return 403


def split_refs(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n;]", text or "") if part.strip()]


def by_field(problems: Sequence[FieldProblem], known: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in problems:
        if problem.field in known:
            errors.setdefault(problem.field, []).append(problem.reason)
        else:
            general.append(problem.sentence())
    return errors, general


def _row(problem: Problem, keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "key": problem.key,
        "href": f"/problems/{problem.key}",
        "customer": keys.get(problem.tenant_id, ""),
        "title": problem.title,
        "status": badge(problem.status),
        "origin": badge(problem.origin),
        "known_error": problem.known_error,
        "incidents": len(problem.incident_ids),
        "rfc": problem.rfc_key,
        "updated": when(problem.updated_at),
    }


# --- list -------------------------------------------------------------------------------------


@get("/problems", include_in_schema=False)
async def problem_list(
    problems: ProblemService,
    cmdb: CMDBService,
    actor: Actor,
    customer: str | None = None,
    status: str | None = None,
    q: str | None = None,
    limit: PageLimit = 50,
    offset: Offset = 0,
) -> Template:
    if not _reader(actor):
        raise Forbidden("Problems are for provider staff and customer contacts.")
    statuses = [status] if status else None
    items, total = await problems.list_problems(
        actor,
        customer=parse_ref(customer) if customer and actor.is_provider_staff else None,
        statuses=statuses,
        q=q or None,
        limit=limit,
        offset=offset,
    )
    keys = await cmdb.customer_keys({p.tenant_id for p in items})
    customers = []
    if actor.is_provider_staff:
        found, _ = await cmdb.list_customers(actor, 500, 0)
        customers = [{"key": c.key, "name": c.name} for c in found]
    filters = {"customer": customer or "", "status": status or "", "q": q or ""}
    return page(
        "problems/list.html",
        actor,
        section="problems",
        title="Problems",
        rows=[_row(p, keys) for p in items],
        customers=customers,
        statuses=[badge(s) for s in ProblemStatus],
        filters=filters,
        pages=pagination("/problems", filters, total, limit, offset),
        can_raise=may_act(actor),
    )


# --- raising ----------------------------------------------------------------------------------


async def _form(
    cmdb: CMDBService,
    actor: Actor,
    values: Mapping[str, str],
    *,
    errors: Mapping[str, list[str]] | None = None,
    general: Sequence[str] = (),
    status: int = 200,
    message: str | None = None,
) -> Template:
    found, _ = await cmdb.list_customers(actor, 500, 0)
    return page(
        "problems/form.html",
        actor,
        section="problems",
        title="Raise a problem",
        status=status,
        message=message,
        values=values,
        errors=errors or {},
        general=list(general),
        customers=[{"key": c.key, "name": c.name} for c in found],
    )


@get("/problems/new", include_in_schema=False)
async def problem_new(
    cmdb: CMDBService, actor: Actor, customer: str | None = None, incident: str | None = None
) -> Template:
    if not may_act(actor):
        raise Forbidden("Engineers and service managers of the provider raise problems.")
    values = {name: "" for name in FORM_FIELDS}
    values.update(customer=customer or "", incidents=incident or "")
    return await _form(cmdb, actor, values)


@post("/problems/new", include_in_schema=False)
async def problem_create(
    request: Request[Any, Any, Any], problems: ProblemService, cmdb: CMDBService, actor: Actor
) -> Response[Any]:
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in FORM_FIELDS}
    data: dict[str, Any] = {
        "customer": values["customer"].strip() or None,
        "title": values["title"],
        "description": values["description"],
        "root_cause": values["root_cause"],
        "workaround": values["workaround"],
        "incidents": split_refs(values["incidents"]),
        "cis": split_refs(values["cis"]),
    }
    try:
        problem = await problems.create(actor, data)
    except InvalidInput as error:
        errors, general = by_field(error.problems, FORM_FIELDS)
        return await _form(
            cmdb,
            actor,
            values,
            errors=errors,
            general=general,
            status=422,
            message="Nothing was saved: correct the fields marked below.",
        )
    return Redirect(path=f"/problems/{problem.key}?done=created", status_code=303)


# --- trends -----------------------------------------------------------------------------------


@get("/problems/trends", include_in_schema=False)
async def problem_trends(
    problems: ProblemService,
    cmdb: CMDBService,
    actor: Actor,
    customer: str | None = None,
    days: Annotated[int, QueryParameter(ge=1, le=366)] = 30,
    min_count: Annotated[int, QueryParameter(ge=1, le=10_000)] = 3,
) -> Template:
    if not _reader(actor):
        raise Forbidden("Trends are for provider staff and customer contacts.")
    report = await problems.trends(
        actor,
        customer=parse_ref(customer) if customer and actor.is_provider_staff else None,
        days=days,
        min_count=min_count,
    )
    customers = []
    if actor.is_provider_staff:
        found, _ = await cmdb.list_customers(actor, 500, 0)
        customers = [{"key": c.key, "name": c.name} for c in found]
    body = report.as_dict()
    return page(
        "problems/trends.html",
        actor,
        section="problems",
        title="Incident trends",
        report=body,
        flagged=sum(1 for s in body["spikes"] if s["flagged"]),
        customers=customers,
        filters={"customer": customer or "", "days": days, "min_count": min_count},
    )


# --- a problem's page -------------------------------------------------------------------------


def _history_view(entry: HistoryEntry) -> dict[str, Any]:
    data = dict(entry.after or {})
    details: list[str] = []
    before, after = data.get("from"), data.get("to")
    if before and after and before != after:
        details.append(f"{before.replace('_', ' ')} \u2192 {after.replace('_', ' ')}")
    if data.get("incident"):
        details.append(f"incident {data['incident']}")
    if data.get("rfc") and entry.action == "rfc_raised":
        details.append(f"RFC {data['rfc']}")
    if entry.action == "proposed":
        details.append(
            f"{data.get('incidents_in_watch')} incidents in the watch period of {data.get('release')}, "
            f"{data.get('ratio')} times the reference rate"
        )
    for name in ("root_cause", "workaround", "resolution"):
        if data.get(name):
            details.append(f"{name.replace('_', ' ')}: {data[name]}")
    if entry.action == "updated":
        details += [f"{name.replace('_', ' ')} changed" for name in (data.get("after") or {})]
    return {
        "what": entry.action.replace("_", " ").capitalize(),
        "who": entry.actor_name,
        "at": when(entry.at),
        "details": details,
        "comment": entry.comment,
    }


def _forms(
    problem: Problem,
    allowed: Sequence[str],
    failed: str | None,
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> list[dict[str, Any]]:
    forms = []
    for action in allowed:
        mine = action == failed
        row = TRANSITIONS[action]
        inputs = []
        for name in ACTION_INPUTS[action]:
            default = ""
            if action in ("update", "known-error") and name in ("title", "description", "root_cause", "workaround"):
                default = str(getattr(problem, name))
            inputs.append(
                {
                    "name": name,
                    "id": f"{action}-{name}",
                    "label": INPUT_LABELS[name],
                    "textarea": name in TEXTAREAS,
                    "required": name in row.needs
                    or (action == "link-incident" and name == "incident")
                    or (action == "known-error" and name in ("root_cause", "workaround")),
                    "value": values.get(name, default) if mine else default,
                    "errors": errors.get(name, []) if mine else [],
                }
            )
        forms.append(
            {
                "action": action,
                "label": ACTION_LABELS[action],
                "inputs": inputs,
                "failed": mine,
                "danger": action in ("close",),
            }
        )
    return forms


async def _problem_page(
    problems: ProblemService,
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
    view = await problems.get(actor, parse_ref(key))
    problem = view.problem
    keys = await cmdb.customer_keys({problem.tenant_id})
    incidents = await problems.linked_incidents(actor, problem)
    ci_names = await problems.ci_names(actor, problem.ci_ids)
    history = await problems.history(actor, problem.id)
    return page(
        "problems/detail.html",
        actor,
        section="problems",
        title=f"{problem.key} {problem.title}",
        status=status,
        message=message,
        notice=notice,
        problem={
            "key": problem.key,
            "title": problem.title,
            "description": problem.description,
            "customer": keys.get(problem.tenant_id, ""),
            "status": badge(problem.status),
            "origin": badge(problem.origin),
            "known_error": problem.known_error,
            "root_cause": problem.root_cause,
            "workaround": problem.workaround,
            "resolution": problem.resolution,
            "rfc_key": problem.rfc_key,
            "rfc_state": (problem.rfc_state or "").replace("_", " "),
            "source_release": problem.source_release_id,
            "version": problem.version,
            "created": when(problem.created_at),
            "updated": when(problem.updated_at),
        },
        incidents=[
            {
                "key": i["key"],
                "title": i["title"],
                "status": i["status"].replace("_", " "),
                "priority": i["priority"],
                "created": when(i["created_at"]),
            }
            for i in incidents
        ],
        cis=[{"id": c, "name": ci_names.get(c, f"provider CI #{c}"), "visible": c in ci_names} for c in problem.ci_ids],
        history=[_history_view(e) for e in history],
        forms=_forms(problem, view.allowed, failed, values or {}, errors or {}),
    )


@get("/problems/{key:str}", include_in_schema=False)
async def problem_detail(
    problems: ProblemService, cmdb: CMDBService, actor: Actor, key: str, done: str | None = None
) -> Template:
    return await _problem_page(problems, cmdb, actor, key, notice=DONE.get(done or ""))


@post("/problems/{key:str}/actions/{action:str}", include_in_schema=False)
async def problem_action(
    request: Request[Any, Any, Any],
    problems: ProblemService,
    cmdb: CMDBService,
    actor: Actor,
    key: str,
    action: str,
) -> Response[Any]:
    form = await request.form()
    problem = (await problems.get(actor, parse_ref(key))).problem  # 404 for what the viewer may not see
    if action not in ACTION_INPUTS:
        return await _problem_page(
            problems, cmdb, actor, problem.key, status=422, message=f"There is no action {action!r} on a problem."
        )
    raw = {name: str(form.get(name) or "") for name in ACTION_INPUTS[action]}
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if action == "update" and name != "comment":
            params[name] = value  # every field of the form, so a cleared one is cleared
        elif value.strip():
            params[name] = value
    version = str(form.get("version") or "")
    try:
        await problems.act(
            actor, problem.id, action, params, expected_version=int(version) if version.isdigit() else None
        )
    except (InvalidInput, Conflict, Forbidden) as error:
        errors: dict[str, list[str]] = {}
        if isinstance(error, InvalidInput):
            errors, general = by_field(error.problems, list(raw))
            message = f"{ACTION_LABELS[action]} refused, nothing changed: " + "; ".join(
                [*(f"{INPUT_LABELS.get(n, n)} {r[0]}" for n, r in errors.items()), *general]
            )
        else:
            message = f"{ACTION_LABELS[action]} refused, nothing changed. {error.detail}"
        return await _problem_page(
            problems,
            cmdb,
            actor,
            problem.key,
            status=_status(error),
            message=message,
            failed=action,
            values=raw,
            errors=errors,
        )
    return Redirect(path=f"/problems/{problem.key}?done={action}", status_code=303)


HANDLERS: list[Any] = [problem_list, problem_new, problem_create, problem_trends, problem_detail, problem_action]
