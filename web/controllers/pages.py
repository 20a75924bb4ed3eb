"""Browser pages: sign-in, the CI list and detail, the impact picture, the configuration audit.

Thin on purpose, like the API: parse, call CMDBService, shape what the template shows, render.
Every template extends `base.html`; the navigation comes from `navigation(actor)`, which later
processes extend by appending to `NAV`. Jinja autoescapes every page, so tenant text is safe.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import msgspec
from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Response, Template
from markupsafe import Markup

from cmdb.accounts import Accounts
from cmdb.attributes import specs_for
from cmdb.errors import InvalidInput, NotFound, TooManyAttempts, Unauthenticated
from cmdb.models import CI, Actor, CIClass, CIStatus, Criticality, HistoryEntry, RelationshipType, Role
from cmdb.services import CMDBService, ImpactRow
from incident.models import ACTIVE_STATUSES
from incident.services import IncidentService
from release.services import ReleaseService
from web import graphsvg
from web.auth import SESSION_COOKIE, provider_staff
from web.deps import parse_ref
from web.settings import Settings

PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Rows per page, up to 100")]
Offset = Annotated[int, QueryParameter(ge=0)]
DrawDepth = Annotated[int | None, QueryParameter(ge=1, le=20, description="Hops to follow; omit for no limit")]

PICTURE_MAX_NODES = 60
PICTURE_DEPTH = 2  # hops drawn around the CI unless a smaller depth is asked for
PICTURE_MAX_DEPTH = 3
IMPACT_PAGE = 100

# --- navigation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str
    href: str
    allowed: Callable[[Actor], bool]


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    href: str
    current: bool = False


def _everyone(actor: Actor) -> bool:
    return True


def _staff(actor: Actor) -> bool:
    return actor.is_provider_staff


NAV: list[NavEntry] = [
    NavEntry("cis", "Configuration items", "/cis", _everyone),
    NavEntry("impact", "Impact", "/impact", _everyone),
    NavEntry("audit", "Audit", "/audit", _staff),
]
"""Later processes append their pages here (e.g. "Changes" for change managers), so the
navigation never links to a page that does not exist yet."""

# Change management (web/controllers/pages_change.py): each link only for those who may use it.
NAV += [
    NavEntry(
        "changes",
        "Change queue",
        "/changes",
        lambda a: a.is_provider_staff and a.has_any(Role.CHANGE_MANAGER),
    ),
    NavEntry(
        "changes",
        "Changes",
        "/changes",
        lambda a: a.is_provider_staff and not a.has_any(Role.CHANGE_MANAGER),
    ),
    NavEntry("changes", "My changes", "/changes", lambda a: not a.is_provider_staff),
    NavEntry(
        "new-change",
        "Raise a change",
        "/changes/new",
        lambda a: a.has_any(
            Role.ENGINEER, Role.CHANGE_MANAGER, Role.CUSTOMER, Role.ADMINISTRATOR, Role.SERVICE_MANAGER
        ),
    ),
    NavEntry("votes", "Votes", "/changes/votes", lambda a: a.is_provider_staff and a.has_any(Role.COMMITTEE_MEMBER)),
    NavEntry("calendar", "Change calendar", "/changes/calendar", _staff),
]


def navigation(actor: Actor, current: str = "") -> list[NavLink]:
    """The links this actor may follow, in menu order; `current` marks the active section."""
    return [NavLink(e.key, e.label, e.href, e.key == current) for e in NAV if e.allowed(actor)]


def page(
    template: str,
    actor: Actor | None,
    *,
    section: str = "",
    status: int = 200,
    title: str = "",
    **context: Any,
) -> Template:
    """Render a page with the layout's context: who is signed in and where they may go."""
    return Template(
        template_name=template,
        context={
            "actor": actor,
            "roles": ", ".join(sorted(role.label for role in actor.roles)) if actor else "",
            "nav": navigation(actor, section) if actor else [],
            "title": title,
            **context,
        },
        status_code=status,
    )


# --- small presentation helpers ---------------------------------------------------------------


