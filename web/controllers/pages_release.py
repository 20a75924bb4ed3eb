"""Release management pages: the release manager's board, the new-release form, and the release
page with its RFCs, requirements, test evidence, negative-effect reviews, deployments, history
and the actions the viewer may take. Customers read their own releases here, nothing more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Response, Template

from cmdb.errors import Conflict, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from cmdb.services import CMDBService
from release.models import ReleaseState
from release.patches import PatchService
from release.services import ReleaseService, ReleaseView
from release.workflow import TRANSITIONS
from web.controllers.pages import NAV, NavEntry, page, when
from web.deps import parse_ref

#: Board columns, in the order a release moves through them; closed ones show the latest only.
BOARD_STATES = (
    ReleaseState.PLANNED,
    ReleaseState.TESTING,
    ReleaseState.PASSED,
    ReleaseState.FAILED,
    ReleaseState.APPROVED,
    ReleaseState.DEPLOYING,
    ReleaseState.DEPLOYED,
    ReleaseState.BACKED_OUT,
    ReleaseState.CANCELLED,
)
CLOSED_SHOWN = 20

ACTION_LABELS: Mapping[str, str] = {
    "add-rfc": "Add an RFC",
    "remove-rfc": "Remove an RFC",
    "set-test-environment": "Set the test environment",
    "start-testing": "Start testing",
    "record-test": "Record a test",
    "conclude-testing": "Conclude testing",
    "review-effect": "Review negative effects",
    "approve": "Approve the release",
    "deploy": "Start deployment",
    "complete": "Deployment complete",
    "back-out": "Back out",
    "cancel": "Cancel the release",
}
DONE: Mapping[str, str] = {
    "created": "Release created.",
    **{action: f"{label}: done." for action, label in ACTION_LABELS.items()},
}
DANGER = frozenset({"back-out", "cancel"})


def _may_manage(actor: Actor) -> bool:
    return actor.is_provider_staff and actor.has_any(Role.RELEASE_MANAGER, Role.ADMINISTRATOR)


def _lines(text: str) -> list[str]:
    return [part.strip() for line in text.splitlines() for part in line.split(",") if part.strip()]


async def _due_by_release(patches: PatchService, rfc_ids: Sequence[int]) -> dict[int, Any]:
    return dict(await patches.urgency_for_rfcs(list(dict.fromkeys(rfc_ids))))


@get("/releases", include_in_schema=False)
async def release_board(
    releases: ReleaseService, cmdb: CMDBService, patches: PatchService, actor: Actor, customer: str | None = None
) -> Template:
    columns = []
    all_rfcs: list[int] = []
    found: dict[ReleaseState, tuple[list[Any], int]] = {}
    for state in BOARD_STATES:
        closed = state in (ReleaseState.DEPLOYED, ReleaseState.BACKED_OUT, ReleaseState.CANCELLED)
        items, total = await releases.list_releases(
            actor,
            customer=parse_ref(customer) if customer else None,
            states=[state.value],
            limit=CLOSED_SHOWN if closed else 500,
        )
        found[state] = (items, total)
        all_rfcs += [i for r in items for i in r.rfc_ids]
    urgency = await _due_by_release(patches, all_rfcs)
    keys = await cmdb.customer_keys({r.tenant_id for items, _ in found.values() for r in items})
    for state, (items, total) in found.items():
        cards = []
        for release in items:
            dues = [urgency[i] for i in release.rfc_ids if i in urgency]
            open_dues = [u for u in dues if u.state != "met"] or dues
            earliest = min(open_dues, key=lambda u: u.due) if open_dues else None
            cards.append(
                {
                    "key": release.key,
                    "title": release.title,
                    "customer": keys.get(release.tenant_id, ""),
                    "rfc_count": len(release.rfc_ids),
                    "due": when(earliest.due) if earliest else "",
                    "due_state": earliest.state if earliest else "",
                    "due_level": earliest.level if earliest else "",
                    "watch_until": when(release.watch_until) if release.watch_until else "",
                }
            )
        cards.sort(key=lambda c: (c["due"] == "", c["due"]))
        columns.append({"state": state, "cards": cards, "total": total})
    return page(
        "releases/board.html",
        actor,
        section="releases",
        title="Releases",
        columns=columns,
        can_create=_may_manage(actor),
        customer=customer or "",
    )


# --- the new-release form ------------------------------------------------------------------------


async def _form(
    cmdb: CMDBService, actor: Actor, values: Mapping[str, str], status: int = 200, **extra: Any
) -> Template:
    customers, _ = await cmdb.list_customers(actor, 500, 0)
    return page(
        "releases/form.html",
        actor,
        section="releases",
        title="New release",
        customers=customers,
        values=values,
        status=status,
        **extra,
    )


@get("/releases/new", include_in_schema=False)
async def release_new(cmdb: CMDBService, actor: Actor, customer: str | None = None) -> Template:
    if not _may_manage(actor):
        raise Forbidden("Only a release manager may create releases.")
    return await _form(cmdb, actor, {"customer": customer or ""})


@post("/releases/new", include_in_schema=False)
async def release_create(
    request: Request[Any, Any, Any], releases: ReleaseService, cmdb: CMDBService, actor: Actor
) -> Response[Any]:
    form = await request.form()
    values = {
        name: str(form.get(name) or "")
        for name in ("customer", "title", "description", "rfcs", "test_environment", "represents")
    }
    data: dict[str, Any] = {
        "customer": values["customer"] or None,
        "title": values["title"],
        "description": values["description"],
        "rfcs": _lines(values["rfcs"]),
    }
    if values["test_environment"].strip():
        data["test_environment"] = values["test_environment"].strip()
        data["represents"] = _lines(values["represents"])
    try:
        release = await releases.create(actor, data)
    except InvalidInput as error:
        errors: dict[str, list[str]] = {}
        for problem in error.problems:
            errors.setdefault(problem.field, []).append(problem.reason)
        return await _form(cmdb, actor, values, 422, errors=errors, message=f"Nothing saved: {error.detail}")
    except Conflict as error:
        return await _form(cmdb, actor, values, 409, errors={}, message=f"Nothing saved: {error.detail}")
    return Redirect(path=f"/releases/{release.key}?done=created", status_code=303)


# --- the release page ----------------------------------------------------------------------------


def _history_row(entry: Any) -> dict[str, Any]:
    data = dict(entry.after or {})
    details = []
    if data.get("from") and data.get("to") and data["from"] != data["to"]:
        details.append(f"{ReleaseState(data['from']).label} → {ReleaseState(data['to']).label}")
    for name in ("rfc", "name", "result", "review", "justification", "reason"):
        if data.get(name):
            details.append(f"{name.replace('_', ' ')}: {data[name]}")
    if data.get("rfc_states"):
        details.append("RFCs: " + ", ".join(f"{k} {v}" for k, v in data["rfc_states"].items()))
    if data.get("backout_plans"):
        details.append("backout plans: " + "; ".join(f"{k}: {v}" for k, v in data["backout_plans"].items()))
    return {
        "at": when(entry.at),
        "actor": entry.actor_name,
        "action": entry.action.replace("_", " "),
        "details": details,
        "comment": entry.comment,
    }


async def _release_page(
    releases: ReleaseService,
    patches: PatchService,
    actor: Actor,
    ref: int | str,
    *,
    status: int = 200,
    message: str = "",
    notice: str = "",
    failed: str = "",
    values: Mapping[str, str] | None = None,
    missing: Sequence[str] = (),
) -> Template:
    view: ReleaseView = await releases.get(actor, ref)
    release = view.release
    urgency = await _due_by_release(patches, [r.id for r in view.rfcs]) if view.rfcs else {}
    history = await releases.history(actor, release.id)
    names = view.ci_names
    rfcs = [
        {
            "key": r.key,
            "title": r.title,
            "state": r.state,
            "urgency": r.urgency,
            "due": when(urgency[r.id].due) if r.id in urgency else "",
            "due_state": urgency[r.id].state if r.id in urgency else "",
            "cis": [names.get(c, str(c)) for c in r.ci_ids],
            "backout_plan": r.backout_plan,
        }
        for r in view.rfcs
    ]
    tests = [
        {
            "id": t.id,
            "round": t.round,
            "current": t.round == release.test_round,
            "name": t.name,
            "result": t.result,
            "covers": list(t.covers),
            "negative_effects": t.negative_effects,
            "review": t.review,
            "justification": t.review_justification,
            "reviewed_at": when(t.reviewed_at),
            "recorded_at": when(t.recorded_at),
        }
        for t in view.tests
    ]
    deployments = [
        {
            "ci": names.get(d.ci_id, str(d.ci_id)),
            "ci_id": d.ci_id,
            "version": d.version,
            "at": when(d.deployed_at),
            "outcome": d.outcome,
        }
        for d in view.deployments
    ]
    allowed = list(view.allowed)
    forms = [
        {"action": a, "label": ACTION_LABELS.get(a, a), "danger": a in DANGER, "failed": a == failed}
        for a in allowed
        if a != "review-effect"
    ]
    return page(
        "releases/detail.html",
        actor,
        section="releases",
        title=f"{release.key} {release.title}",
        status=status,
        release=release,
        view=view,
        rfcs=rfcs,
        tests=tests,
        to_review=[t for t in tests if t["current"] and t["negative_effects"] and t["review"] is None]
        if "review-effect" in allowed
        else [],
        deployments=deployments,
        history=[_history_row(e) for e in history],
        forms=forms,
        message=message,
        notice=notice,
        values=values or {},
        missing=list(missing),
        when=when,
        can_manage=_may_manage(actor),
        customer_view=not actor.is_provider_staff,
    )


@get("/releases/{key:str}", include_in_schema=False)
async def release_detail(
    releases: ReleaseService, patches: PatchService, actor: Actor, key: str, done: str | None = None
) -> Template:
    return await _release_page(releases, patches, actor, parse_ref(key), notice=DONE.get(done or "", ""))


def _params(action: str, form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields as the service's inputs for this action, and the raw values to show again."""
    raw = {name: str(form.get(name) or "") for name in form if name not in ("_csrf_token", "version")}
    params: dict[str, Any] = {}
    if raw.get("comment", "").strip():
        params["comment"] = raw["comment"]
    text = {
        "add-rfc": ("rfc",),
        "remove-rfc": ("rfc",),
        "record-test": ("name", "result", "negative_effects"),
        "review-effect": ("test", "review", "justification"),
        "back-out": ("reason",),
        "cancel": ("reason",),
    }
    for name in text.get(action, ()):
        if name in raw:
            params[name] = raw[name]
    if action == "review-effect" and raw.get("test", "").isdigit():
        params["test"] = int(raw["test"])
    if action in ("set-test-environment", "record-test") and raw.get("test_environment", "").strip():
        params["test_environment"] = raw["test_environment"].strip()
        params["represents"] = _lines(raw.get("represents", ""))
    if action == "record-test":
        covers = [str(v) for v in form.getall("covers")] if hasattr(form, "getall") else []
        covers += _lines(raw.get("covers_other", ""))
        params["covers"] = covers
    if action == "complete" and raw.get("deployments", "").strip():
        rows = []
        for line in raw["deployments"].splitlines():
            if not line.strip():
                continue
            ci, _, version = line.partition("=")
            rows.append({"ci": ci.strip(), "version": version.strip()})
        params["deployments"] = rows
    return params, raw


