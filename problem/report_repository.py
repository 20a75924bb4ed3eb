"""The monthly report's reads: aggregated SQL over the tables of every process.

The report spans incident, alert, change, release and problem records, so it reads them with
raw, read-only SQL (`cmdb.db.fetch`, `?` placeholders, SQLite and PostgreSQL alike) rather than
through each package's repository: one GROUP BY per figure instead of loading ten thousand
incidents into Python. Times are UTC instants; the caller turns the customer's local month into
[start, end). Writes touch only `monthly_report`, this package's own table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from change.models import TERMINAL_STATES, RFCState
from cmdb import db
from cmdb import repository as cmdb_repo
from cmdb.models import Scope
from problem.report_tables import MonthlyReportTable

PRIORITY_ORDER = ("critical", "high", "normal", "low")
TERMINAL_RFC_STATES = tuple(sorted(state.value for state in TERMINAL_STATES))
RFC_STATES = tuple(RFCState.values())
CLOSED_PROBLEM_STATES = ("resolved", "closed")
NOTABLE_INCIDENTS = 50
REPEAT_THRESHOLD = 3


def engine() -> Any:
    return MonthlyReportTable._meta.db


def _ts(at: dt.datetime) -> Any:
    return cmdb_repo.bulk_timestamp(at)


def _opt_utc(value: Any) -> dt.datetime | None:
    return None if value is None else cmdb_repo._utc(value)


def _chunks(items: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


async def _fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    return await db.fetch(engine(), sql, *args)


# --- incidents -----------------------------------------------------------------------------

_RESPONDED = "COALESCE(responded_at, acknowledged_at)"


async def incident_buckets(
    tenant_id: int, start: dt.datetime, end: dt.datetime, week_starts: Sequence[dt.datetime], now: dt.datetime
) -> list[dict[str, Any]]:
    """Incidents raised in [start, end) grouped by priority and week (index into week_starts),
    with the agreed-time counts. Response is measured once answered or once its due time has
    passed (`now`); likewise resolution. `resolved` counts those resolved by the month's end."""
    week_case = "CASE " + " ".join(f"WHEN created_at < ? THEN {i}" for i in range(len(week_starts) - 1))
    week_case += f" ELSE {max(len(week_starts) - 1, 0)} END"
    week_args = [_ts(w) for w in week_starts[1:]]
    sql = f"""
        SELECT priority, {week_case} AS week, COUNT(*) AS total,
            SUM(CASE WHEN {_RESPONDED} IS NOT NULL AND response_due IS NOT NULL
                     AND {_RESPONDED} <= response_due THEN 1 ELSE 0 END) AS response_met,
            SUM(CASE WHEN response_due IS NOT NULL AND ({_RESPONDED} IS NOT NULL OR response_due < ?)
                THEN 1 ELSE 0 END) AS response_measured,
            SUM(CASE WHEN resolved_at IS NOT NULL AND resolution_due IS NOT NULL
                     AND resolved_at <= resolution_due THEN 1 ELSE 0 END) AS resolution_met,
            SUM(CASE WHEN resolution_due IS NOT NULL AND (resolved_at IS NOT NULL OR resolution_due < ?)
                THEN 1 ELSE 0 END) AS resolution_measured,
            SUM(CASE WHEN resolved_at IS NOT NULL AND resolved_at < ? THEN 1 ELSE 0 END) AS resolved,
            SUM(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END) AS reopened,
            SUM(CASE WHEN source = 'alert' THEN 1 ELSE 0 END) AS from_alerts
        FROM incident
        WHERE tenant = ? AND created_at >= ? AND created_at < ?
        GROUP BY 1, 2
    """
    rows = await _fetch(sql, *week_args, _ts(now), _ts(now), _ts(min(end, now)), tenant_id, _ts(start), _ts(end))
    return [{k: (int(v) if k != "priority" and v is not None else v) for k, v in row.items()} for row in rows]


