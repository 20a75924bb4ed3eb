"""Patch urgency: due times, states, escalation and compliance of patch RFCs.

A patch RFC is an RFC with an urgency level. The rules live in :mod:`release.urgency` (pure);
this service reads what they need in bulk (one raw read of the patch columns, the customers'
calendars and SLAs, the release approvals that meet a patch) and acts on the answers: the
urgency board, the per-RFC urgency, the monthly compliance figures and the escalation job.

"Live" patches are patch RFCs in any state but rejected or withdrawn: those two never reach
the board, escalation or compliance. A patch is met when a release containing it was approved
(``release.repository.patch_met_times``); a live patch that is not met is "open".
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from change import repository as change_repo
from change.models import RFCState, Urgency
from cmdb import db
from cmdb import repository as cmdb_repo
from cmdb.calendar import BusinessCalendar, add_months, local_to_utc
from cmdb.errors import DomainError, FieldProblem, InvalidInput, NotFound
from cmdb.models import Actor, Customer
from cmdb.notifications import EXECUTIVE, SERVICE_MANAGER, NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService, page_bounds
from release.repository import patch_met_times
from release.urgency import (
    CustomerUrgency,
    LackingCI,
    PatchCompliance,
    PatchFacts,
    PatchSchedule,
    PatchState,
    UrgencyView,
    calendar_of,
    micros,
    timeline_for,
    validate_patch_terms,
)

__all__ = ["ESCALATION_KIND", "NotAPatch", "PatchRow", "PatchService"]

#: The `subject_kind` of patch escalations (one row per RFC and level, ever).
ESCALATION_KIND = "rfc_patch"
EXCLUDED_STATES = (RFCState.REJECTED.value, RFCState.WITHDRAWN.value)
OPEN_PATCH_STATES = (PatchState.ON_TRACK, PatchState.AT_RISK, PatchState.OVERDUE)
_CHUNK = 5000
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class NotAPatch(NotFound):
    """The RFC exists (and the caller may see it) but has no urgency level: no patch deadline."""

    code = "not_a_patch"

    def __init__(self, key: str) -> None:
        DomainError.__init__(self, f"{key} is not a patch: it has no urgency level, so it has no patch deadline.")
        self.kind = "patch"
        self.ref = key


@dataclass(frozen=True)
class PatchRow:
    """One line of the urgency board: the patch's urgency and what a person needs to spot it."""

    urgency: UrgencyView
    title: str
    customer_key: str
    rfc_state: RFCState

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.urgency.as_dict(),
            "title": self.title,
            "customer": self.customer_key,
            "rfc_state": self.rfc_state.value,
        }


class _Patch(NamedTuple):
    """A live patch as read: just what the rules and the board need, cheap to make by the
    tens of thousands. `start_us` is the clock start in microseconds since the epoch."""

    rfc_id: int
    key: str
    tenant_id: int
    title: str
    rfc_state: str
    level: Urgency
    clock_start: dt.datetime
    start_us: int
    met_at: dt.datetime | None

    def facts(self) -> PatchFacts:
        return PatchFacts(self.rfc_id, self.key, self.tenant_id, self.level, self.clock_start, self.met_at)


