"""The incident API: incidents, their workflow actions, SLA clock, matches, recent changes,
time entries and communications. (Monitoring alerts are web/controllers/api_alerts.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from cmdb.models import Actor
from cmdb.services import CMDBService
from incident.matching import MatchScore
from incident.models import Communication, Incident, TimeEntry
from incident.services import IncidentService, IncidentView
from web.deps import expected_version, json_object, parse_ref
from web.presenters import history_json

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def incident_json(incident: Incident, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    """An incident in the field names api.md fixes, plus the rest of its record."""
    return {
        "id": incident.id,
        "key": incident.key,
        "customer": customer_keys.get(incident.tenant_id),
        "customer_id": incident.tenant_id,
        "title": incident.title,
        "status": incident.status.value,
        "priority": incident.priority.value,
        "source": incident.source.value,
        "cis": list(incident.ci_ids),
        "response_due": _iso(incident.response_due),
        "resolution_due": _iso(incident.resolution_due),
        "reopen_count": incident.reopen_count,
        "version": incident.version,
        "assignee": incident.assignee_id,
        "parent": incident.parent_id,
        "reported_by": incident.reported_by,
        "contact": incident.contact,
        "received_by": incident.received_by_id,
        "symptoms": incident.symptoms,
        "errors": incident.errors,
        "steps_to_reproduce": incident.steps_to_reproduce,
        "environment_changes": incident.environment_changes,
        "classification": incident.classification,
        "response_level": incident.response_level.value if incident.response_level else None,
        "waiting_for": incident.waiting_for.value if incident.waiting_for else None,
        "rfc": incident.rfc_key,
        "created_at": incident.created_at.isoformat(),
        "updated_at": incident.updated_at.isoformat(),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "responded_at": _iso(incident.responded_at),
        "resolved_at": _iso(incident.resolved_at),
        "closed_at": _iso(incident.closed_at),
        "closure": incident.closure.as_dict() if incident.closure else None,
        "pauses": [p.as_dict() for p in incident.pauses],
    }


def time_json(entry: TimeEntry, usernames: Mapping[int, str]) -> dict[str, Any]:
    return {
        "id": entry.id,
        "person": entry.person_id,
        "username": usernames.get(entry.person_id),
        "minutes": entry.minutes,
        "estimated_minutes": entry.estimated_minutes,
        "note": entry.note,
        "at": entry.at.isoformat(),
    }


def communication_json(item: Communication) -> dict[str, Any]:
    return {
        "id": item.id,
        "channel": item.channel,
        "direction": item.direction,
        "party": item.party,
        "summary": item.summary,
        "person": item.person_id,
        "at": item.at.isoformat(),
    }


def view_json(view: IncidentView) -> dict[str, Any]:
    """The full record: SLA clock with its escalations, allowed actions, recent changes,
    linked releases, children, time spent per person and communications."""
    incident = view.incident
    body = incident_json(incident, {incident.tenant_id: view.customer.key})
    usernames = {pid: p.username for pid, p in view.people.items()}
    per_person: dict[str, int] = {}
    for entry in view.time_entries:
        name = usernames.get(entry.person_id, str(entry.person_id))
        per_person[name] = per_person.get(name, 0) + entry.minutes
    body.update(
        assignee_username=view.assignee.username if view.assignee else None,
        parent_key=view.parent_key,
        children=[{"id": cid, "key": key, "status": status} for cid, key, status in view.children],
        ci_details=[{"id": ci.id, "name": ci.name, "class": ci.ci_class.value} for ci in view.cis],
        sla={
            **view.sla.as_dict(),
            "escalations": [
                {"level": e.level, "at": e.created_at.isoformat(), "detail": e.detail} for e in view.escalations
            ],
        },
        allowed_actions=view.allowed,
        recent_changes=[c.as_dict() for c in view.recent_changes],
        releases=[{"id": rid, "key": key} for rid, key in view.releases],
        time_entries=[time_json(e, usernames) for e in view.time_entries],
        time_spent={"total_minutes": sum(per_person.values()), "by_person": per_person},
        communications=[communication_json(c) for c in view.communications],
    )
    return body


def match_json(incident: Incident, score: MatchScore, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "incident": incident_json(incident, customer_keys),
        "id": incident.id,
        "key": incident.key,
        "similarity": score.similarity,
        "score": score.score,
        "same_cis": list(score.same_cis),
        "neighbour_cis": list(score.neighbour_cis),
    }


class IncidentController(Controller):
    path = "/api/incidents"
    tags = ["incidents"]

    @get("/")
    async def list_incidents(
        self,
        incidents: IncidentService,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        status_filter: Annotated[str | None, Parameter(query="status", description="comma-separated statuses")] = None,
        assignee: str | None = None,
        priority: str | None = None,
        ci: str | None = None,
        q: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await incidents.list_incidents(
            actor,
            customer=parse_ref(customer) if customer else None,
            statuses=[s for s in status_filter.split(",") if s] if status_filter else None,
            assignee=parse_ref(assignee) if assignee else None,
            priority=priority,
            ci=parse_ref(ci) if ci else None,
            q=q,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({i.tenant_id for i in items})
        return {"items": [incident_json(i, keys) for i in items], "total": total}

    @post("/", status_code=HTTP_201_CREATED)
    async def create_incident(self, incidents: IncidentService, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        """Record an incident; the answer carries `matches`: open incidents that look like the
        same cause, to link as parent."""
        incident = await incidents.create(actor, data)
        body = view_json(await incidents.get(actor, incident.id))
        found = await incidents.matches(actor, incident.id)
        keys = {incident.tenant_id: body["customer"]}
        body["matches"] = [match_json(i, score, keys) for i, score in found]
        return body

    @get("/queue", summary="Active incidents, nearest due first: mine, team or all")
    async def queue(
        self,
        incidents: IncidentService,
        cmdb: CMDBService,
        actor: Actor,
        queue_scope: Annotated[str, Parameter(query="scope", description="mine, team or all")] = "mine",
        customer: str | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await incidents.queue(
            actor, scope=queue_scope, customer=parse_ref(customer) if customer else None, limit=limit, offset=offset
        )
        keys = await cmdb.customer_keys({i.tenant_id for i in items})
        return {"items": [incident_json(i, keys) for i in items], "total": total}

    @get("/{ref:str}")
    async def get_incident(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        return view_json(await incidents.get(actor, parse_ref(ref)))

    @patch("/{ref:str}")
    async def update_incident(
        self, incidents: IncidentService, actor: Actor, ref: str, request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        body = await json_object(request)
        version = expected_version(request, body)
        incident = await incidents.update(actor, parse_ref(ref), body, version)
        return view_json(await incidents.get(actor, incident.id))

    @post("/{ref:str}/actions/{action:str}", status_code=200)
    async def act(
        self, incidents: IncidentService, actor: Actor, ref: str, action: str, request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        """acknowledge, set-priority, assign, take, hold, resume, resolve, confirm, reopen,
        escalate, raise-rfc, close, link. Answers the updated record."""
        body = await json_object(request)
        version = expected_version(request, body)
        incident = await incidents.act(actor, parse_ref(ref), action, body, expected_version=version)
        return view_json(await incidents.get(actor, incident.id))

    @get("/{ref:str}/matches", summary="Open incidents that look like the same cause")
    async def matches(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        found = await incidents.matches(actor, parse_ref(ref))
        keys = {i.tenant_id: "" for i, _ in found}
        view_keys = await incidents.cmdb.customer_keys(set(keys))
        return {"items": [match_json(i, score, view_keys) for i, score in found], "total": len(found)}

    @get("/{ref:str}/recent-changes", summary="RFCs completed on the incident's CIs and what they depend on")
    async def recent_changes(
        self,
        incidents: IncidentService,
        actor: Actor,
        ref: str,
        days: Annotated[int | None, Parameter(ge=1, le=365)] = None,
    ) -> dict[str, Any]:
        items = await incidents.recent_changes(actor, parse_ref(ref), days)
        return {"items": [c.as_dict() for c in items], "total": len(items)}

    @get("/{ref:str}/sla", summary="Where the incident stands against its SLA targets now")
    async def sla(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await incidents.get(actor, parse_ref(ref))
        return view_json(view)["sla"]

    @get("/{ref:str}/history")
    async def history(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        entries = await incidents.history(actor, parse_ref(ref))
        return {"items": [history_json(e) for e in entries], "total": len(entries)}

    @get("/{ref:str}/time")
    async def time_entries(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await incidents.get(actor, parse_ref(ref))
        body = view_json(view)
        return {"items": body["time_entries"], "total": len(body["time_entries"]), **body["time_spent"]}

    @post("/{ref:str}/time", status_code=HTTP_201_CREATED)
    async def record_time(
        self, incidents: IncidentService, actor: Actor, ref: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        entry = await incidents.record_time(actor, parse_ref(ref), data)
        people = await incidents.cmdb_people([entry.person_id])
        return time_json(entry, people)

    @get("/{ref:str}/communications")
    async def communications(self, incidents: IncidentService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await incidents.get(actor, parse_ref(ref))
        return {"items": [communication_json(c) for c in view.communications], "total": len(view.communications)}

    @post("/{ref:str}/communications", status_code=HTTP_201_CREATED)
    async def record_communication(
        self, incidents: IncidentService, actor: Actor, ref: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        return communication_json(await incidents.record_communication(actor, parse_ref(ref), data))


HANDLERS = [IncidentController]