async def incident_scalars(tenant_id: int, start: dt.datetime, end: dt.datetime, cut: dt.datetime) -> dict[str, int]:
    """In one round trip: incidents of the customer (of any month) unresolved at `cut`; the
    month's incidents that were escalated; minutes logged on the month's incidents."""
    rows = await _fetch(
        "SELECT "
        "(SELECT COUNT(*) FROM incident WHERE tenant = ? AND created_at < ? "
        " AND (resolved_at IS NULL OR resolved_at >= ?) AND (closed_at IS NULL OR closed_at >= ?)) AS open_at_end, "
        "(SELECT COUNT(DISTINCT e.subject_id) FROM escalation e JOIN incident i ON i.id = e.subject_id "
        " WHERE e.subject_kind = 'incident' AND i.tenant = ? AND i.created_at >= ? AND i.created_at < ?) AS escalated, "
        "(SELECT COALESCE(SUM(t.minutes), 0) FROM incident i JOIN incident_time t ON t.incident = i.id "
        " WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ?) AS minutes_worked",
        tenant_id,
        _ts(cut),
        _ts(cut),
        _ts(cut),
        tenant_id,
        _ts(start),
        _ts(end),
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return {name: int(value or 0) for name, value in rows[0].items()}


async def notable_incidents(
    tenant_id: int, start: dt.datetime, end: dt.datetime, limit: int = NOTABLE_INCIDENTS
) -> list[dict[str, Any]]:
    """The month's incidents most worth a line in the report: most urgent first, then oldest."""
    # Pick the ids from the covering index first, then read only those rows.
    picked = await _fetch(
        "SELECT id FROM incident WHERE tenant = ? AND created_at >= ? AND created_at < ? "
        "ORDER BY CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, "
        "created_at, id LIMIT ?",
        tenant_id,
        _ts(start),
        _ts(end),
        limit,
    )
    ids = [row["id"] for row in picked]
    if not ids:
        return []
    fetched = await _fetch(
        "SELECT id, key, title, priority, status, created_at, responded_at, acknowledged_at, resolved_at, "
        f"response_due, resolution_due, reopen_count, closure FROM incident WHERE id IN ({_marks(len(ids))})",
        *ids,
    )
    by_id = {row["id"]: row for row in fetched}
    rows = [by_id[incident_id] for incident_id in ids if incident_id in by_id]
    items = []
    for row in rows:
        closure = cmdb_repo._json(row["closure"], None) or {}
        responded = _opt_utc(row["responded_at"]) or _opt_utc(row["acknowledged_at"])
        resolved = _opt_utc(row["resolved_at"])
        response_due = _opt_utc(row["response_due"])
        resolution_due = _opt_utc(row["resolution_due"])
        items.append(
            {
                "id": row["id"],
                "key": row["key"],
                "title": row["title"],
                "priority": row["priority"],
                "status": row["status"],
                "created_at": cmdb_repo._utc(row["created_at"]).isoformat(),
                "resolved_at": resolved.isoformat() if resolved else None,
                "resolution": str(closure.get("actions_taken") or closure.get("details") or ""),
                "response_met": (responded <= response_due) if responded and response_due else None,
                "resolution_met": (resolved <= resolution_due) if resolved and resolution_due else None,
                "reopened": int(row["reopen_count"] or 0) > 0,
            }
        )
    return items


async def repeated_cis(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """CIs with at least REPEAT_THRESHOLD incidents raised in the month, most first, with
    the open problem (if any) already looking into them."""
    rows = await _fetch(
        "SELECT ic.ci AS ci, COUNT(DISTINCT i.id) AS n FROM incident i JOIN incident_ci ic ON ic.incident = i.id "
        "WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ? "
        "GROUP BY ic.ci HAVING COUNT(DISTINCT i.id) >= ? ORDER BY 2 DESC, 1 LIMIT 10",
        tenant_id,
        _ts(start),
        _ts(end),
        REPEAT_THRESHOLD,
    )
    names = await cmdb_repo.cis_by_ids([row["ci"] for row in rows])
    found = [
        {
            "ci": row["ci"],
            "name": names[row["ci"]].name if row["ci"] in names else f"#{row['ci']}",
            "incidents": int(row["n"]),
            "problem": None,
        }
        for row in rows
    ]
    if found:
        ids = [item["ci"] for item in found]
        problems = await _fetch(
            f"SELECT pc.ci AS ci, p.key AS key FROM problem_ci pc JOIN problem p ON p.id = pc.problem "
            f"WHERE pc.ci IN ({_marks(len(ids))}) AND p.status NOT IN ('resolved', 'closed') ORDER BY p.id",
            *ids,
        )
        keys = {row["ci"]: row["key"] for row in problems}
        for item in found:
            item["problem"] = keys.get(item["ci"])
    return found


async def release_incidents(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Releases that incidents raised in the month were linked to (their watch periods)."""
    rows = await _fetch(
        "SELECT r.key AS key, r.title AS title, r.deployed_at AS deployed_at, COUNT(DISTINCT i.id) AS n "
        "FROM incident_release ir JOIN incident i ON i.id = ir.incident JOIN release r ON r.id = ir.release "
        "WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ? "
        "GROUP BY r.key, r.title, r.deployed_at ORDER BY 4 DESC, 1 LIMIT 10",
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return [
        {
            "key": row["key"],
            "title": row["title"],
            "deployed_at": _opt_utc(row["deployed_at"]).isoformat() if row["deployed_at"] else None,  # type: ignore[union-attr]
            "incidents": int(row["n"]),
        }
        for row in rows
    ]


# --- alerts --------------------------------------------------------------------------------


async def alert_counts(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    rows = await _fetch(
        "SELECT metric, COUNT(*) AS received, "
        "SUM(CASE WHEN breached THEN 1 ELSE 0 END) AS breached, "
        "SUM(CASE WHEN outcome = 'opened' THEN 1 ELSE 0 END) AS opened, "
        "SUM(CASE WHEN outcome = 'joined' THEN 1 ELSE 0 END) AS joined "
        "FROM alert WHERE tenant = ? AND observed_at >= ? AND observed_at < ? GROUP BY metric ORDER BY 2 DESC, 1",
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return [
        {
            "metric": row["metric"],
            "received": int(row["received"]),
            "breached": int(row["breached"] or 0),
            "opened": int(row["opened"] or 0),
            "joined": int(row["joined"] or 0),
        }
        for row in rows
    ]


# --- planned changes -------------------------------------------------------------------------


async def rfc_outcomes(
    tenant_id: int, start: dt.datetime, end: dt.datetime, actions: Sequence[str]
) -> list[dict[str, Any]]:
    """RFCs whose history records one of `actions` in [start, end), with the RFC's columns,
    the action and its first time, in time order (one per RFC: its earliest such action)."""
    rows = await _fetch(
        "SELECT r.id, r.key, r.title, r.state, r.priority, r.type, r.urgency, r.created_at, o.action, o.at "
        "FROM (SELECT entity_id, action, MIN(at) AS at FROM history WHERE tenant = ? AND action IN "
        f"({_marks(len(actions))}) AND at >= ? AND at < ? AND entity = 'rfc' AND ci_id IS NULL "
        "GROUP BY entity_id, action) o JOIN rfc r ON r.id = o.entity_id",
        tenant_id,
        *actions,
        _ts(start),
        _ts(end),
    )
    first: dict[int, dict[str, Any]] = {}
    for row in rows:
        row["at"] = cmdb_repo._utc(row["at"])
        current = first.get(row["id"])
        if current is None or row["at"] < current["at"]:
            first[row["id"]] = row
    return sorted(first.values(), key=lambda row: (row["at"], row["id"]))


async def rfcs_open_at(tenant_id: int, end: dt.datetime) -> list[dict[str, Any]]:
    """RFCs not in a terminal state at `end`, with that state. Candidates are the RFCs open now
    and those with history since `end`; for the latter the state at `end` is rebuilt from the
    history (each entry records the state after it). An RFC untouched since `end` still has the
    state it had then."""
    columns = "id, key, title, state, priority, type, urgency, created_at, updated_at"
    open_states = [state for state in RFC_STATES if state not in TERMINAL_RFC_STATES]
    rows = await _fetch(
        f"SELECT {columns} FROM rfc WHERE tenant = ? AND state IN ({_marks(len(open_states))}) AND created_at < ?",
        tenant_id,
        *open_states,
        _ts(end),
    )
    touched = await _fetch(
        "SELECT DISTINCT entity_id FROM history WHERE tenant = ? AND at >= ? AND entity = 'rfc' AND ci_id IS NULL",
        tenant_id,
        _ts(end),
    )
    known = {row["id"] for row in rows}
    extra = [row["entity_id"] for row in touched if row["entity_id"] not in known]
    for chunk in _chunks(extra):
        rows += await _fetch(
            f"SELECT {columns} FROM rfc WHERE tenant = ? AND created_at < ? AND id IN ({_marks(len(chunk))})",
            tenant_id,
            _ts(end),
            *chunk,
        )
    moved = [row["id"] for row in rows if cmdb_repo._utc(row["updated_at"]) >= end]
    state_then: dict[int, str] = {}
    for chunk in _chunks(moved):
        history = await _fetch(
            f"SELECT entity_id, after FROM history WHERE entity = 'rfc' AND ci_id IS NULL AND at < ? "
            f"AND entity_id IN ({_marks(len(chunk))}) ORDER BY entity_id, id",
            _ts(end),
            *chunk,
        )
        for entry in history:
            after = cmdb_repo._json(entry["after"], {}) or {}
            if isinstance(after, dict) and after.get("state"):
                state_then[entry["entity_id"]] = str(after["state"])
    moved_ids = set(moved)
    result = []
    for row in sorted(rows, key=lambda r: r["id"]):
        state = state_then.get(row["id"], row["state"]) if row["id"] in moved_ids else row["state"]
        if state not in TERMINAL_RFC_STATES:
            result.append({**row, "state": state})
    return result


# --- problems ------------------------------------------------------------------------------


async def problems_of_month(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Problems opened in the month, still open at its end, or resolved during it."""
    rows = await _fetch(
        "SELECT id, key, title, status, known_error, root_cause, workaround, created_at, updated_at FROM problem "
        "WHERE tenant = ? AND created_at < ? AND (status NOT IN ('resolved', 'closed') OR updated_at >= ?) "
        "ORDER BY id",
        tenant_id,
        _ts(end),
        _ts(start),
    )
    return [
        {
            **row,
            "known_error": bool(row["known_error"]),
            "created_at": cmdb_repo._utc(row["created_at"]),
            "updated_at": cmdb_repo._utc(row["updated_at"]),
        }
        for row in rows
    ]


# --- people --------------------------------------------------------------------------------


async def report_contacts(tenant_id: int, usernames: Sequence[str]) -> list[int]:
    """Active people of the tenant named in `usernames`, or, when none are named, its customer contacts."""
    people, _ = await cmdb_repo.list_people(
        Scope.everything(0),
        tenant_id=tenant_id,
        role=None if usernames else "customer",
        expertise=None,
        limit=500,
        offset=0,
    )
    wanted = set(usernames)
    return [person.id for person in people if person.active and (not wanted or person.username in wanted)]


# --- the frozen copies -------------------------------------------------------------------------


async def issued(tenant_id: int, month: str) -> dict[str, Any] | None:
    row = (
        await MonthlyReportTable.select()
        .where((MonthlyReportTable.tenant == tenant_id) & (MonthlyReportTable.month == month))
        .first()
    )
    if row is None:
        return None
    return {
        "issued_at": cmdb_repo._utc(row["issued_at"]),
        "issued_by": row["issued_by"],
        "data": cmdb_repo._json(row["data"], {}),
    }


async def issued_tenants(months: Sequence[str]) -> set[tuple[int, str]]:
    if not months:
        return set()
    rows = await MonthlyReportTable.select(MonthlyReportTable.tenant, MonthlyReportTable.month).where(
        MonthlyReportTable.month.is_in(list(months))
    )
    return {(row["tenant"], row["month"]) for row in rows}


async def insert_issued(
    tenant_id: int, month: str, issued_at: dt.datetime, issued_by: str, data: dict[str, Any]
) -> bool:
    """Freeze a report; False if one was issued for this customer and month already (the
    unique index decides, so concurrent issuers cannot both win)."""
    created = (
        await MonthlyReportTable.insert(
            MonthlyReportTable(
                tenant=tenant_id,
                month=month,
                issued_at=issued_at,
                issued_by=issued_by,
                data=json.dumps(data, default=str, sort_keys=True),
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(MonthlyReportTable.id)
    )
    return bool(created)
