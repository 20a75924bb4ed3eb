"""The only module that queries problem management's tables. Returns `problem.models` records;
every read of tenant data takes the caller's `Scope`.

It also reads (never writes) the incident, release and RFC tables with raw SQL: what a problem
shows of its linked incidents and RFC, and the rows trend analysis counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cmdb import db
from cmdb.models import Scope
from cmdb.repository import _utc
from problem.models import Problem, ProblemOrigin, ProblemStatus
from problem.tables import ProblemCITable, ProblemIncidentTable, ProblemTable
from problem.trends import CIInfo, IncidentRow

_STATUS = ProblemStatus._value2member_map_
_ORIGIN = ProblemOrigin._value2member_map_
CHUNK = 2000


def engine() -> Any:
    return ProblemTable._meta.db


def _marks(items: Sequence[Any]) -> str:
    return ", ".join("?" for _ in items)


def _chunks(items: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


async def _links(problem_ids: Sequence[int]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    incidents: dict[int, list[int]] = {pid: [] for pid in problem_ids}
    cis: dict[int, list[int]] = {pid: [] for pid in problem_ids}
    for chunk in _chunks(problem_ids):
        for row in await ProblemIncidentTable.select(ProblemIncidentTable.problem, ProblemIncidentTable.incident).where(
            ProblemIncidentTable.problem.is_in(chunk)
        ):
            incidents[row["problem"]].append(row["incident"])
        for row in await ProblemCITable.select(ProblemCITable.problem, ProblemCITable.ci).where(
            ProblemCITable.problem.is_in(chunk)
        ):
            cis[row["problem"]].append(row["ci"])
    for mapping in (incidents, cis):
        for ids in mapping.values():
            ids.sort()
    return incidents, cis


async def _rfcs(rfc_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    wanted = sorted(set(rfc_ids))
    found: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(wanted):
        rows = await db.fetch(engine(), f"SELECT id, key, state FROM rfc WHERE id IN ({_marks(chunk)})", *chunk)
        found.update({int(r["id"]): (str(r["key"]), str(r["state"])) for r in rows})
    return found


async def _problems(rows: Sequence[Mapping[str, Any]]) -> list[Problem]:
    ids = [int(row["id"]) for row in rows]
    incidents, cis = await _links(ids)
    rfcs = await _rfcs(row["rfc"] for row in rows if row["rfc"] is not None)
    found = []
    for row in rows:
        rfc = rfcs.get(row["rfc"]) if row["rfc"] is not None else None
        found.append(
            Problem(
                id=row["id"],
                key=row["key"],
                tenant_id=row["tenant"],
                title=row["title"],
                status=_STATUS[row["status"]],  # type: ignore[arg-type]
                origin=_ORIGIN[row["origin"]],  # type: ignore[arg-type]
                created_at=_utc(row["created_at"]),
                updated_at=_utc(row["updated_at"]),
                description=row["description"] or "",
                incident_ids=tuple(incidents[row["id"]]),
                ci_ids=tuple(cis[row["id"]]),
                root_cause=row["root_cause"] or "",
                workaround=row["workaround"] or "",
                known_error=bool(row["known_error"]),
                rfc_id=row["rfc"],
                rfc_key=rfc[0] if rfc else None,
                rfc_state=rfc[1] if rfc else None,
                resolution=row["resolution"] or "",
                source_release_id=row["source_release"],
                created_by=row["created_by"],
                version=row["version"],
            )
        )
    return found


def _values(problem: Problem) -> dict[str, Any]:
    return {
        "tenant": problem.tenant_id,
        "title": problem.title,
        "description": problem.description,
        "status": problem.status.value,
        "origin": problem.origin.value,
        "root_cause": problem.root_cause,
        "workaround": problem.workaround,
        "known_error": problem.known_error,
        "rfc": problem.rfc_id,
        "resolution": problem.resolution,
        "updated_at": problem.updated_at,
    }


async def get_problem(scope: Scope, ref: int | str) -> Problem | None:
    """The problem by id or key, or None if missing or not visible to `scope`."""
    where = ProblemTable.id == ref if isinstance(ref, int) else ProblemTable.key == ref.upper()
    rows = await ProblemTable.select().where(where)
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    return (await _problems(rows))[0]


async def list_problems(
    scope: Scope,
    *,
    tenant_id: int | None = None,
    statuses: Sequence[str] | None = None,
    q: str | None = None,
    incident_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Problem], int]:
    conditions: list[Any] = []
    if not scope.is_provider:
        conditions.append(ProblemTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(ProblemTable.tenant == tenant_id)
    if statuses:
        conditions.append(ProblemTable.status.is_in(list(statuses)))
    if q:
        pattern = f"%{q}%"
        conditions.append(ProblemTable.title.ilike(pattern) | ProblemTable.key.ilike(pattern))
    if incident_id is not None:
        conditions.append(
            ProblemTable.id.is_in(
                ProblemIncidentTable.select(ProblemIncidentTable.problem).where(
                    ProblemIncidentTable.incident == incident_id
                )
            )
        )
    query = (
        ProblemTable.select()
        .order_by(ProblemTable.created_at, ascending=False)
        .order_by(ProblemTable.id, ascending=False)
    )
    count = ProblemTable.count()
    if conditions:
        query, count = query.where(*conditions), count.where(*conditions)
    rows = await query.limit(limit).offset(offset)
    return await _problems(rows), await count


async def _replace_links(problem_id: int, incident_ids: Iterable[int], ci_ids: Iterable[int]) -> None:
    await ProblemIncidentTable.delete().where(ProblemIncidentTable.problem == problem_id)
    await ProblemCITable.delete().where(ProblemCITable.problem == problem_id)
    incidents = sorted(set(incident_ids))
    cis = sorted(set(ci_ids))
    if incidents:
        await ProblemIncidentTable.insert(*[ProblemIncidentTable(problem=problem_id, incident=i) for i in incidents])
    if cis:
        await ProblemCITable.insert(*[ProblemCITable(problem=problem_id, ci=c) for c in cis])


async def insert_problem(problem: Problem, key: str) -> int | None:
    """Inserts the problem; None when a trend proposal for its source release already exists
    (the unique index decides, so two processes cannot both propose)."""
    row = ProblemTable(
        **_values(problem),
        key=key,
        source_release=problem.source_release_id,
        created_by=problem.created_by,
        created_at=problem.created_at,
        version=problem.version,
    )
    query = ProblemTable.insert(row)
    if problem.source_release_id is not None:
        query = query.on_conflict(target=ProblemTable.source_release, action="DO NOTHING")
    rows = await query.returning(ProblemTable.id)
    if not rows:
        return None
    problem_id = int(rows[0]["id"])
    await _replace_links(problem_id, problem.incident_ids, problem.ci_ids)
    return problem_id


async def update_problem(problem: Problem, expected_version: int, links_changed: bool) -> bool:
    """Writes the problem if nobody changed it since `expected_version`."""
    values: dict[Any, Any] = {**_values(problem), ProblemTable.version: problem.version}
    rows = (
        await ProblemTable.update(values)
        .where((ProblemTable.id == problem.id) & (ProblemTable.version == expected_version))
        .returning(ProblemTable.id)
    )
    if rows and links_changed:
        await _replace_links(problem.id, problem.incident_ids, problem.ci_ids)
    return bool(rows)


async def current_version(problem_id: int) -> tuple[int, str] | None:
    rows = await ProblemTable.select(ProblemTable.version, ProblemTable.status).where(ProblemTable.id == problem_id)
    return (int(rows[0]["version"]), str(rows[0]["status"])) if rows else None


async def proposals_for_releases(release_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Release id -> (problem id, key) of the problem its spike proposed."""
    found: dict[int, tuple[int, str]] = {}
    for chunk in _chunks(list(release_ids)):
        rows = await ProblemTable.select(ProblemTable.id, ProblemTable.key, ProblemTable.source_release).where(
            ProblemTable.source_release.is_in(chunk)
        )
        found.update({int(r["source_release"]): (int(r["id"]), str(r["key"])) for r in rows})
    return found


