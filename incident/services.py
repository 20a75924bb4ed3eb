"""Incident management use cases: record incidents (by hand, from the customer portal, from
monitoring alerts), move them through the workflow, keep their SLA clock, escalate them.

Each action loads the incident, resolves what the pure workflow cannot know (the customer's SLA
terms and calendar, who a named person is, the RFC raised), calls
`incident.workflow.transition`, and persists the result with a version-checked update in one
transaction, appending every event to the history. Two engineers taking one incident at once:
the second update finds the version moved on and gets a 409.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.calendar import BusinessCalendar
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.models import CI, Actor, Customer, HistoryEntry, Person, Role, Scope
from cmdb.notifications import Escalation, NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService, page_bounds, system_actor
from incident import repository as repo
from incident.matching import DEFAULT_THRESHOLD, Candidate, MatchScore, rank
from incident.models import (
    Communication,
    Event,
    Incident,
    IncidentPriority,
    IncidentSource,
    IncidentStatus,
    TimeEntry,
)
from incident.sla import SLAClock, SLATerms, due_points, sla_clock
from incident.workflow import MAX_TEXT, STAFF, TRANSITIONS, allowed_actions, transition
from release.services import ReleaseService

__all__ = ["IncidentService", "IncidentView", "RecentChange"]

#: How far back incidents on an RFC's CIs count towards its risk (change/risk.py).
RISK_LOOKBACK = dt.timedelta(days=90)
CHANNELS = ("phone", "email", "portal", "chat", "in_person", "monitoring", "other")
DIRECTIONS = ("inbound", "outbound")
CREATE_FIELDS = frozenset(
    {
        "customer",
        "title",
        "cis",
        "priority",
        "symptoms",
        "errors",
        "steps_to_reproduce",
        "environment_changes",
        "classification",
        "reported_by",
        "contact",
    }
)
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "cis",
        "symptoms",
        "errors",
        "steps_to_reproduce",
        "environment_changes",
        "classification",
        "reported_by",
        "contact",
    }
)
_TEXT_LIMITS = {
    "title": 300,
    "reported_by": 200,
    "contact": 300,
    "classification": 100,
    "symptoms": MAX_TEXT,
    "errors": MAX_TEXT,
    "steps_to_reproduce": MAX_TEXT,
    "environment_changes": MAX_TEXT,
}
ESCALATION_BATCH = 500


class PersonLookup(Protocol):
    async def __call__(self, ids: Sequence[int]) -> dict[int, Person]: ...


@dataclass(frozen=True)
class RecentChange:
    """An RFC completed on an incident's CIs (``direct``) or on a CI they depend on."""

    rfc_id: int
    key: str
    title: str
    completed_at: dt.datetime
    ci_ids: tuple[int, ...]
    direct: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.rfc_id,
            "key": self.key,
            "title": self.title,
            "completed_at": self.completed_at.isoformat(),
            "cis": list(self.ci_ids),
            "direct": self.direct,
        }


@dataclass(frozen=True)
class IncidentView:
    """An incident with everything its page and JSON show."""

    incident: Incident
    customer: Customer
    cis: list[CI]
    sla: SLAClock
    allowed: list[str]
    recent_changes: list[RecentChange]
    releases: list[tuple[int, str]]
    escalations: list[Escalation]
    assignee: Person | None
    parent_key: str | None
    children: list[tuple[int, str, str]]
    time_entries: list[TimeEntry]
    communications: list[Communication]
    people: dict[int, Person]


def calendar_of(customer: Customer) -> BusinessCalendar:
    """The customer's business calendar; a malformed stored calendar falls back to the defaults
    in the customer's zone rather than stopping incident intake."""
    data = {**customer.calendar, "timezone": customer.timezone, "holiday_region": customer.holiday_region}
    try:
        return BusinessCalendar.from_dict({k: v for k, v in data.items() if v is not None})
    except ValueError:
        return BusinessCalendar(timezone=customer.timezone or "UTC")


