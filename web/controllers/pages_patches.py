"""The patch urgency board: every live patch across customers (a customer sees their own),
soonest due first, each row coloured by its urgency state and labelled in words."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import get
from litestar.params import QueryParameter
from litestar.response import Template

from cmdb.errors import InvalidInput
from cmdb.models import Actor
from cmdb.services import CMDBService
from release.patches import OPEN_PATCH_STATES, PatchRow, PatchService
from release.urgency import PatchState, calendar_of
from web.controllers.pages import NAV, NavEntry, badge, page, pagination
from web.deps import parse_ref

PageLimit = Annotated[int, QueryParameter(ge=1, le=100, description="Rows per page, up to 100")]
Offset = Annotated[int, QueryParameter(ge=0)]

#: The state filter's choices: the open patches (default), one state, or everything.
STATE_CHOICES = [
    ("", "Open (not met)"),
    *[(s.value, s.label) for s in PatchState],
    ("all", "All states"),
]


def relative(now: dt.datetime, due: dt.datetime) -> str:
    """'in 3 days', '5 hours ago': enough to rank by eye; the exact time is beside it."""
    delta = due - now
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        amount = f"{max(int(seconds // 60), 1)} min"
    elif seconds < 2 * 86400:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    return f"in {amount}" if delta.total_seconds() >= 0 else f"{amount} ago"


def board_row(row: PatchRow, zones: dict[str, ZoneInfo], now: dt.datetime) -> dict[str, Any]:
    view = row.urgency
    tz = zones.get(row.customer_key, ZoneInfo("UTC"))
    return {
        "key": view.key,
        "href": f"/changes/{view.key}",
        "title": row.title,
        "customer": row.customer_key,
        "level": badge(view.level),
        "state": badge(view.state),
        "state_value": view.state.value,
        "rfc_state": badge(row.rfc_state),
        "deadline": view.deadline.describe(),
        "due_iso": view.due.isoformat(),
        "due_utc": view.due.strftime("%Y-%m-%d %H:%M UTC"),
        "due_local": view.due.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z"),
        "due_relative": relative(now, view.due),
        "share": f"{min(view.share_used, 9.99):.0%}" if view.state is not PatchState.MET else "",
        "met": view.met_at.strftime("%Y-%m-%d %H:%M UTC") if view.met_at else "",
        "met_on_time": view.met_on_time,
    }


@get("/patches", include_in_schema=False)
async def patch_board_page(
    patches: PatchService,
    cmdb: CMDBService,
    actor: Actor,
    customer: str | None = None,
    state_: Annotated[str | None, QueryParameter(name="state")] = None,
    limit: PageLimit = 50,
    offset: Offset = 0,
) -> Template:
    customer = customer.strip() if customer and customer.strip() and actor.is_provider_staff else None
    state = (state_ or "").strip()
    if state == "all":
        states: list[str] | None = [s.value for s in PatchState]
    elif state:
        if state not in PatchState.values():
            raise InvalidInput.field("state", f"unknown urgency state {state!r}")
        states = [state]
    else:
        states = [s.value for s in OPEN_PATCH_STATES]
    rows, total, counts = await patches.board(
        actor, customer=parse_ref(customer) if customer else None, states=states, limit=limit, offset=offset
    )
    customers = (await cmdb.list_customers(actor, 500, 0))[0]
    zones = {c.key: calendar_of(c.calendar, c.timezone, c.holiday_region).tz for c in customers}
    now = patches.clock.now()
    params = {"customer": customer, "state": state or None}
    return page(
        "patches/board.html",
        actor,
        section="patches",
        title="Patch urgency",
        rows=[board_row(row, zones, now) for row in rows],
        counts=[{"badge": badge(s), "count": counts.get(s.value, 0)} for s in PatchState],
        filters={"customer": customer or "", "state": state},
        state_choices=STATE_CHOICES,
        customers=[{"key": c.key, "name": c.name} for c in customers] if actor.is_provider_staff else [],
        pages=pagination("/patches", params, total, limit, offset),
        now_utc=now.strftime("%Y-%m-%d %H:%M UTC"),
    )


NAV.append(NavEntry("patches", "Patches", "/patches", lambda actor: actor.person_id is not None))

HANDLERS: list[Any] = [patch_board_page]
