"""The customer portal: a customer contact's home page.

One page that answers "what is going on with my estate?": their CIs by class (and the provider
CIs they rely on, redacted to id and class as everywhere else), their open RFCs with the
approvals waiting for them, their incidents, and their monthly reports. Every list comes from
the services with the contact's own tenant scope, so nothing of another customer can reach it.
Provider staff have no portal: `/portal` sends them to their own home page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import get
from litestar.response import Redirect, Response

from change.models import RFC, RFCState
from change.services import ChangeService
from change.workflow import allowed_actions
from cmdb.errors import NotFound
from cmdb.models import Actor, CIClass, Customer
from cmdb.services import CMDBService
from incident.models import ACTIVE_STATUSES, Incident, IncidentStatus, WaitingFor
from incident.services import IncidentService
from incident.workflow import allowed_actions as incident_actions
from web.controllers.pages import NAV, NavEntry, badge, page, when
from web.controllers.pages_change import zone

PORTAL_PATH = "/portal"
CI_SCAN = 500  # own CIs read to find the provider CIs they rely on (one page of the service)
PROVIDER_SHOWN = 20  # provider CIs listed at most
RFCS_SHOWN = 100
INCIDENTS_SHOWN = 100
REPORT_MONTHS = 12
OPEN_STATES = tuple(state.value for state in RFCState if not state.is_terminal)


def _for_customers(actor: Actor) -> bool:
    return not actor.is_provider_staff


NAV.append(NavEntry("portal", "Portal", PORTAL_PATH, _for_customers))


# --- what the page shows ------------------------------------------------------------------------


def report_months(created: dt.datetime, now: dt.datetime, timezone: str, limit: int = REPORT_MONTHS) -> list[str]:
    """Finished months (YYYY-MM) since the customer's creation, newest first, in their time zone:
    a month's report exists once the month is over where the customer is."""
    tz = zone(timezone)
    first = created.astimezone(tz).date().replace(day=1)
    month = now.astimezone(tz).date().replace(day=1)
    months: list[str] = []
    while len(months) < limit:
        month = (month - dt.timedelta(days=1)).replace(day=1)
        if month < first:
            break
        months.append(f"{month:%Y-%m}")
    return months


def month_label(month: str) -> str:
    return dt.date.fromisoformat(f"{month}-01").strftime("%B %Y")


async def _class_counts(cmdb: CMDBService, actor: Actor) -> tuple[list[dict[str, Any]], int]:
    """The contact's CIs counted by class (classes they have none of are left out)."""
    counts = []
    total = 0
    for ci_class in CIClass:
        _, count = await cmdb.list_cis(
            actor, customer=None, ci_class=ci_class.value, status=None, q=None, limit=1, offset=0
        )
        if count:
            counts.append({"class": ci_class.label, "count": count, "href": f"/cis?class={ci_class.value}"})
            total += count
    return counts, total


async def _provider_cis(cmdb: CMDBService, actor: Actor) -> tuple[list[dict[str, Any]], bool]:
    """Provider CIs the contact's CIs rely on, directly or not, redacted to id and class, each
    with the contact's CIs that rely on it directly. Reads at most CI_SCAN of their CIs (the
    second value says whether it stopped there)."""
    own, total = await cmdb.list_cis(actor, customer=None, ci_class=None, status=None, q=None, limit=CI_SCAN, offset=0)
    if not own:
        return [], False
    index = await cmdb.index()
    tenants = actor.scope.graph_tenants()
    own_ids = {ci.id for ci in own}
    relied_on = index.impact_many(own_ids, "up", allowed_tenants=tenants)
    provider_ids = sorted(ci for ci in relied_on if index.tenant(ci) == actor.provider_tenant_id)[:PROVIDER_SHOWN]
    if not provider_ids:
        return [], total > len(own)
    # Own CIs one hop below a provider CI: asking each of them for what it relies on yields the
    # provider CIs as the service redacts them for this actor (id and class only).
    direct_users = sorted(index.impact_many(provider_ids, "down", depth=1, allowed_tenants=tenants) & own_ids)
    names = {ci.id: ci.name for ci in own}
    found: dict[int, dict[str, Any]] = {}
    for ci_id in direct_users:
        result = await cmdb.impact(actor, ci_id, direction="up", depth=1, limit=100)
        for row in result.items:
            if row.ci is not None or row.ci_id not in provider_ids:
                continue
            entry = found.setdefault(
                row.ci_id,
                {
                    "label": f"provider CI #{row.ci_id}",
                    "class": row.ci_class.label if row.ci_class else "",
                    "used_by": [],
                },
            )
            entry["used_by"].append({"name": names[ci_id], "href": f"/cis/{ci_id}"})
    for ci_id in provider_ids:  # relied on only through other provider CIs
        found.setdefault(ci_id, {"label": f"provider CI #{ci_id}", "class": "", "used_by": []})
    return [found[ci_id] for ci_id in provider_ids], total > len(own)


