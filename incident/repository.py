"""The only module that queries incident management's tables. Returns `incident.models`
records; every read of tenant data for a person takes the caller's `Scope`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cmdb import db
from cmdb.models import Scope
from cmdb.repository import _json, _utc, bulk_timestamp
from incident.models import (
    Closure,
    Communication,
    Incident,
    IncidentPriority,
    IncidentSource,
    IncidentStatus,
    Pause,
    ResponseLevel,
    TimeEntry,
    WaitingFor,
)
from incident.tables import (
    IncidentCITable,
    IncidentCommunicationTable,
    IncidentReleaseTable,
    IncidentTable,
    IncidentTimeTable,
)

ACTIVE = tuple(s.value for s in IncidentStatus if s is not IncidentStatus.CLOSED)


def engine() -> Any:
    return IncidentTable._meta.db


def _opt_utc(value: Any) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _incident(row: Mapping[str, Any], ci_ids: Sequence[int]) -> Incident:
    closure = _json(row["closure"], None)
    return Incident(
        id=row["id"],
        key=row["key"],
        tenant_id=row["tenant"],
        title=row["title"],
        status=IncidentStatus(row["status"]),
        priority=IncidentPriority(row["priority"]),
        source=IncidentSource(row["source"]),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        ci_ids=tuple(ci_ids),
        response_due=_opt_utc(row["response_due"]),
        resolution_due=_opt_utc(row["resolution_due"]),
        assignee_id=row["assignee"],
        reopen_count=row["reopen_count"],
        version=row["version"],
        acknowledged_at=_opt_utc(row["acknowledged_at"]),
        responded_at=_opt_utc(row["responded_at"]),
        resolved_at=_opt_utc(row["resolved_at"]),
        closed_at=_opt_utc(row["closed_at"]),
        parent_id=row["parent"],
        reported_by=row["reported_by"] or "",
        contact=row["contact"] or "",
        received_by_id=row["received_by"],
        symptoms=row["symptoms"] or "",
        errors=row["errors"] or "",
        steps_to_reproduce=row["steps_to_reproduce"] or "",
        environment_changes=row["environment_changes"] or "",
        classification=row["classification"] or "",
        sla_template=row["sla_template"],
        response_level=ResponseLevel(row["response_level"]) if row["response_level"] else None,
        waiting_for=WaitingFor(row["waiting_for"]) if row["waiting_for"] else None,
        paused_since=_opt_utc(row["paused_since"]),
        pauses=tuple(Pause.from_dict(p) for p in _json(row["pauses"], [])),
        closure=Closure.from_dict(closure) if closure else None,
        rfc_key=row["rfc_key"],
    )


def next_due(incident: Incident) -> dt.datetime | None:
    """What the work queue sorts on: the target still to meet (response until responded, then
    resolution). An active incident with no running target (Level 1 has no resolution due)
    keeps its response due, so it sorts early: "ongoing escalation until resolved". Null once
    closed, so "in the queue" is `next_due IS NOT NULL`, one index range."""
    if incident.status is IncidentStatus.CLOSED:
        return None
    if incident.responded_at is None and incident.response_due is not None:
        return incident.response_due
    return incident.resolution_due or incident.response_due or incident.created_at


def incident_values(incident: Incident) -> dict[str, Any]:
    """Column values of an incident (without id, key, created_at, version)."""
    return {
        "tenant": incident.tenant_id,
        "title": incident.title,
        "status": incident.status.value,
        "priority": incident.priority.value,
        "source": incident.source.value,
        "updated_at": incident.updated_at,
        "acknowledged_at": incident.acknowledged_at,
        "responded_at": incident.responded_at,
        "resolved_at": incident.resolved_at,
        "closed_at": incident.closed_at,
        "response_due": incident.response_due,
        "resolution_due": incident.resolution_due,
        "next_due": next_due(incident),
        "assignee": incident.assignee_id,
        "reopen_count": incident.reopen_count,
        "parent": incident.parent_id,
        "reported_by": incident.reported_by,
        "contact": incident.contact,
        "received_by": incident.received_by_id,
        "symptoms": incident.symptoms,
        "errors": incident.errors,
        "steps_to_reproduce": incident.steps_to_reproduce,
        "environment_changes": incident.environment_changes,
        "classification": incident.classification,
        "sla_template": incident.sla_template,
        "response_level": incident.response_level.value if incident.response_level else None,
        "waiting_for": incident.waiting_for.value if incident.waiting_for else None,
        "paused_since": incident.paused_since,
        "pauses": json.dumps([p.as_dict() for p in incident.pauses]),
        "closure": json.dumps(incident.closure.as_dict()) if incident.closure else None,
        "rfc_key": incident.rfc_key,
    }


async def _ci_ids(incident_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {incident_id: [] for incident_id in incident_ids}
    for start in range(0, len(incident_ids), 5000):
        chunk = list(incident_ids[start : start + 5000])
        rows = await db.fetch(
            engine(),
            f"SELECT incident, ci FROM incident_ci WHERE incident IN ({', '.join('?' for _ in chunk)})",
            *chunk,
        )
        for row in rows:
            found[row["incident"]].append(row["ci"])
    for ids in found.values():
        ids.sort()
    return found


async def _with_cis(rows: Sequence[Mapping[str, Any]]) -> list[Incident]:
    cis = await _ci_ids([row["id"] for row in rows])
    return [_incident(row, cis[row["id"]]) for row in rows]


async def get_incident(scope: Scope, ref: int | str) -> Incident | None:
    """The incident, or None when missing or not visible to `scope`."""
    if isinstance(ref, str) and ref.isdigit():
        ref = int(ref)
    where = IncidentTable.id == ref if isinstance(ref, int) else IncidentTable.key == ref.upper()
    rows = await IncidentTable.select().where(where)
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    return (await _with_cis(rows))[0]


async def incidents_by_ids(ids: Iterable[int]) -> dict[int, Incident]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await IncidentTable.select().where(IncidentTable.id.is_in(wanted))
    return {incident.id: incident for incident in await _with_cis(rows)}


async def status_of(incident_id: int) -> str | None:
    rows = await IncidentTable.select(IncidentTable.status).where(IncidentTable.id == incident_id)
    return str(rows[0]["status"]) if rows else None


async def current_version(incident_id: int) -> tuple[int, str] | None:
    rows = await IncidentTable.select(IncidentTable.version, IncidentTable.status).where(
        IncidentTable.id == incident_id
    )
    return (int(rows[0]["version"]), str(rows[0]["status"])) if rows else None


async def insert_incident(incident: Incident, key: str, next_escalation_at: dt.datetime | None) -> int:
    values = incident_values(incident)
    rows = await IncidentTable.insert(
        IncidentTable(
            **values,
            key=key,
            created_at=incident.created_at,
            version=incident.version,
            next_escalation_at=next_escalation_at,
        )
    ).returning(IncidentTable.id)
    incident_id = int(rows[0]["id"])
    if incident.ci_ids:
        await IncidentCITable.insert(
            *[IncidentCITable(incident=incident_id, ci=ci) for ci in sorted(set(incident.ci_ids))]
        )
    return incident_id


async def add_cis(incident_id: int, ci_ids: Iterable[int]) -> None:
    existing = set((await _ci_ids([incident_id]))[incident_id])
    new = sorted(set(ci_ids) - existing)
    if new:
        await IncidentCITable.insert(*[IncidentCITable(incident=incident_id, ci=ci) for ci in new])


async def update_incident(incident: Incident, expected_version: int, next_escalation_at: dt.datetime | None) -> bool:
    """Writes the incident if nobody changed it since `expected_version`: the guard that lets
    exactly one of two simultaneous actions win (two engineers taking one incident)."""
    values: dict[Any, Any] = {
        **incident_values(incident),
        IncidentTable.version: incident.version,
        IncidentTable.next_escalation_at: next_escalation_at,
    }
    rows = (
        await IncidentTable.update(values)
        .where((IncidentTable.id == incident.id) & (IncidentTable.version == expected_version))
        .returning(IncidentTable.id)
    )
    return bool(rows)


async def set_next_escalation(incident_id: int, version: int, at: dt.datetime | None) -> None:
    """The escalation job's bookmark: not part of the record, so no version bump; written only
    if the incident did not move on meanwhile (its action then set the bookmark afresh)."""
    await IncidentTable.update({IncidentTable.next_escalation_at: at}).where(
        (IncidentTable.id == incident_id) & (IncidentTable.version == version)
    )


async def escalation_candidates(now: dt.datetime, limit: int) -> list[Incident]:
    rows = (
        await IncidentTable.select()
        .where(
            IncidentTable.next_escalation_at.is_not_null(),
            IncidentTable.next_escalation_at <= now,
            IncidentTable.status.is_in(list(ACTIVE)),
        )
        .order_by(IncidentTable.next_escalation_at)
        .limit(limit)
    )
    return await _with_cis(rows)


def _filters(
    scope: Scope,
    *,
    tenant_id: int | None,
    statuses: Sequence[str] | None,
    assignee_id: int | None,
    priority: str | None,
    ci_id: int | None,
    q: str | None,
) -> list[Any]:
    conditions: list[Any] = []
    if not scope.is_provider:
        conditions.append(IncidentTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(IncidentTable.tenant == tenant_id)
    if statuses:
        conditions.append(IncidentTable.status.is_in(list(statuses)))
    if assignee_id is not None:
        conditions.append(IncidentTable.assignee == assignee_id)
    if priority is not None:
        conditions.append(IncidentTable.priority == priority)
    if ci_id is not None:
        conditions.append(
            IncidentTable.id.is_in(IncidentCITable.select(IncidentCITable.incident).where(IncidentCITable.ci == ci_id))
        )
    if q:
        pattern = f"%{q}%"
        conditions.append(
            IncidentTable.title.ilike(pattern)
            | IncidentTable.key.ilike(pattern)
            | IncidentTable.symptoms.ilike(pattern)
        )
    return conditions


async def list_incidents(
    scope: Scope,
    *,
    tenant_id: int | None = None,
    statuses: Sequence[str] | None = None,
    assignee_id: int | None = None,
    priority: str | None = None,
    ci_id: int | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Incident], int]:
    conditions = _filters(
        scope,
        tenant_id=tenant_id,
        statuses=statuses,
        assignee_id=assignee_id,
        priority=priority,
        ci_id=ci_id,
        q=q,
    )
    query = IncidentTable.select().order_by(IncidentTable.created_at, ascending=False).order_by(IncidentTable.id)
    count = IncidentTable.count()
    if conditions:
        query, count = query.where(*conditions), count.where(*conditions)
    rows = await query.limit(limit).offset(offset)
    return await _with_cis(rows), int(await count)


async def queue(
    scope: Scope,
    *,
    tenant_id: int | None,
    assignee_id: int | None,
    team_person_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Incident], int]:
    """Active incidents, nearest due first. `team`: the person's, the unassigned ones and those
    on CIs the person supports. A walk of the (next_due), (tenant, next_due) or
    (assignee, next_due) index that stops at LIMIT, plus a count."""
    where = ["i.next_due IS NOT NULL"]
    args: list[Any] = []
    if not scope.is_provider:
        where.append("i.tenant = ?")
        args.append(scope.tenant_id)
    if tenant_id is not None:
        where.append("i.tenant = ?")
        args.append(tenant_id)
    if assignee_id is not None:
        where.append("i.assignee = ?")
        args.append(assignee_id)
    if team_person_id is not None:
        supported = [
            row["ci"] for row in await db.fetch(engine(), "SELECT ci FROM ci_support WHERE person = ?", team_person_id)
        ]
        team = "i.assignee IS NULL OR i.assignee = ?"
        args.append(team_person_id)
        if supported:
            # Materialised once (not correlated), however many incidents the walk visits.
            team += f" OR i.id IN (SELECT incident FROM incident_ci WHERE ci IN ({', '.join('?' for _ in supported)}))"
            args += supported
        where.append(f"({team})")
    condition = " AND ".join(where)
    rows = await db.fetch(
        engine(),
        f"SELECT i.* FROM incident i WHERE {condition} ORDER BY i.next_due, i.id LIMIT ? OFFSET ?",
        *args,
        limit,
        offset,
    )
    total = await db.fetch(engine(), f"SELECT COUNT(*) AS n FROM incident i WHERE {condition}", *args)
    return await _with_cis(rows), int(total[0]["n"])


async def open_on_cis(tenant_id: int, ci_ids: Sequence[int], exclude_id: int, limit: int = 200) -> list[Incident]:
    """Active incidents of a tenant touching any of these CIs, newest first."""
    if not ci_ids:
        return []
    rows = await db.fetch(
        engine(),
        f"SELECT DISTINCT i.* FROM incident i JOIN incident_ci c ON c.incident = i.id "
        f"WHERE i.tenant = ? AND i.id <> ? AND i.status IN ({', '.join('?' for _ in ACTIVE)}) "
        f"AND c.ci IN ({', '.join('?' for _ in ci_ids)}) ORDER BY i.id DESC LIMIT ?",
        tenant_id,
        exclude_id,
        *ACTIVE,
        *ci_ids,
        limit,
    )
    return await _with_cis(rows)


async def count_on_cis(ci_ids: Sequence[int], since: dt.datetime) -> int:
    """Incidents raised on any of these CIs since `since` (risk feedback to change management)."""
    if not ci_ids:
        return 0
    total = 0
    for start in range(0, len(ci_ids), 5000):
        chunk = list(ci_ids[start : start + 5000])
        rows = await db.fetch(
            engine(),
            f"SELECT COUNT(DISTINCT i.id) AS n FROM incident i JOIN incident_ci c ON c.incident = i.id "
            f"WHERE c.ci IN ({', '.join('?' for _ in chunk)}) AND i.created_at >= ?",
            *chunk,
            bulk_timestamp(since),
        )
        total += int(rows[0]["n"])
    return total


async def parent_chain(incident_id: int, limit: int = 100) -> list[int]:
    """The ids from this incident up through its parents (cycle-safe by the limit)."""
    chain = [incident_id]
    current: int | None = incident_id
    while current is not None and len(chain) < limit:
        rows = await IncidentTable.select(IncidentTable.parent).where(IncidentTable.id == current)
        current = rows[0]["parent"] if rows else None
        if current is not None:
            if current in chain:
                break
            chain.append(current)
    return chain


async def children(incident_id: int) -> list[tuple[int, str, str]]:
    rows = await IncidentTable.select(IncidentTable.id, IncidentTable.key, IncidentTable.status).where(
        IncidentTable.parent == incident_id
    )
    return [(row["id"], row["key"], row["status"]) for row in rows]


async def keys_by_ids(ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await IncidentTable.select(IncidentTable.id, IncidentTable.key).where(IncidentTable.id.is_in(wanted))
    return {row["id"]: row["key"] for row in rows}


# --- releases in their watch period -------------------------------------------------------


async def link_releases(incident_id: int, release_ids: Iterable[int], at: dt.datetime) -> None:
    existing = {
        row["release"]
        for row in await IncidentReleaseTable.select(IncidentReleaseTable.release).where(
            IncidentReleaseTable.incident == incident_id
        )
    }
    new = sorted(set(release_ids) - existing)
    if new:
        await IncidentReleaseTable.insert(
            *[IncidentReleaseTable(incident=incident_id, release=release, linked_at=at) for release in new]
        )


async def releases_of(incident_id: int) -> list[int]:
    rows = (
        await IncidentReleaseTable.select(IncidentReleaseTable.release)
        .where(IncidentReleaseTable.incident == incident_id)
        .order_by(IncidentReleaseTable.release)
    )
    return [row["release"] for row in rows]


# --- time entries and communications -----------------------------------------------------


async def add_time(
    incident_id: int, person_id: int, minutes: int, at: dt.datetime, note: str, estimated: int | None
) -> int:
    rows = await IncidentTimeTable.insert(
        IncidentTimeTable(
            incident=incident_id, person=person_id, minutes=minutes, at=at, note=note, estimated_minutes=estimated
        )
    ).returning(IncidentTimeTable.id)
    return int(rows[0]["id"])


async def time_entries(incident_id: int) -> list[TimeEntry]:
    rows = (
        await IncidentTimeTable.select().where(IncidentTimeTable.incident == incident_id).order_by(IncidentTimeTable.id)
    )
    return [
        TimeEntry(
            id=row["id"],
            incident_id=row["incident"],
            person_id=row["person"],
            minutes=row["minutes"],
            at=_utc(row["at"]),
            note=row["note"] or "",
            estimated_minutes=row["estimated_minutes"],
        )
        for row in rows
    ]


async def add_communication(
    incident_id: int, channel: str, direction: str, party: str, summary: str, person_id: int | None, at: dt.datetime
) -> int:
    rows = await IncidentCommunicationTable.insert(
        IncidentCommunicationTable(
            incident=incident_id,
            channel=channel,
            direction=direction,
            party=party,
            summary=summary,
            person=person_id,
            at=at,
        )
    ).returning(IncidentCommunicationTable.id)
    return int(rows[0]["id"])


async def communications(incident_id: int) -> list[Communication]:
    rows = (
        await IncidentCommunicationTable.select()
        .where(IncidentCommunicationTable.incident == incident_id)
        .order_by(IncidentCommunicationTable.id)
    )
    return [
        Communication(
            id=row["id"],
            incident_id=row["incident"],
            channel=row["channel"],
            direction=row["direction"],
            summary=row["summary"] or "",
            at=_utc(row["at"]),
            person_id=row["person"],
            party=row["party"] or "",
        )
        for row in rows
    ]


# --- recent changes -----------------------------------------------------------------------


async def completed_rfcs_on(ci_ids: Sequence[int], since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    """RFCs completed on any of these CIs in [since, until], newest first, with the CIs they
    touched among `ci_ids`. The completion time is the RFC's history entry "completed"."""
    if not ci_ids:
        return []
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ci_ids), 2000):
        chunk = list(ci_ids[start : start + 2000])
        rows = await db.fetch(
            engine(),
            "SELECT r.id AS id, r.key AS key, r.title AS title, r.state AS state, r.tenant AS tenant, "
            "c.ci AS ci, h.at AS completed_at FROM rfc r JOIN rfc_ci c ON c.rfc = r.id "
            "JOIN history h ON h.entity = 'rfc' AND h.entity_id = r.id AND h.action = 'completed' AND h.ci_id IS NULL "
            f"WHERE r.state = 'completed' AND c.ci IN ({', '.join('?' for _ in chunk)}) AND h.at >= ? AND h.at <= ?",
            *chunk,
            bulk_timestamp(since),
            bulk_timestamp(until),
        )
        for row in rows:
            entry = found.setdefault(
                row["id"],
                {
                    "id": row["id"],
                    "key": row["key"],
                    "title": row["title"],
                    "state": row["state"],
                    "tenant": row["tenant"],
                    "completed_at": _utc(row["completed_at"]),
                    "cis": set(),
                },
            )
            entry["cis"].add(row["ci"])
    items = sorted(found.values(), key=lambda e: (e["completed_at"], e["id"]), reverse=True)
    for item in items:
        item["cis"] = sorted(item["cis"])
    return items