@post("/releases/{key:str}/actions/{action:str}", include_in_schema=False)
async def release_action(
    request: Request[Any, Any, Any],
    releases: ReleaseService,
    patches: PatchService,
    actor: Actor,
    key: str,
    action: str,
) -> Response[Any]:
    """One action from a form: on success back to the release page (303) with a notice; on a
    refusal the page again with the service's message and status 409, 422 or 403."""
    form = await request.form()
    view = await releases.get(actor, parse_ref(key))  # 404 for what the viewer may not see
    release = view.release
    if action not in TRANSITIONS:
        return await _release_page(
            releases, patches, actor, release.key, status=422, message=f"There is no action {action!r} on a release."
        )
    params, raw = _params(action, form)
    version = str(form.get("version") or "")
    try:
        await releases.act(
            actor, release.key, action, params, expected_version=int(version) if version.isdigit() else None
        )
    except (InvalidInput, Conflict, Forbidden) as error:
        status = 422 if isinstance(error, InvalidInput) else 409 if isinstance(error, Conflict) else 403
        return await _release_page(
            releases,
            patches,
            actor,
            release.key,
            status=status,
            message=f"{ACTION_LABELS.get(action, action)} refused, nothing changed. {error.detail}",
            failed=action,
            values=raw,
            missing=getattr(error, "missing", ()),
        )
    return Redirect(path=f"/releases/{release.key}?done={action}", status_code=303)


NAV.append(NavEntry("releases", "Releases", "/releases", lambda a: a.person_id is not None))

HANDLERS: list[Any] = [release_board, release_new, release_create, release_detail, release_action]