# --- other packages' rows, read only ----------------------------------------------------------


def _incident_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "key": str(row["key"]),
        "tenant_id": int(row["tenant"]),
        "title": str(row["title"] or ""),
        "status": str(row["status"]),
        "priority": str(row["priority"]),
        "created_at": _utc(row["created_at"]),
    }


async def find_incident(ref: int | str) -> dict[str, Any] | None:
    """An incident by id or key, with its CIs, whatever its tenant (the caller checks it)."""
    column = "id" if isinstance(ref, int) else "key"
    value = ref if isinstance(ref, int) else ref.upper()
    rows = await db.fetch(
        engine(),
        f"SELECT id, key, tenant, title, status, priority, created_at FROM incident WHERE {column} = ?",
        value,
    )
    if not rows:
        return None
    found = _incident_row(rows[0])
    found["ci_ids"] = (await incident_cis([found["id"]]))[found["id"]]
    return found


async def incident_cis(incident_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in incident_ids}
    for chunk in _chunks(list(incident_ids)):
        rows = await db.fetch(
            engine(), f"SELECT incident, ci FROM incident_ci WHERE incident IN ({_marks(chunk)})", *chunk
        )
        for row in rows:
            found.setdefault(int(row["incident"]), []).append(int(row["ci"]))
    for ids in found.values():
        ids.sort()
    return found