def when(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def show(value: Any) -> str:
    """One value as text for a table cell."""
    if value is None or value == "" or value == []:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def badge(choice: Any) -> dict[str, str]:
    return {"label": choice.label, "colour": choice.colour, "value": choice.value}


def safe_next(target: str | None) -> str:
    """Only a local path: never an absolute or scheme-relative URL (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def url(path: str, params: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


def pagination(path: str, params: Mapping[str, Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    last = offset + limit
    return {
        "first": offset + 1 if total else 0,
        "last": min(last, total),
        "total": total,
        "previous": url(path, {**params, "limit": limit, "offset": max(offset - limit, 0)}) if offset > 0 else None,
        "next": url(path, {**params, "limit": limit, "offset": last}) if last < total else None,
    }


def row_label(row: ImpactRow) -> str:
    """A CI in a graph answer; a provider CI shown to a customer keeps only its id and class."""
    if row.ci is None:
        kind = row.ci_class.label if row.ci_class else "unknown class"
        return f"provider CI #{row.ci_id} ({kind})"
    return row.ci.name


def row_view(row: ImpactRow, keys: Mapping[int, str]) -> dict[str, Any]:
    ci = row.ci
    return {
        "id": row.ci_id,
        "label": row_label(row),
        "redacted": ci is None,
        "href": f"/cis/{row.ci_id}" if ci is not None else None,
        "class": row.ci_class.label if row.ci_class else "",
        "customer": keys.get(ci.tenant_id, "") if ci else "",
        "status": badge(ci.status) if ci else None,
        "criticality": badge(ci.criticality) if ci else None,
    }


FIELD_LABELS = {
    "name": "Name",
    "class": "Class",
    "status": "Status",
    "criticality": "Criticality",
    "description": "Description",
    "owner": "Owner",
    "support": "Support",
}


def _choice_text(key: str, value: Any) -> str:
    kinds: dict[str, Any] = {"status": CIStatus, "criticality": Criticality, "class": CIClass}
    if key in kinds and value in kinds[key].values():
        return str(kinds[key](value).label)
    return show(value)


def history_view(entry: HistoryEntry, ci_class: CIClass | None, names: Mapping[int, str]) -> dict[str, Any]:
    """One history entry as the page shows it: a summary and field-level before -> after."""
    specs = specs_for(ci_class) if ci_class else {}
    changes: list[dict[str, Any]] = []
    summary = entry.action.replace("_", " ").capitalize()
    if entry.entity == "ci" and entry.action == "updated":
        before, after = dict(entry.before or {}), dict(entry.after or {})
        for key in [k for k in [*FIELD_LABELS, "attributes"] if k in before or k in after]:
            if key != "attributes":
                changes.append(
                    {
                        "field": FIELD_LABELS[key],
                        "before": _choice_text(key, before.get(key)),
                        "after": _choice_text(key, after.get(key)),
                        "unauthorized": False,
                    }
                )
                continue
            old, new = before.get(key) or {}, after.get(key) or {}
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    spec = specs.get(name)
                    changes.append(
                        {
                            "field": spec.label if spec else name,
                            "before": show(old.get(name)),
                            "after": show(new.get(name)),
                            "unauthorized": name in entry.unauthorized_fields,
                        }
                    )
        summary = "Updated"
    elif entry.entity == "ci" and entry.action == "created":
        summary = "Created"
    elif entry.entity == "relationship":
        data = entry.after or entry.before or {}
        kind = data.get("type")
        verb = RelationshipType(kind).label if kind in RelationshipType.values() else show(kind)
        source = names.get(entry.ci_id or 0, show(data.get("source")))
        target = names.get(entry.other_ci_id or 0, show(data.get("target")))
        summary = f"Relationship {entry.action}: {source} {verb} {target}"
    return {
        "at": when(entry.at),
        "actor": entry.actor_name,
        "summary": summary,
        "changes": changes,
        "rfc": entry.rfc,
        "comment": entry.comment,
        "unauthorized": entry.unauthorized,
        "unauthorized_fields": [specs[name].label if name in specs else name for name in entry.unauthorized_fields],
    }


async def _ci_names(cmdb: CMDBService, actor: Actor, ids: Iterable[int]) -> dict[int, str]:
    """Names of the CIs the actor may see; a provider CI a customer may not see is shown by id
    only (history entries keep names in their snapshots, which must not reach customers)."""
    names: dict[int, str] = {}
    for ci_id in sorted(set(ids)):
        try:
            names[ci_id] = (await cmdb.get_ci(actor, ci_id)).name
        except NotFound:
            names[ci_id] = f"provider CI #{ci_id}"
    return names


async def _person_names(cmdb: CMDBService, actor: Actor, ids: Sequence[int]) -> list[str]:
    names = []
    for person_id in ids:
        try:
            person = await cmdb.get_person(actor, person_id)
            names.append(person.name)
        except NotFound:
            names.append("provider staff")
    return names


# --- sign-in ----------------------------------------------------------------------------------


class LoginForm(msgspec.Struct):
    username: str = ""
    password: str = ""
    next: str = ""


LoginBody = Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


@get("/login", name="login", include_in_schema=False)
async def login_form(next_: Annotated[str | None, QueryParameter(name="next")] = None) -> Template:
    return page("login.html", None, title="Sign in", next=safe_next(next_), username="", message=None)


@post("/login", include_in_schema=False)
async def login(request: Request[Any, Any, Any], accounts: Accounts, data: LoginBody) -> Response[Any]:
    target = safe_next(data.next)
    try:
        # A new random secret at every sign-in: a cookie sent before sign-in is never reused.
        token, _expires, _actor = await accounts.sign_in(data.username.strip(), data.password, "web")
    except Unauthenticated:
        return page(
            "login.html",
            None,
            title="Sign in",
            status=401,
            next=target,
            username=data.username,
            message="Unknown username or wrong password. Check both and try again.",
        )
    except TooManyAttempts as error:
        return page(
            "login.html",
            None,
            title="Sign in",
            status=429,
            next=target,
            username=data.username,
            message=error.detail,
        )
    settings: Settings = request.app.state.settings
    return Redirect(
        path=target,
        status_code=303,
        cookies=[
            Cookie(
                key=SESSION_COOKIE,
                value=token,
                path="/",
                httponly=True,
                samesite="lax",
                secure=settings.secure_cookies,
                max_age=settings.session_hours * 3600,
            )
        ],
    )


@post("/logout", include_in_schema=False)
async def logout(request: Request[Actor, Any, Any], accounts: Accounts) -> Response[Any]:
    kind, token = request.auth
    await accounts.sign_out(token, kind)
    response: Response[Any] = Redirect(path="/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/", include_in_schema=False)
async def home(actor: Actor) -> Redirect:
    # A customer contact's home is their portal (web/controllers/pages_portal.py).
    return Redirect(path="/cis" if actor.is_provider_staff else "/portal")


# --- configuration items ----------------------------------------------------------------------


@get("/cis", include_in_schema=False)
async def ci_list(
    cmdb: CMDBService,
    actor: Actor,
    q: str | None = None,
    customer: str | None = None,
    ci_class: Annotated[str | None, QueryParameter(name="class")] = None,
    status: str | None = None,
    limit: PageLimit = 25,
    offset: Offset = 0,
) -> Template:
    q, customer, ci_class, status = (v.strip() if v and v.strip() else None for v in (q, customer, ci_class, status))
    if not actor.is_provider_staff:
        customer = None  # a customer contact sees their own CIs only: the service scopes it
    items, total = await cmdb.list_cis(
        actor,
        customer=parse_ref(customer) if customer else None,
        ci_class=ci_class,
        status=status,
        q=q,
        limit=limit,
        offset=offset,
    )
    keys = await cmdb.customer_keys({ci.tenant_id for ci in items})
    customers = (await cmdb.list_customers(actor, 500, 0))[0] if actor.is_provider_staff else []
    params = {"q": q, "customer": customer, "class": ci_class, "status": status}
    rows = [
        {
            "id": ci.id,
            "name": ci.name,
            "customer": keys.get(ci.tenant_id, ""),
            "class": ci.ci_class.label,
            "status": badge(ci.status),
            "criticality": badge(ci.criticality),
        }
        for ci in items
    ]
    return page(
        "cis/list.html",
        actor,
        section="cis",
        title="Configuration items",
        rows=rows,
        filters=params,
        customers=[{"key": c.key, "name": c.name} for c in customers],
        classes=[badge(c) for c in CIClass],
        statuses=[badge(s) for s in CIStatus],
        pages=pagination("/cis", params, total, limit, offset),
    )


#: Rows of the CI page's operations sections; the API pages through the rest.
CI_PAGE_DEPLOYMENTS = 20
CI_PAGE_INCIDENTS = 20


async def ci_operations(releases: ReleaseService, incidents: IncidentService, actor: Actor, ci: CI) -> dict[str, Any]:
    """What releases installed on the CI (newest first) and its incidents not closed, as the
    actor may see them: both services apply the actor's tenant scope."""
    _, rows, keys, deployed_total = await releases.deployments_on_ci(actor, ci.id, limit=CI_PAGE_DEPLOYMENTS)
    open_incidents, open_total = await incidents.list_incidents(
        actor, ci=ci.id, statuses=sorted(s.value for s in ACTIVE_STATUSES), limit=CI_PAGE_INCIDENTS
    )
    return {
        "deployments": [
            {
                "release": keys.get(d.release_id, f"#{d.release_id}"),
                "version": d.version,
                "at": when(d.deployed_at),
                "at_iso": d.deployed_at.isoformat(),
                "outcome": badge(d.outcome),
            }
            for d in rows
        ],
        "deployments_total": deployed_total,
        "open_incidents": [
            {
                "key": i.key,
                "title": i.title,
                "status": badge(i.status),
                "priority": badge(i.priority),
                "opened": when(i.created_at),
            }
            for i in open_incidents
        ],
        "open_incidents_total": open_total,
    }


@get("/cis/{ref:str}", include_in_schema=False)
async def ci_detail(
    cmdb: CMDBService,
    releases: ReleaseService,
    incidents: IncidentService,
    actor: Actor,
    ref: str,
    offset: Offset = 0,
) -> Template:
    ci = await cmdb.get_ci(actor, parse_ref(ref))
    operations = await ci_operations(releases, incidents, actor, ci)
    _, entries, total = await cmdb.history(actor, ci.id, 50, offset)
    relationships = await cmdb.relationships_of(actor, ci)
    keys = await cmdb.customer_keys({ci.tenant_id} | {r.tenant_id for r, _, _ in relationships})
    specs = specs_for(ci.ci_class)
    attributes = [
        {"label": spec.label, "value": show(ci.attributes[name]), "controlled": spec.controlled}
        for name, spec in specs.items()
        if name in ci.attributes
    ]
    outgoing, incoming = [], []
    for relationship, source, target in relationships:
        if relationship.source_id == ci.id:
            outgoing.append({"type": relationship.type.label, "other": row_view(target, keys)})
        else:
            incoming.append({"type": relationship.type.label, "other": row_view(source, keys)})
    mentioned = {i for e in entries if e.entity == "relationship" for i in (e.ci_id, e.other_ci_id) if i}
    names = await _ci_names(cmdb, actor, mentioned)
    return page(
        "cis/detail.html",
        actor,
        section="cis",
        title=ci.name,
        ci=_ci_view(ci, keys),
        attributes=attributes,
        owner=(await _person_names(cmdb, actor, [ci.owner_id]))[0] if ci.owner_id else None,
        support=await _person_names(cmdb, actor, list(ci.support_ids)),
        outgoing=outgoing,
        incoming=incoming,
        history=[history_view(e, ci.ci_class, names) for e in entries],
        history_pages=pagination(f"/cis/{ci.id}", {}, total, 50, offset),
        **operations,
    )


def _ci_view(ci: CI, keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "id": ci.id,
        "name": ci.name,
        "customer": keys.get(ci.tenant_id, ""),
        "class": ci.ci_class.label,
        "status": badge(ci.status),
        "criticality": badge(ci.criticality),
        "description": ci.description,
        "version": ci.version,
        "created": when(ci.created_at),
        "updated": when(ci.updated_at),
    }


# --- impact -----------------------------------------------------------------------------------


@get("/impact", include_in_schema=False)
async def impact_search(cmdb: CMDBService, actor: Actor, ci: str | None = None) -> Response[Any]:
    """Pick a CI by name or id, then go to its impact view."""
    message = None
    if ci and ci.strip():
        try:
            found = await cmdb.get_ci(actor, parse_ref(ci.strip()))
            return Redirect(path=f"/cis/{found.id}/impact")
        except NotFound:
            message = f"No CI {ci.strip()} that you may see."
        except InvalidInput as error:
            message = error.detail
    return page(
        "impact_search.html",
        actor,
        section="impact",
        title="Impact analysis",
        query=ci or "",
        message=message,
        status=404 if message else 200,
    )


def graph_nodes(rows: Mapping[int, ImpactRow], root_id: int, impacted: set[int]) -> list[graphsvg.Node]:
    """The picture's boxes: a visible CI shows name, class and status; a redacted one its class."""
    nodes = []
    for ci_id, row in rows.items():
        ci = row.ci
        if ci is None:
            label, sublabel, colour, href = (
                f"provider CI #{ci_id}",
                row.ci_class.label if row.ci_class else "",
                "grey",
                None,
            )
        else:
            label, sublabel = ci.name, f"{ci.ci_class.label} \u00b7 {ci.status.label}"
            colour, href = ci.status.colour, f"/cis/{ci_id}/impact"
        nodes.append(
            graphsvg.Node(
                id=ci_id,
                label=label,
                sublabel=sublabel,
                colour=colour,
                href=href,
                root=ci_id == root_id,
                impacted=ci_id in impacted,
                redacted=ci is None,
                tooltip=row_label(row) if ci is None else "",
            )
        )
    return nodes


@get("/cis/{ref:str}/impact", include_in_schema=False)
async def ci_impact(
    cmdb: CMDBService,
    actor: Actor,
    ref: str,
    direction: str = "down",
    depth: DrawDepth = None,
    offset: Offset = 0,
) -> Template:
    result = await cmdb.impact(
        actor, parse_ref(ref), direction=direction, depth=depth, limit=IMPACT_PAGE, offset=offset
    )
    root = result.root
    drawn_depth = min(depth or PICTURE_DEPTH, PICTURE_MAX_DEPTH)
    _, rows, raw_edges = await cmdb.neighbourhood(actor, root.id, depth=drawn_depth)
    edges = [
        graphsvg.Edge(a, b, RelationshipType(kind).label if kind in RelationshipType.values() else kind)
        for a, b, kind in raw_edges
    ]
    impacted = graphsvg.reachable(root.id, edges, direction, depth) | {row.ci_id for row in result.items}
    drawing = graphsvg.render(
        graph_nodes(rows, root.id, impacted),
        edges,
        root.id,
        max_nodes=PICTURE_MAX_NODES,
        title=f"Relationships around {root.name}",
    )
    keys = await cmdb.customer_keys({r.ci.tenant_id for r in result.items if r.ci} | {root.tenant_id})
    labels = {row.ci_id: row_label(row) for row in rows.values()}
    labels.update({row.ci_id: row_label(row) for row in result.items})
    labels[root.id] = root.name
    items = [
        {**row_view(row, keys), "depth": row.depth, "via": labels.get(row.via, f"CI #{row.via}")}
        for row in result.items
    ]
    params = {"direction": direction, "depth": depth}
    return page(
        "cis/impact.html",
        actor,
        section="impact",
        title=f"Impact of {root.name}",
        ci=_ci_view(root, keys),
        direction=direction,
        depth=depth,
        drawn_depth=drawn_depth,
        depths=list(range(1, 7)),
        svg=Markup(drawing.svg),  # graphsvg escapes every text it draws
        drawn=drawing.drawn,
        omitted=drawing.omitted,
        items=items,
        pages=pagination(f"/cis/{root.id}/impact", params, result.total, IMPACT_PAGE, offset),
    )


# --- configuration audit ----------------------------------------------------------------------


@get("/audit", guards=[provider_staff], include_in_schema=False)
async def audit(
    cmdb: CMDBService, actor: Actor, customer: str | None = None, limit: PageLimit = 50, offset: Offset = 0
) -> Template:
    customer = customer.strip() if customer and customer.strip() else None
    entries, total = await cmdb.audit(
        actor, customer=parse_ref(customer) if customer else None, since=None, limit=limit, offset=offset
    )
    cis: dict[int, CI] = {}
    for ci_id in sorted({e.ci_id for e in entries if e.ci_id}):
        try:
            cis[ci_id] = await cmdb.get_ci(actor, ci_id)
        except NotFound:
            continue
    keys = await cmdb.customer_keys({e.tenant_id for e in entries})
    customers = (await cmdb.list_customers(actor, 500, 0))[0]
    rows = []
    for entry in entries:
        ci = cis.get(entry.ci_id or 0)
        view = history_view(entry, ci.ci_class if ci else None, {})
        rows.append(
            {
                **view,
                "ci": {"id": ci.id, "name": ci.name} if ci else None,
                "customer": keys.get(entry.tenant_id, ""),
            }
        )
    return page(
        "audit.html",
        actor,
        section="audit",
        title="Configuration audit",
        rows=rows,
        customer=customer or "",
        customers=[{"key": c.key, "name": c.name} for c in customers],
        pages=pagination("/audit", {"customer": customer}, total, limit, offset),
    )


PAGE_HANDLERS: list[Any] = [login_form, login, logout, home, ci_list, ci_detail, impact_search, ci_impact, audit]

__all__ = ["NAV", "PAGE_HANDLERS", "NavEntry", "navigation"]