def _rfc_view(rfc: RFC, actor: Actor) -> dict[str, Any]:
    allowed = allowed_actions(rfc, actor)
    waiting = ""
    if "customer-approve" in allowed:
        waiting = "Your approval"
    elif "submit" in allowed and rfc.state is RFCState.NEEDS_INFORMATION:
        waiting = "Information you were asked for"
    return {
        "key": rfc.key,
        "href": f"/changes/{rfc.key}",
        "title": rfc.title,
        "state": badge(rfc.state),
        "priority": badge(rfc.priority),
        "planned": when(rfc.planned_start),
        "updated": when(rfc.updated_at),
        "waiting": waiting,
        "approval": (
            "approved"
            if rfc.customer_approval_required and rfc.customer_approved_by is not None
            else "awaited"
            if rfc.customer_approval_required
            else ""
        ),
    }


async def _open_rfcs(change: ChangeService, actor: Actor) -> tuple[list[dict[str, Any]], int]:
    items, total = await change.list_rfcs(actor, states=list(OPEN_STATES), limit=RFCS_SHOWN)
    return [_rfc_view(rfc, actor) for rfc in items], total


def _incident_view(incident: Incident, actor: Actor) -> dict[str, Any]:
    allowed = incident_actions(incident, actor)
    waiting = ""
    if incident.awaiting_confirmation and "confirm" in allowed:
        waiting = "Confirm it is resolved, or reopen it"
    elif incident.status is IncidentStatus.HOLD_RESOLUTION and incident.waiting_for is WaitingFor.CUSTOMER:
        waiting = "Information or action from you"
    return {
        "key": incident.key,
        "href": f"/incidents/{incident.key}",
        "title": incident.title,
        "status": badge(incident.status),
        "priority": badge(incident.priority),
        "opened": when(incident.created_at),
        "resolution_due": when(incident.resolution_due),
        "waiting": waiting,
    }


async def _open_incidents(incidents: IncidentService, actor: Actor) -> tuple[list[dict[str, Any]], int]:
    items, total = await incidents.list_incidents(
        actor, statuses=sorted(s.value for s in ACTIVE_STATUSES), limit=INCIDENTS_SHOWN
    )
    return [_incident_view(incident, actor) for incident in items], total


async def _own_customer(cmdb: CMDBService, actor: Actor) -> Customer | None:
    try:
        return await cmdb.get_customer(actor, actor.tenant_id)
    except NotFound:
        return None


# --- the route ----------------------------------------------------------------------------------


@get(PORTAL_PATH, include_in_schema=False)
async def portal_home(
    cmdb: CMDBService, change: ChangeService, incidents: IncidentService, actor: Actor
) -> Response[Any]:
    if actor.is_provider_staff:
        return Redirect(path="/")  # the provider's staff have their own home (the CI list, the queue)
    customer = await _own_customer(cmdb, actor)
    counts, ci_total = await _class_counts(cmdb, actor)
    providers, partial = await _provider_cis(cmdb, actor)
    rfcs, rfc_total = await _open_rfcs(change, actor)
    open_incidents, incident_total = await _open_incidents(incidents, actor)
    waiting = [row for row in rfcs if row["waiting"]]
    waiting_incidents = [row for row in open_incidents if row["waiting"]]
    now = change.clock.now()
    months = report_months(customer.created_at, now, customer.timezone) if customer else []
    key = customer.key if customer else ""
    return page(
        "portal/home.html",
        actor,
        section="portal",
        title=f"{customer.name} portal" if customer else "Portal",
        customer={"key": key, "name": customer.name, "timezone": customer.timezone} if customer else None,
        class_counts=counts,
        ci_total=ci_total,
        providers=providers,
        providers_partial=partial,
        rfcs=rfcs,
        rfc_total=rfc_total,
        rfc_more=rfc_total > len(rfcs),
        waiting=waiting,
        waiting_incidents=waiting_incidents,
        incidents=open_incidents,
        incident_total=incident_total,
        incident_more=incident_total > len(open_incidents),
        reports=[{"month": m, "label": month_label(m), "href": f"/reports/monthly/{key}/{m}"} for m in months],
        first_report=month_label(f"{now.astimezone(zone(customer.timezone)):%Y-%m}") if customer else "",
    )


HANDLERS: list[Any] = [portal_home]

__all__ = ["HANDLERS", "report_months"]