async def incidents_by_ids(incident_ids: Sequence[int]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(incident_ids))):
        rows = await db.fetch(
            engine(),
            f"SELECT id, key, tenant, title, status, priority, created_at FROM incident WHERE id IN ({_marks(chunk)})",
            *chunk,
        )
        found += [_incident_row(r) for r in rows]
    found.sort(key=lambda r: (r["created_at"], r["id"]))
    return found


async def incidents_between(
    since: dt.datetime, until: dt.datetime, *, tenant_id: int | None = None, ci_ids: Sequence[int] | None = None
) -> list[IncidentRow]:
    """Incidents raised in [since, until] with their CIs; only those of `tenant_id` and touching
    `ci_ids` when given."""
    if ci_ids is not None and not ci_ids:
        return []
    sql = (
        "SELECT i.id AS id, i.key AS key, i.tenant AS tenant, i.created_at AS created_at, c.ci AS ci "
        "FROM incident i JOIN incident_ci c ON c.incident = i.id WHERE i.created_at >= ? AND i.created_at <= ?"
    )
    args: list[Any] = [since, until]
    if tenant_id is not None:
        sql += " AND i.tenant = ?"
        args.append(tenant_id)
    chunks: list[list[int] | None] = list(_chunks(sorted(set(ci_ids)))) if ci_ids is not None else [None]
    cis: dict[int, set[int]] = {}
    heads: dict[int, Mapping[str, Any]] = {}
    for chunk in chunks:
        rows = await db.fetch(
            engine(),
            sql + (f" AND c.ci IN ({_marks(chunk)})" if chunk is not None else ""),
            *args,
            *(chunk or []),
        )
        for row in rows:
            heads[int(row["id"])] = row
            cis.setdefault(int(row["id"]), set()).add(int(row["ci"]))
    if ci_ids is not None and heads:
        # The filter kept only the watched CIs; the rows should carry all of each incident's CIs.
        cis = {k: set(v) for k, v in (await incident_cis(sorted(heads))).items()}
    return [
        IncidentRow(
            id=incident_id,
            key=str(row["key"]),
            tenant_id=int(row["tenant"]),
            created_at=_utc(row["created_at"]),
            ci_ids=tuple(sorted(cis.get(incident_id, ()))),
        )
        for incident_id, row in sorted(heads.items())
    ]


async def ci_infos(ci_ids: Iterable[int]) -> dict[int, CIInfo]:
    wanted = sorted(set(ci_ids))
    found: dict[int, CIInfo] = {}
    for chunk in _chunks(wanted):
        rows = await db.fetch(
            engine(), f"SELECT id, name, ci_class, tenant FROM ci WHERE id IN ({_marks(chunk)})", *chunk
        )
        found.update(
            {int(r["id"]): CIInfo(int(r["id"]), str(r["name"]), str(r["ci_class"]), int(r["tenant"])) for r in rows}
        )
    return found