class _Assessed(NamedTuple):
    patch: _Patch
    due_us: int
    state: PatchState


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _moment(value: Any) -> dt.datetime | None:
    """A stored timestamp: a datetime (PostgreSQL) or ISO text (SQLite, read uncast)."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class PatchService:
    def __init__(self, clock: Clock, cmdb: CMDBService, notifications: NotificationService) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.notifications = notifications

    # --- loading ---------------------------------------------------------------------------

    async def _patches(
        self, *, tenant_id: int | None = None, rfc_ids: Sequence[int] | None = None, live_only: bool = True
    ) -> list[_Patch]:
        """Patch RFCs with what the rules need, in one raw read (per chunk of ids when ids are
        given), then the release approvals that met them."""
        engine = change_repo.engine()
        # SQLite's driver would parse every timestamp in Python; as text, fromisoformat is C.
        moment = "CAST({0} AS TEXT) AS {0}" if db.is_sqlite(engine) else "{0}"
        base = (
            f"SELECT id, key, tenant, title, state, urgency, {moment.format('available_at')}, "
            f"{moment.format('created_at')} FROM rfc WHERE urgency IS NOT NULL"
        )
        args: list[Any] = []
        if live_only:
            base += f" AND state NOT IN ({_marks(EXCLUDED_STATES)})"
            args += EXCLUDED_STATES
        if tenant_id is not None:
            base += " AND tenant = ?"
            args.append(tenant_id)
        rows: list[tuple[Any, ...]] = []
        if rfc_ids is None:
            rows = await db.fetch_tuples(engine, base, *args)
        else:
            wanted = sorted(set(rfc_ids))
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                rows += await db.fetch_tuples(engine, f"{base} AND id IN ({_marks(chunk)})", *args, *chunk)
        met = await patch_met_times([row[0] for row in rows]) if rows else {}
        levels = Urgency._value2member_map_
        patches = []
        for rfc_id, key, tenant, title, state, urgency, available_at, created_at in rows:
            level = levels.get(urgency)
            if level is None:  # a level this version does not know: nothing to compute against
                continue
            clock = _moment(available_at) or _moment(created_at)
            assert clock is not None
            patches.append(
                _Patch(
                    rfc_id,
                    key,
                    tenant,
                    title,
                    state,
                    level,  # type: ignore[arg-type]
                    clock,
                    micros(clock),
                    met.get(rfc_id),
                )
            )
        return patches

    async def _rules(self, patches: Sequence[_Patch]) -> tuple[dict[int, CustomerUrgency], dict[int, Customer]]:
        """One set of rules per customer, one timeline per distinct calendar (shared by the
        customers with that calendar, and kept by the process), grown to the earliest start."""
        tenant_ids = {patch.tenant_id for patch in patches}
        customers = await cmdb_repo.customers_by_ids(tenant_ids)
        first_by_tenant: dict[int, dt.datetime] = {}
        for patch in patches:
            first = first_by_tenant.get(patch.tenant_id)
            if first is None or patch.clock_start < first:
                first_by_tenant[patch.tenant_id] = patch.clock_start
        calendars: dict[int, BusinessCalendar] = {}
        earliest: dict[BusinessCalendar, dt.datetime] = {}
        for tenant_id, first in first_by_tenant.items():
            customer = customers.get(tenant_id)
            calendar = calendars[tenant_id] = (
                calendar_of(customer.calendar, customer.timezone, customer.holiday_region)
                if customer
                else BusinessCalendar()
            )
            earliest[calendar] = min(first, earliest.get(calendar, first))
        for calendar, first in earliest.items():
            timeline_for(calendar).cover(calendar.local_date(first) - dt.timedelta(days=1))
        rules = {
            tenant_id: CustomerUrgency(
                calendar,
                PatchSchedule.from_sla(customers[tenant_id].sla if tenant_id in customers else None),
                timeline=timeline_for(calendar),
            )
            for tenant_id, calendar in calendars.items()
        }
        return rules, customers

    async def _assess(
        self, patches: Sequence[_Patch], now: dt.datetime
    ) -> tuple[list[_Assessed], dict[int, CustomerUrgency], dict[int, Customer]]:
        """Due time and state of every patch at `now` (the board's hot path: no views)."""
        rules, customers = await self._rules(patches)
        now_us = micros(now)
        assessed = []
        for patch in patches:
            met_us = micros(patch.met_at) if patch.met_at is not None else None
            due_us, _, state = rules[patch.tenant_id].assess(patch.level, patch.start_us, met_us, now_us)
            assessed.append(_Assessed(patch, due_us, state))
        return assessed, rules, customers

    # --- reading ---------------------------------------------------------------------------

    async def urgency_for_rfcs(self, rfc_ids: Sequence[int]) -> dict[int, UrgencyView]:
        """The urgency of each patch RFC among `rfc_ids`, whatever its state; non-patches are
        absent. No access check: callers have checked that the actor may see these RFCs."""
        if not rfc_ids:
            return {}
        patches = await self._patches(rfc_ids=rfc_ids, live_only=False)
        rules, _ = await self._rules(patches)
        now = self.clock.now()
        return {patch.rfc_id: rules[patch.tenant_id].evaluate(patch.facts(), now) for patch in patches}

    async def urgency(self, actor: Actor, ref: int | str) -> UrgencyView:
        """One RFC's urgency; another tenant's RFC is as absent as a missing one."""
        found = await change_repo.get_rfc(actor.scope, ref)
        if found is None:
            raise NotFound("RFC", ref)
        rfc = found[0]
        if rfc.urgency is None:
            raise NotAPatch(rfc.key)
        views = await self.urgency_for_rfcs([rfc.id])
        if rfc.id not in views:  # pragma: no cover - the RFC was changed between the two reads
            raise NotAPatch(rfc.key)
        return views[rfc.id]

    @staticmethod
    def parse_states(states: Iterable[str] | None) -> tuple[PatchState, ...]:
        """Board filter: urgency states; none given means the open ones (not met)."""
        wanted = [s.strip() for s in states or () if s and s.strip()]
        unknown = [s for s in wanted if s not in PatchState.values()]
        if unknown:
            raise InvalidInput.field(
                "state", f"unknown urgency state {', '.join(unknown)}; known: {', '.join(PatchState.values())}"
            )
        return tuple(PatchState(s) for s in wanted) or OPEN_PATCH_STATES

    async def board(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        states: Iterable[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[PatchRow], int, dict[str, int]]:
        """Live patches in the wanted states (default: open ones), soonest due first; with the
        total and the count per state of everything the customer filter selects. A customer
        contact sees their own patches only."""
        limit, offset = page_bounds(limit, offset)
        wanted = self.parse_states(states)
        tenant_id: int | None = None
        if customer is not None:
            tenant_id = (await self.cmdb.get_customer(actor, customer)).id
        elif not actor.scope.is_provider:
            tenant_id = actor.scope.tenant_id
        now = self.clock.now()
        assessed, rules, customers = await self._assess(await self._patches(tenant_id=tenant_id), now)
        counts = Counter(item.state for item in assessed)
        chosen = [item for item in assessed if item.state in wanted]
        chosen.sort(key=lambda item: (item.due_us, item.patch.key))
        rows = [
            PatchRow(
                rules[item.patch.tenant_id].evaluate(item.patch.facts(), now),
                item.patch.title,
                customers[item.patch.tenant_id].key if item.patch.tenant_id in customers else "?",
                RFCState(item.patch.rfc_state),
            )
            for item in chosen[offset : offset + limit]
        ]
        return rows, len(chosen), {state.value: counts.get(state, 0) for state in PatchState}

    # --- compliance ------------------------------------------------------------------------

    async def compliance(self, actor: Actor, customer_ref: int | str | None, month: str | None) -> PatchCompliance:
        """A customer's patch compliance for `month` ("YYYY-MM", default the current month in the
        customer's zone). A patch counts for the month its due time falls in, once decided (met,
        or its due time passed); "lacking" lists CIs of open patches past due, as of now."""
        if customer_ref is None:
            if actor.scope.is_provider:
                raise InvalidInput.field("customer", "is required: the customer's key or id")
            customer_ref = actor.scope.tenant_id
        assert customer_ref is not None
        customer = await self.cmdb.get_customer(actor, customer_ref)
        calendar = calendar_of(customer.calendar, customer.timezone, customer.holiday_region)
        tz = calendar.tz
        now = self.clock.now()
        today = now.astimezone(tz).date()
        if month is None or month == "":
            first = today.replace(day=1)
        else:
            match = _MONTH.match(month)
            if not match:
                raise InvalidInput.field("month", f"must be a month as YYYY-MM, got {month!r}")
            first = dt.date(int(match.group(1)), int(match.group(2)), 1)
            if first > today:
                raise InvalidInput.field(
                    "month", f"{month} is in the future (today is {today.isoformat()} in {calendar.timezone})"
                )
        window_start = local_to_utc(first, dt.time(0, 0), tz)
        window_end = local_to_utc(add_months(first, 1), dt.time(0, 0), tz)
        assessed, rules, _ = await self._assess(await self._patches(tenant_id=customer.id), now)
        window = (micros(window_start), micros(window_end))
        now_us = micros(now)
        counts: Counter[str] = Counter()
        by_level: dict[str, Counter[str]] = defaultdict(Counter)
        overdue: list[UrgencyView] = []
        for item in assessed:
            patch = item.patch
            if item.state is PatchState.OVERDUE:
                overdue.append(rules[patch.tenant_id].evaluate(patch.facts(), now))
            if not window[0] <= item.due_us < window[1]:
                continue
            if patch.met_at is not None:
                outcome = "met_on_time" if micros(patch.met_at) <= item.due_us else "met_late"
            elif item.due_us <= now_us:
                outcome = "unmet"
            else:
                outcome = "pending"
            counts[outcome] += 1
            by_level[patch.level.value][outcome] += 1
            if outcome != "pending":
                counts["due"] += 1
                by_level[patch.level.value]["due"] += 1
        lacking = await self._lacking(overdue)
        return PatchCompliance(
            customer_id=customer.id,
            customer_key=customer.key,
            month=f"{first.year:04d}-{first.month:02d}",
            timezone=calendar.timezone,
            due=counts["due"],
            met_on_time=counts["met_on_time"],
            met_late=counts["met_late"],
            unmet=counts["unmet"],
            pending=counts["pending"],
            lacking=tuple(lacking),
            by_level={level: dict(c) for level, c in sorted(by_level.items())},
            computed_at=now,
        )

    async def _lacking(self, overdue: Sequence[UrgencyView]) -> list[LackingCI]:
        by_rfc = {view.rfc_id: view for view in overdue}
        ids = sorted(by_rfc)
        found: list[LackingCI] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = await db.fetch(
                change_repo.engine(),
                "SELECT rc.rfc AS rfc, c.id AS ci, c.name AS name FROM rfc_ci rc JOIN ci c ON c.id = rc.ci "
                f"WHERE rc.rfc IN ({_marks(chunk)})",
                *chunk,
            )
            for row in rows:
                view = by_rfc[int(row["rfc"])]
                found.append(LackingCI(int(row["ci"]), row["name"], view.rfc_id, view.key, view.level.value, view.due))
        found.sort(key=lambda item: (item.due, item.ci_name, item.rfc_key))
        return found

    # --- escalation ------------------------------------------------------------------------

    async def escalate(self, now: dt.datetime) -> int:
        """At risk: the service manager hears; overdue: the executive level too. Each level is
        raised once per patch, ever (a unique row per RFC and level decides, across processes).
        An overdue patch never seen at risk raises both, so the service manager hears as well.
        Answers how many escalations this call raised."""
        assessed, rules, customers = await self._assess(await self._patches(), now)
        pending = [item for item in assessed if item.state in (PatchState.AT_RISK, PatchState.OVERDUE)]
        if not pending:
            return 0
        raised: dict[int, set[str]] = defaultdict(set)
        ids = [item.patch.rfc_id for item in pending]
        for start in range(0, len(ids), _CHUNK):
            known = await self.notifications.escalations(ESCALATION_KIND, ids[start : start + _CHUNK])
            for rfc_id, escalations in known.items():
                raised[rfc_id].update(e.level for e in escalations)
        count = 0
        for item in sorted(pending, key=lambda item: item.due_us):
            patch = item.patch
            levels = ["at_risk"] if item.state is PatchState.AT_RISK else ["at_risk", "overdue"]
            missing = [level for level in levels if level not in raised[patch.rfc_id]]
            if not missing:
                continue
            view = rules[patch.tenant_id].evaluate(patch.facts(), now)
            for level in missing:
                if await self._raise(patch, view, level, customers.get(patch.tenant_id)):
                    count += 1
        return count

    async def _raise(self, patch: _Patch, view: UrgencyView, level: str, customer: Customer | None) -> bool:
        who = customer.key if customer else f"customer {view.tenant_id}"
        tz = calendar_of(customer.calendar, customer.timezone, customer.holiday_region).tz if customer else dt.UTC
        due_local = view.due.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        if level == "at_risk":
            subject = f"Patch {view.key} ({who}) is at risk: due {due_local}"
            opening = f"{view.share_used:.0%} of the time allowed for this {view.level.label.lower()} patch is used."
        else:
            subject = f"Patch {view.key} ({who}) is overdue since {due_local}"
            opening = (
                f"The {view.level.label.lower()} patch was due {due_local} and is not yet approved for deployment."
            )
        body = (
            f"{opening}\n{patch.title}\nDeadline: {view.deadline.describe()} from {view.clock_start.isoformat()}; "
            f"due {view.due.isoformat()}. RFC state: {RFCState(patch.rfc_state).label}."
        )
        return await self.notifications.escalate_once(
            subject_kind=ESCALATION_KIND,
            subject_id=view.rfc_id,
            level=level,
            tenant_id=view.tenant_id,
            audience=SERVICE_MANAGER if level == "at_risk" else EXECUTIVE,
            subject=subject,
            body=body,
            link=f"/changes/{view.key}",
            detail=f"due {view.due.isoformat()}; share used {view.share_used:.4f}",
        )

    def jobs(self) -> list[Job]:
        return [Job("patch-escalation", dt.timedelta(minutes=5), self.escalate)]


def problems_of_sla(sla: Any) -> list[FieldProblem]:
    """The patch terms of an SLA as field problems, for a customer create or update to refuse
    (cmdb checks only that `sla` is an object; wiring this in is cmdb's call)."""
    return [FieldProblem(field, reason) for field, reason in validate_patch_terms(sla)]