class IncidentService:
    def __init__(
        self,
        clock: Clock,
        cmdb: CMDBService,
        change: ChangeService,
        releases: ReleaseService,
        notifications: NotificationService,
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.releases = releases
        self.notifications = notifications

    def jobs(self) -> list[Job]:
        return [Job("incident-escalation", dt.timedelta(minutes=1), self.escalate_due)]

    # --- helpers -----------------------------------------------------------------------------

    async def _customer(self, tenant_id: int) -> Customer:
        return (await cmdb_repo.customers_by_ids([tenant_id]))[tenant_id]

    async def _load(self, actor: Actor, ref: int | str) -> Incident:
        found = await repo.get_incident(actor.scope, ref)
        if found is None:
            raise NotFound("incident", ref)
        return found

    async def _record(self, incident: Incident, events: Sequence[Event], *, archive: str | None = None) -> None:
        """The incident's timeline; `archive` also writes the event into its CIs' history, so
        the next engineer on a CI finds what happened to it."""
        rows = []
        for event in events:
            common: dict[str, Any] = {
                "tenant_id": incident.tenant_id,
                "entity": "incident",
                "entity_id": incident.id,
                "actor_id": event.actor_id,
                "actor_name": event.actor_name,
                "at": event.at,
                "comment": event.comment,
            }
            after = {**event.data, "status": incident.status.value, "key": incident.key}
            rows.append(cmdb_repo.history_row(action=event.kind, after=after, **common))
            if archive:
                summary = {"incident": incident.key, "title": incident.title, "status": incident.status.value}
                rows += [
                    cmdb_repo.history_row(action=archive, ci_id=ci, after=summary, **common) for ci in incident.ci_ids
                ]
        await cmdb_repo.append_history(rows)

    async def _next_escalation(self, incident: Incident, customer: Customer) -> dt.datetime | None:
        """When the escalation job must next look: the earliest point not raised yet."""
        points = due_points(incident, SLATerms.from_sla(customer.sla), calendar_of(customer), self.clock.now())
        if not points or not incident.id:
            return points[0].at if points else None
        raised = {e.level for e in (await self.notifications.escalations("incident", [incident.id]))[incident.id]}
        pending = [p.at for p in points if p.level not in raised]
        return min(pending) if pending else None

    async def _watch_releases(self, incident: Incident, at: dt.datetime) -> None:
        """Link the incident to releases whose watch period covers its CIs (domain: "incidents
        on the released CIs, and those that depend on them, are linked to the release")."""
        if not incident.ci_ids:
            return
        matches = await self.releases.watching(incident.tenant_id, incident.ci_ids, at)
        if matches:
            await repo.link_releases(incident.id, [m.release_id for m in matches], at)

    async def _ci_refs(self, tenant: Customer, refs: Any, problems: list[FieldProblem]) -> tuple[int, ...]:
        if not isinstance(refs, list):
            problems.append(FieldProblem("cis", "must be a list of CI ids or names"))
            return ()
        names = [
            ref.partition(":")[2] if ref.startswith(f"{tenant.key}:") else ref
            for ref in refs
            if isinstance(ref, str) and not ref.isdigit()
        ]
        numbers = [int(ref) for ref in refs if isinstance(ref, int) and not isinstance(ref, bool)]
        numbers += [int(ref) for ref in refs if isinstance(ref, str) and ref.isdigit()]
        by_id, by_name = await cmdb_repo.tenant_ci_refs(tenant.id, numbers, names)
        found: list[int] = []
        for ref in refs:
            if isinstance(ref, bool) or not isinstance(ref, int | str):
                problems.append(FieldProblem("cis", f"{ref!r} is not a CI id or name"))
                continue
            if isinstance(ref, int) or ref.isdigit():
                ci_id = by_id.get(int(ref))
            else:
                ci_id = by_name.get(ref.partition(":")[2] if ref.startswith(f"{tenant.key}:") else ref)
            if ci_id is None:
                problems.append(FieldProblem("cis", f"no CI {ref} of {tenant.key}"))
            else:
                found.append(ci_id)
        return tuple(sorted(set(found)))

    @staticmethod
    def _texts(data: Mapping[str, Any], problems: list[FieldProblem]) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, limit in _TEXT_LIMITS.items():
            if name not in data:
                continue
            raw = data[name]
            if raw is not None and not isinstance(raw, str):
                problems.append(FieldProblem(name, "must be text"))
            elif raw is not None and len(raw) > limit:
                problems.append(FieldProblem(name, f"must be at most {limit:,} characters"))
            else:
                values[name] = (raw or "").strip()
        if "title" in values and not values["title"]:
            problems.append(FieldProblem("title", "is required"))
        return values

    # --- creating ----------------------------------------------------------------------------

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> Incident:
        """Record an incident. Engineers, service managers and administrators record any
        customer's; a customer contact records their own tenant's (source "customer")."""
        if not (actor.has_any(*STAFF) or (Role.CUSTOMER in actor.roles and not actor.is_provider_staff)):
            raise Forbidden("Engineers, service managers and customer contacts record incidents.")
        problems: list[FieldProblem] = []
        unknown = sorted(set(data) - CREATE_FIELDS)
        problems += [FieldProblem(name, "is not a field of an incident") for name in unknown]
        customer_ref = data.get("customer")
        tenant = None
        if customer_ref is None:
            problems.append(FieldProblem("customer", "is required"))
        elif isinstance(customer_ref, bool) or not isinstance(customer_ref, int | str):
            problems.append(FieldProblem("customer", "must be a customer key or id"))
        else:
            tenant = await cmdb_repo.get_customer(actor.scope, customer_ref)
            if tenant is None:
                problems.append(FieldProblem("customer", f"no customer {customer_ref}"))
        if "title" not in data:
            problems.append(FieldProblem("title", "is required"))
        if "cis" not in data:
            problems.append(FieldProblem("cis", "is required (the affected CIs and services)"))
        values = self._texts(data, problems)
        priority = IncidentPriority.NORMAL
        if data.get("priority") is not None:
            try:
                priority = IncidentPriority(data["priority"])
            except ValueError:
                problems.append(FieldProblem("priority", f"must be one of {', '.join(IncidentPriority.values())}"))
        ci_ids = await self._ci_refs(tenant, data["cis"], problems) if tenant is not None and "cis" in data else ()
        if data.get("cis") == []:
            problems.append(FieldProblem("cis", "name at least one affected CI or service"))
        if problems:
            raise InvalidInput(problems)
        assert tenant is not None
        customer_side = not actor.is_provider_staff
        incident = self._new(
            tenant,
            title=values.pop("title"),
            priority=priority,
            source=IncidentSource.CUSTOMER if customer_side else IncidentSource.MANUAL,
            ci_ids=ci_ids,
            received_by=None if customer_side else actor.person_id,
            reported_by=values.pop("reported_by", "") or (actor.name if customer_side else ""),
            **values,
        )
        return await self._insert(incident, tenant, actor, {"source": incident.source.value})

    def _new(
        self,
        tenant: Customer,
        *,
        title: str,
        priority: IncidentPriority,
        source: IncidentSource,
        ci_ids: tuple[int, ...],
        received_by: int | None,
        **fields: Any,
    ) -> Incident:
        now = self.clock.now()
        terms = SLATerms.from_sla(tenant.sla)
        response_due, resolution_due = terms.dues(priority, now, calendar_of(tenant))
        return Incident(
            id=0,
            key="",
            tenant_id=tenant.id,
            title=title,
            status=IncidentStatus.NEW,
            priority=priority,
            source=source,
            created_at=now,
            updated_at=now,
            ci_ids=ci_ids,
            response_due=response_due,
            resolution_due=resolution_due,
            received_by_id=received_by,
            sla_template=terms.template,
            response_level=terms.level_for(priority),
            **fields,
        )

    async def _insert(self, incident: Incident, tenant: Customer, actor: Actor, data: Mapping[str, Any]) -> Incident:
        now = incident.created_at
        async with atomic(cmdb_repo.engine()):
            number = await cmdb_repo.next_in_sequence(f"INC-{now.year}")
            key = f"INC-{now.year}-{number:04d}"
            incident = replace(incident, key=key)
            incident_id = await repo.insert_incident(incident, key, await self._next_escalation(incident, tenant))
            incident = replace(incident, id=incident_id)
            event = Event("created", actor.person_id, actor.username, now, "", {"key": key, **data})
            await self._record(incident, [event], archive="incident_opened")
            await self._watch_releases(incident, now)
            await self._notify_support(incident, f"{key} opened: {incident.title}")
        return incident

    async def _notify_support(self, incident: Incident, subject: str) -> None:
        """The support staff of the affected CIs hear of a new incident on them."""
        cis = await cmdb_repo.cis_by_ids(incident.ci_ids)
        people = {person for ci in cis.values() for person in ci.support_ids}
        if people:
            await self.notifications.notify(
                people, tenant_id=incident.tenant_id, kind="incident.opened", subject=subject, link=_link(incident)
            )

    # --- for monitoring alerts (ALERTS) ------------------------------------------------------

    async def open_from_alert(
        self, *, tenant_id: int, ci_id: int, priority: str, title: str, symptoms: str, observed_at: dt.datetime
    ) -> Incident:
        """An incident opened by a monitoring alert, by the system actor; joins the caller's
        transaction. The SLA clock starts now (when the product learnt of it); the history
        keeps when the alert was observed."""
        if priority not in IncidentPriority.values():
            raise InvalidInput.field("priority", f"must be one of {', '.join(IncidentPriority.values())}")
        tenant = await self._customer(tenant_id)
        system = system_actor(await self.cmdb.provider())
        incident = self._new(
            tenant,
            title=title.strip()[:300] or "Monitoring alert",
            priority=IncidentPriority(priority),
            source=IncidentSource.ALERT,
            ci_ids=(ci_id,),
            received_by=None,
            reported_by="monitoring",
            symptoms=symptoms,
        )
        return await self._insert(incident, tenant, system, {"source": "alert", "observed_at": observed_at.isoformat()})

    async def record_alert_repeat(self, incident_id: int, *, summary: str, observed_at: dt.datetime) -> None:
        """A repeat of the alert joins the open incident: one timestamped activity entry."""
        found = await repo.incidents_by_ids([incident_id])
        if incident_id not in found:
            raise NotFound("incident", incident_id)
        incident = found[incident_id]
        system = system_actor(await self.cmdb.provider())
        event = Event(
            "alert_repeated",
            system.person_id,
            system.username,
            self.clock.now(),
            summary[:MAX_TEXT],
            {"observed_at": observed_at.isoformat(), "summary": summary[:2000]},
        )
        async with atomic(cmdb_repo.engine()):
            await self._record(incident, [event])

    async def is_open(self, incident_id: int) -> bool:
        status = await repo.status_of(incident_id)
        return status is not None and status != IncidentStatus.CLOSED.value

    # --- reading -----------------------------------------------------------------------------

    async def get(self, actor: Actor, ref: int | str, *, recent_days: int | None = None) -> IncidentView:
        incident = await self._load(actor, ref)
        customer = await self._customer(incident.tenant_id)
        cis = await cmdb_repo.cis_by_ids(incident.ci_ids)
        recent = await self._recent_changes(actor, incident, customer, recent_days)
        release_ids = await repo.releases_of(incident.id)
        release_keys = await self._release_keys(release_ids)
        escalations = (await self.notifications.escalations("incident", [incident.id]))[incident.id]
        entries = await repo.time_entries(incident.id)
        people = await cmdb_repo.people_by_ids(
            {e.person_id for e in entries} | ({incident.assignee_id} if incident.assignee_id else set())
        )
        parent_key = (
            (await repo.keys_by_ids([incident.parent_id])).get(incident.parent_id) if incident.parent_id else None
        )
        return IncidentView(
            incident=incident,
            customer=customer,
            cis=[cis[ci] for ci in incident.ci_ids if ci in cis],
            sla=sla_clock(incident, SLATerms.from_sla(customer.sla), calendar_of(customer), self.clock.now()),
            allowed=allowed_actions(incident, actor),
            recent_changes=recent,
            releases=[(rid, release_keys.get(rid, str(rid))) for rid in release_ids],
            escalations=escalations,
            assignee=people.get(incident.assignee_id) if incident.assignee_id else None,
            parent_key=parent_key,
            children=await repo.children(incident.id),
            time_entries=entries,
            communications=await repo.communications(incident.id),
            people=people,
        )

    async def _release_keys(self, release_ids: Sequence[int]) -> dict[int, str]:
        if not release_ids:
            return {}
        from release import repository as release_repo

        return await release_repo.release_keys(release_ids)

    async def list_incidents(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        statuses: Sequence[str] | None = None,
        assignee: int | str | None = None,
        priority: str | None = None,
        ci: int | str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Incident], int]:
        limit, offset = page_bounds(limit, offset)
        unknown = [s for s in statuses or () if s not in IncidentStatus.values()]
        problems = []
        if unknown:
            problems.append(
                FieldProblem(
                    "status", f"unknown statuses {', '.join(unknown)}; known: {', '.join(IncidentStatus.values())}"
                )
            )
        if priority is not None and priority not in IncidentPriority.values():
            problems.append(FieldProblem("priority", f"must be one of {', '.join(IncidentPriority.values())}"))
        if problems:
            raise InvalidInput(problems)
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        assignee_id = (await self._person(actor, assignee, "assignee")).id if assignee is not None else None
        ci_id = (await self.cmdb.get_ci(actor, ci)).id if ci is not None else None
        return await repo.list_incidents(
            actor.scope,
            tenant_id=tenant_id,
            statuses=statuses,
            assignee_id=assignee_id,
            priority=priority,
            ci_id=ci_id,
            q=q,
            limit=limit,
            offset=offset,
        )

    async def queue(
        self,
        actor: Actor,
        *,
        scope: str = "mine",
        customer: int | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Incident], int]:
        """Active incidents, nearest due first. `mine`: assigned to the actor; `team`: the
        actor's, the unassigned ones and those on CIs the actor supports; `all`: every one
        the actor may see."""
        limit, offset = page_bounds(limit, offset)
        if scope not in ("mine", "team", "all"):
            raise InvalidInput.field("scope", "must be mine, team or all")
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        return await repo.queue(
            actor.scope,
            tenant_id=tenant_id,
            assignee_id=(actor.person_id or -1) if scope == "mine" else None,
            team_person_id=(actor.person_id or -1) if scope == "team" else None,
            limit=limit,
            offset=offset,
        )

    async def history(self, actor: Actor, ref: int | str) -> list[HistoryEntry]:
        incident = await self._load(actor, ref)
        return await cmdb_repo.history_for_entity("incident", incident.id, limit=2000)

    async def sla_clock(self, incident: Incident, now: dt.datetime | None = None) -> SLAClock:
        customer = await self._customer(incident.tenant_id)
        return sla_clock(incident, SLATerms.from_sla(customer.sla), calendar_of(customer), now or self.clock.now())

    async def cmdb_people(self, ids: Sequence[int]) -> dict[int, str]:
        """Usernames of people named on incidents (time entries, assignees)."""
        return {pid: person.username for pid, person in (await cmdb_repo.people_by_ids(ids)).items()}

    async def incidents_on(self, ci_ids: Sequence[int], since: dt.datetime) -> int:
        """Risk feedback for change management: incidents raised on these CIs since `since`."""
        return await repo.count_on_cis(list(ci_ids), since)

    # --- recent changes ----------------------------------------------------------------------

    async def recent_changes(self, actor: Actor, ref: int | str, days: int | None = None) -> list[RecentChange]:
        incident = await self._load(actor, ref)
        return await self._recent_changes(actor, incident, await self._customer(incident.tenant_id), days)

    async def _recent_changes(
        self, actor: Actor, incident: Incident, customer: Customer, days: int | None
    ) -> list[RecentChange]:
        """RFCs completed on the incident's CIs and on every CI they depend on (impact "up"),
        in the `days` before the incident was received (default: the SLA's
        `recent_change_days`, else 7), newest first."""
        if days is not None and (isinstance(days, bool) or not 1 <= days <= 365):
            raise InvalidInput.field("days", "must be a whole number of days from 1 to 365")
        window = days or SLATerms.from_sla(customer.sla).recent_change_days
        if not incident.ci_ids:
            return []
        index = await self.cmdb.graph.current()
        roots = [ci for ci in incident.ci_ids if index.has_node(ci)]
        relied_on = index.impact_many(roots, "up") if roots else set(incident.ci_ids)
        until = incident.created_at
        rows = await repo.completed_rfcs_on(
            sorted(relied_on | set(incident.ci_ids)), until - dt.timedelta(days=window), until
        )
        own = set(incident.ci_ids)
        return [
            RecentChange(
                rfc_id=row["id"],
                key=row["key"],
                title=row["title"],
                completed_at=row["completed_at"],
                ci_ids=tuple(row["cis"]),
                direct=bool(own & set(row["cis"])),
            )
            for row in rows
            if actor.scope.can_see(row["tenant"])
        ]

    # --- matching ----------------------------------------------------------------------------

    async def matches(self, actor: Actor, ref: int | str) -> list[tuple[Incident, MatchScore]]:
        """Open incidents of the same customer on the same CIs or their direct neighbours
        (depth 1 either way) whose symptoms are similar: likely the same cause."""
        incident = await self._load(actor, ref)
        customer = await self._customer(incident.tenant_id)
        index = await self.cmdb.graph.current()
        roots = [ci for ci in incident.ci_ids if index.has_node(ci)]
        neighbours: set[int] = set()
        if roots:
            neighbours = index.impact_many(roots, "up", depth=1) | index.impact_many(roots, "down", depth=1)
        candidates = await repo.open_on_cis(incident.tenant_id, sorted(neighbours | set(incident.ci_ids)), incident.id)
        threshold = customer.sla.get("match_threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            threshold = DEFAULT_THRESHOLD
        ranked = rank(
            _texts_of(incident),
            incident.ci_ids,
            neighbours,
            [Candidate(c.id, _texts_of(c), frozenset(c.ci_ids)) for c in candidates],
            threshold,
        )
        by_id = {c.id: c for c in candidates}
        return [(by_id[m.incident_id], m) for m in ranked]

    # --- editing -----------------------------------------------------------------------------

    async def update(
        self, actor: Actor, ref: int | str, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> Incident:
        """Staff edit the description; CIs may only be added (the record keeps what was hit)."""
        incident = await self._load(actor, ref)
        if not actor.has_any(*STAFF):
            raise Forbidden("Engineers and service managers edit incidents.")
        if incident.status is IncidentStatus.CLOSED:
            raise Conflict(f"{incident.key} is closed.", state=incident.status.value, allowed=[])
        problems: list[FieldProblem] = []
        problems += [FieldProblem(name, "cannot be changed here") for name in sorted(set(changes) - EDITABLE_FIELDS)]
        values: dict[str, Any] = self._texts(changes, problems)
        tenant = await self._customer(incident.tenant_id)
        if "cis" in changes:
            added = await self._ci_refs(tenant, changes["cis"], problems)
            values["ci_ids"] = tuple(sorted(set(incident.ci_ids) | set(added)))
        if problems:
            raise InvalidInput(problems)
        version = expected_version if expected_version is not None else incident.version
        if version != incident.version:
            raise StaleVersion("incident", incident.key, incident.version)
        now = self.clock.now()
        updated = replace(incident, **values, version=incident.version + 1, updated_at=now)
        changed = {k: (_plain(getattr(incident, k)), _plain(getattr(updated, k))) for k in values}
        changed = {k: v for k, v in changed.items() if v[0] != v[1]}
        async with atomic(cmdb_repo.engine()):
            if not await repo.update_incident(updated, version, await self._next_escalation(updated, tenant)):
                current = await repo.current_version(incident.id)
                raise StaleVersion("incident", incident.key, current[0] if current else version)
            if "ci_ids" in values:
                await repo.add_cis(incident.id, updated.ci_ids)
                await self._watch_releases(updated, now)
            event = Event(
                "updated",
                actor.person_id,
                actor.username,
                now,
                "",
                {"before": {k: v[0] for k, v in changed.items()}, "after": {k: v[1] for k, v in changed.items()}},
            )
            await self._record(updated, [event])
        return updated

    # --- the workflow ------------------------------------------------------------------------

    async def _person(self, actor: Actor, ref: Any, field_name: str) -> Person:
        if isinstance(ref, bool) or not isinstance(ref, int | str):
            raise InvalidInput.field(field_name, "must be a person's id or username")
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
        person = await cmdb_repo.get_person(actor.scope, ref)
        if person is None:
            raise InvalidInput.field(field_name, f"no person {ref}")
        return person

    async def _staff_member(self, actor: Actor, ref: Any, field_name: str) -> tuple[int, str]:
        person = await self._person(actor, ref, field_name)
        provider = await self.cmdb.provider()
        if person.tenant_id != provider.id or not person.roles & STAFF or not person.active:
            raise InvalidInput.field(field_name, f"{person.username} is not an active engineer or service manager")
        return person.id, person.username

    async def act(
        self,
        actor: Actor,
        ref: int | str,
        action: str,
        params: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Incident:
        incident = await self._load(actor, ref)
        if expected_version is not None and expected_version != incident.version:
            raise StaleVersion("incident", incident.key, incident.version)
        row = TRANSITIONS.get(action)
        if row is None:
            raise InvalidInput.field("action", f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}")
        customer = await self._customer(incident.tenant_id)
        facts: dict[str, Any] = {
            "terms": SLATerms.from_sla(customer.sla),
            "calendar": calendar_of(customer),
            "reporter": incident.reported_by or "(not recorded)",
        }
        # Validate state and roles before resolving references, so a wrong state answers 409
        # and a customer never learns whether a username exists.
        if incident.status not in row.sources or not (actor.has_any(*row.by)):
            transition(incident, action, actor, self.clock.now(), params, **_placeholders(facts))
        to_rfc = action == "raise-rfc" or (action == "escalate" and params.get("to") == "change_management")
        if action == "take":
            if actor.person_id is None:
                raise Forbidden("Only a person takes an incident.")
            facts["assignee"] = (actor.person_id, actor.username)
        elif action == "assign" and params.get("person") is not None:
            facts["assignee"] = await self._staff_member(actor, params["person"], "person")
        elif action == "escalate" and not to_rfc and params.get("to") is not None:
            facts["assignee"] = await self._staff_member(actor, params["to"], "to")
        if action == "link" and params.get("parent") is not None:
            parent = await repo.get_incident(actor.scope, params["parent"])
            if parent is None or parent.tenant_id != incident.tenant_id:
                raise InvalidInput.field("parent", f"no incident {params['parent']} of {customer.key}")
            if parent.id == incident.id or incident.id in await repo.parent_chain(parent.id):
                raise InvalidInput.field("parent", f"{parent.key} is {incident.key} or one of its children")
            facts["parent_id"], facts["parent_key"] = parent.id, parent.key
        now = self.clock.now()
        # A dry run settles state, roles and inputs before anything (an RFC) is created.
        new, events = transition(incident, action, actor, now, params, **_placeholders(facts))
        async with atomic(cmdb_repo.engine()):
            if to_rfc:
                rfc = await self.change.create(actor, _rfc_request(incident, customer, str(params.get("reason", ""))))
                facts["rfc_key"] = rfc.key
                new, events = transition(incident, action, actor, now, params, **_placeholders(facts))
            if not await repo.update_incident(new, incident.version, await self._next_escalation(new, customer)):
                current = await repo.current_version(incident.id)
                version, status = current if current else (incident.version, incident.status.value)
                raise Conflict(
                    f"{incident.key} changed while you were acting (now {status}, version {version}); reload it.",
                    state=status,
                    allowed=allowed_actions(incident, actor),
                )
            archive = {"close": "incident_closed", "confirm": "incident_closed", "resolve": "incident_resolved"}
            await self._record(new, events, archive=archive.get(action))
            await self._after(actor, incident, new, action)
        return new

    async def _after(self, actor: Actor, old: Incident, new: Incident, action: str) -> None:
        """Who hears of it: a new assignee; the customer's contacts when it is resolved (to
        confirm) or referred back to them."""
        if new.assignee_id and new.assignee_id != old.assignee_id and new.assignee_id != actor.person_id:
            await self.notifications.notify(
                [new.assignee_id],
                tenant_id=new.tenant_id,
                kind="incident.assigned",
                subject=f"{new.key} is yours: {new.title}",
                link=_link(new),
            )
        if action in ("resolve", "close") and new.closure is not None:
            contacts, _ = await cmdb_repo.list_people(
                Scope.everything(actor.provider_tenant_id),
                tenant_id=new.tenant_id,
                role=Role.CUSTOMER.value,
                expertise=None,
                limit=100,
                offset=0,
            )
            if new.closure.referred_to_customer:
                subject = f"{new.key} is outside your SLA and referred back to you: {new.closure.out_of_sla_reason}"
            else:
                subject = f"{new.key} is resolved: please confirm it is fixed, or reopen it"
            await self.notifications.notify(
                [p.id for p in contacts],
                tenant_id=new.tenant_id,
                kind=f"incident.{action}",
                subject=subject,
                link=_link(new),
            )

    # --- time and communications -------------------------------------------------------------

    async def record_time(self, actor: Actor, ref: int | str, data: Mapping[str, Any]) -> TimeEntry:
        """Time spent, per person (defaults to the actor), with an optional estimate so the
        service manager can compare estimated and actual time per engineer."""
        incident = await self._load(actor, ref)
        if not actor.has_any(*STAFF):
            raise Forbidden("Engineers and service managers record time on incidents.")
        problems: list[FieldProblem] = []
        problems += [
            FieldProblem(n, "is not a field of a time entry")
            for n in sorted(set(data) - {"person", "minutes", "note", "estimated_minutes"})
        ]
        minutes = data.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
            problems.append(FieldProblem("minutes", "must be a whole number of minutes from 1 to 1440"))
        estimated = data.get("estimated_minutes")
        if estimated is not None and (isinstance(estimated, bool) or not isinstance(estimated, int) or estimated < 0):
            problems.append(FieldProblem("estimated_minutes", "must be a whole number of minutes, 0 or more"))
        note = data.get("note") or ""
        if not isinstance(note, str) or len(note) > MAX_TEXT:
            problems.append(FieldProblem("note", f"must be text of at most {MAX_TEXT:,} characters"))
        if problems:
            raise InvalidInput(problems)
        if data.get("person") is not None:
            person_id, username = await self._staff_member(actor, data["person"], "person")
        elif actor.person_id is not None:
            person_id, username = actor.person_id, actor.username
        else:
            raise InvalidInput.field("person", "is required")
        now = self.clock.now()
        async with atomic(cmdb_repo.engine()):
            entry_id = await repo.add_time(incident.id, person_id, int(minutes), now, note, estimated)  # type: ignore[arg-type]
            event = Event(
                "time_recorded",
                actor.person_id,
                actor.username,
                now,
                note,
                {"person": username, "minutes": minutes, "estimated_minutes": estimated},
            )
            await self._record(incident, [event])
        return TimeEntry(entry_id, incident.id, person_id, int(minutes), now, note, estimated)  # type: ignore[arg-type]

    async def record_communication(self, actor: Actor, ref: int | str, data: Mapping[str, Any]) -> Communication:
        """A message to or from the customer. Customer contacts may record their own."""
        incident = await self._load(actor, ref)
        if not (actor.has_any(*STAFF) or Role.CUSTOMER in actor.roles):
            raise Forbidden("Engineers, service managers and the customer record communications.")
        problems: list[FieldProblem] = []
        problems += [
            FieldProblem(n, "is not a field of a communication")
            for n in sorted(set(data) - {"channel", "direction", "summary", "party"})
        ]
        channel = data.get("channel")
        if channel not in CHANNELS:
            problems.append(FieldProblem("channel", f"must be one of {', '.join(CHANNELS)}"))
        direction = data.get("direction", "outbound" if actor.is_provider_staff else "inbound")
        if direction not in DIRECTIONS:
            problems.append(FieldProblem("direction", "must be inbound or outbound"))
        summary = data.get("summary")
        if not isinstance(summary, str) or not summary.strip() or len(summary) > MAX_TEXT:
            problems.append(FieldProblem("summary", f"is required, text of at most {MAX_TEXT:,} characters"))
        party = data.get("party") or ""
        if not isinstance(party, str) or len(party) > 200:
            problems.append(FieldProblem("party", "must be text of at most 200 characters"))
        if problems:
            raise InvalidInput(problems)
        assert isinstance(summary, str)
        now = self.clock.now()
        async with atomic(cmdb_repo.engine()):
            comm_id = await repo.add_communication(
                incident.id, str(channel), str(direction), party, summary.strip(), actor.person_id, now
            )
            event = Event(
                "communication",
                actor.person_id,
                actor.username,
                now,
                summary.strip(),
                {"channel": channel, "direction": direction, "party": party},
            )
            await self._record(incident, [event])
        return Communication(
            comm_id, incident.id, str(channel), str(direction), summary.strip(), now, actor.person_id, party
        )

    # --- administrative escalation -------------------------------------------------------------

    async def escalate_due(self, now: dt.datetime) -> int:
        """The scheduler's job: raise every escalation point reached (share of the SLA time:
        service manager; breach: executive level). Exactly once each, whichever process runs
        it, by `NotificationService.escalate_once`'s unique row. Answers how many it raised."""
        raised = 0
        customers: dict[int, Customer] = {}
        system: Actor | None = None
        for _ in range(100):  # bounded: each round moves the bookmarks of what it read
            batch = await repo.escalation_candidates(now, ESCALATION_BATCH)
            if batch and system is None:
                system = system_actor(await self.cmdb.provider())
            for incident in batch:
                assert system is not None
                if incident.tenant_id not in customers:
                    customers[incident.tenant_id] = await self._customer(incident.tenant_id)
                raised += await self._escalate(incident, customers[incident.tenant_id], system, now)
            if len(batch) < ESCALATION_BATCH:
                break
        return raised

    async def _escalate(self, incident: Incident, customer: Customer, system: Actor, now: dt.datetime) -> int:
        points = due_points(incident, SLATerms.from_sla(customer.sla), calendar_of(customer), now)
        already = {e.level for e in (await self.notifications.escalations("incident", [incident.id]))[incident.id]}
        raised = 0
        for point in points:
            if point.at > now or point.level in already:
                continue
            what = point.level.replace("_", " ")
            async with atomic(cmdb_repo.engine()):
                done = await self.notifications.escalate_once(
                    subject_kind="incident",
                    subject_id=incident.id,
                    level=point.level,
                    tenant_id=incident.tenant_id,
                    audience=point.audience,
                    subject=f"{incident.key} ({customer.key}, {incident.priority.value}): {what}",
                    body=f"{incident.title}\nDue: {_due_of(incident, point.level)}",
                    link=_link(incident),
                    detail=f"{what} at {point.at.isoformat()}",
                )
                if done:
                    event = Event(
                        "escalated",
                        system.person_id,
                        system.username,
                        now,
                        "",
                        {"kind": "administrative", "level": point.level, "audience": point.audience},
                    )
                    await self._record(incident, [event])
                    raised += 1
            already.add(point.level)
        pending = [p.at for p in points if p.level not in already]
        await repo.set_next_escalation(incident.id, incident.version, min(pending) if pending else None)
        return raised


def _due_of(incident: Incident, level: str) -> str:
    due = incident.response_due if level.startswith("response") else incident.resolution_due
    return due.isoformat() if due else "-"


def _link(incident: Incident) -> str:
    return f"/incidents/{incident.key}"


def _texts_of(incident: Incident) -> tuple[str, ...]:
    return (incident.title, incident.symptoms, incident.errors)


def _placeholders(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Every fact the workflow may ask for; those the service did not resolve yet are
    stand-ins for the dry run (their inputs are then missing, which the workflow reports)."""
    return {
        "assignee": (None, ""),
        "rfc_key": "RFC-pending",
        "parent_id": None,
        "parent_key": "",
        **facts,
    }


def _rfc_request(incident: Incident, customer: Customer, reason: str) -> dict[str, Any]:
    """The RFC change management receives when an incident needs a process or procedure changed."""
    need = f"Incident {incident.key}: {incident.title}\n\n{incident.symptoms}".strip()
    if reason:
        need += f"\n\nWhy a change is needed: {reason}"
    return {
        "customer": customer.key,
        "title": f"{incident.key}: {incident.title}"[:300],
        "cis": list(incident.ci_ids),
        "origin": "incident",
        "origin_ref": incident.key,
        "need": need,
        "desired_result": f"The cause of {incident.key} is removed and it does not recur.",
        "priority": {"critical": "critical", "high": "high", "normal": "medium", "low": "low"}[incident.priority.value],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "value"):
        return value.value
    return value
